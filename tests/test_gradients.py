"""Gradient checks (float64 gradcheck) and finiteness of gradients at degenerate inputs."""

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import helpers
import huenet
import oracle
from conftest import BACKENDS

BOUNDARIES = ("reflect", "circular", "none")
DTYPES = (torch.float32, torch.float64)
INFO_OPS = ("mutual_information", "joint_entropy", "mi_distance", "conditional_entropy")


def rand(shape, lo=0.0, hi=1.0, dtype=torch.float64, seed=0, requires_grad=False):
    return helpers.rand(shape, lo, hi, dtype, seed).requires_grad_(requires_grad)


def img(shape=(2, 2, 3, 4), seed=0):
    # a little outside the range on both sides, generic (no value within 1e-4 of a wrap point)
    x = rand(shape, -0.04, 1.04, seed=seed)
    near = (x.abs() < 1e-4) | ((x - 1).abs() < 1e-4)
    x = torch.where(near, x + 3e-4, x)
    return x.requires_grad_(True)


def weight(x, bcast=False, seed=99):
    shape = list(x.shape)
    if bcast:
        shape[1] = 1
    return rand(tuple(shape), 0.2, 1.5, seed=seed, requires_grad=True)


GC = dict(eps=1e-6, atol=1e-6, rtol=1e-4)
GC_FAST = dict(GC, fast_mode=True)  # random-projection check: many outputs, same rigour per direction

# (bins, bandwidth) pairs that exercise both code paths of the eager backend in float64:
# bandwidth 0.1 -> a window of a few bins per pixel (windowed path); 0.4 with few bins -> every pixel's
# window covers all bins (dense fallback); 3.0 -> very wide kernel.
KB = [
    pytest.param(10, 0.1, id="K10-b0.1"),
    pytest.param(8, 0.4, id="K8-b0.4"),
]
KB_ALL = KB + [pytest.param(7, 3.0, id="K7-b3")]


# --------------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bins,bw", KB_ALL)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_soft_histogram(backend, boundary, bins, bw):
    x = img(seed=1)
    f = lambda x: huenet.soft_histogram(x, bins=bins, bandwidth=bw, boundary=boundary, backend=backend)  # noqa: E731
    assert gradcheck(f, (x,), **GC_FAST)


@pytest.mark.parametrize("bins,bw", KB)
@pytest.mark.parametrize("bcast", [False, True], ids=["full_w", "bcast_w"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_soft_histogram_weight(backend, boundary, bcast, bins, bw):
    x = img(seed=2)
    w = weight(x, bcast)
    f = lambda x, w: huenet.soft_histogram(  # noqa: E731
        x, bins=bins, bandwidth=bw, boundary=boundary, weight=w, backend=backend
    )
    assert gradcheck(f, (x, w), **GC_FAST)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_soft_histogram_other_range(backend):
    x = (rand((1, 2, 3, 4), -0.6, 0.6, seed=3)).requires_grad_(True)
    for boundary in BOUNDARIES:
        for bins, bw in ((10, 0.4), (12, 0.1)):
            f = lambda x: huenet.soft_histogram(  # noqa: E731
                x, bins=bins, range=(-0.615, 0.615), bandwidth=bw, boundary=boundary, backend=backend
            )
            assert gradcheck(f, (x,), **GC)


@pytest.mark.parametrize("boundary", ["reflect", "none"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_at_endpoints(backend, boundary):
    # exactly lo and hi (not wrap points for these boundaries)
    x = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.3, 0.7], dtype=torch.float64).reshape(1, 2, 3).requires_grad_(True)
    for bins, bw in ((8, 0.4), (10, 0.1)):
        f = lambda x: huenet.soft_histogram(x, bins=bins, bandwidth=bw, boundary=boundary, backend=backend)  # noqa: E731
        assert gradcheck(f, (x,), **GC)


@pytest.mark.parametrize("bins,bw", KB_ALL)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_joint_histogram(backend, boundary, bins, bw):
    x = img((1, 2, 3, 4), seed=4)
    y = img((1, 2, 3, 4), seed=5)
    for w in (weight(x, bcast=True), weight(x, bcast=False)):
        f = lambda x, y, w: huenet.joint_histogram(  # noqa: E731
            x, y, bins=bins, bandwidth=bw, boundary=boundary, weight=w, backend=backend
        )
        assert gradcheck(f, (x, y, w), **GC_FAST)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_joint_histogram_full_jacobian(backend, boundary):
    x = img((1, 1, 2, 3), seed=14)
    y = img((1, 1, 2, 3), seed=15)
    w = weight(x, bcast=True)
    for bins, bw in ((10, 0.1), (6, 0.4)):
        f = lambda x, y, w: huenet.joint_histogram(  # noqa: E731
            x, y, bins=bins, bandwidth=bw, boundary=boundary, weight=w, backend=backend
        )
        assert gradcheck(f, (x, y, w), **GC)


@pytest.mark.parametrize("bins,bw", [pytest.param(12, 0.1, id="K12-b0.1"), pytest.param(10, 0.4, id="K10-b0.4")])
@pytest.mark.parametrize("op", INFO_OPS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_information(op, backend, boundary, bins, bw):
    x = img((2, 1, 3, 4), seed=6)
    y = (0.5 * x.detach() + 0.5 * img((2, 1, 3, 4), seed=7).detach()).requires_grad_(True)
    fn = getattr(huenet, op)
    f = lambda x, y: fn(x, y, bins=bins, bandwidth=bw, boundary=boundary, backend=backend)  # noqa: E731
    assert gradcheck(f, (x, y), **GC_FAST)


@pytest.mark.parametrize("op", INFO_OPS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_information_weighted(op, backend):
    x = img((1, 2, 3, 4), seed=8)
    y = img((1, 2, 3, 4), seed=9)
    w = weight(x, bcast=True).detach()
    fn = getattr(huenet, op)
    f = lambda x, y: fn(x, y, bins=12, bandwidth=0.15, weight=w, backend=backend)  # noqa: E731
    assert gradcheck(f, (x, y), **GC)


def _generic_hists(shape, seed):
    p = rand(shape, 0.05, 1.0, seed=seed)
    return (p / p.sum(-1, keepdim=True)).detach().requires_grad_(True)


def _untied_pair(shape, seed):
    """Generic, un-normalised (p, q): no entry of D = cumsum(p) - cumsum(q) near 0 (the kink of |.|)
    and no two entries of D close together (ties in the median)."""
    for s in range(seed, seed + 1000):
        p = rand(shape, 0.05, 1.0, seed=s).requires_grad_(True)
        q = rand(shape, 0.05, 1.0, seed=s + 5000).requires_grad_(True)
        D = torch.cumsum(p.detach(), -1) - torch.cumsum(q.detach(), -1)
        if (torch.sort(D, -1).values.diff(dim=-1) > 1e-3).all() and (D.abs() > 1e-3).all():
            return p, q
    raise AssertionError("no untied pair found")


@pytest.mark.parametrize("cyclic", [False, True], ids=["linear", "cyclic"])
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("K", [8, 9])
def test_gradcheck_emd(K, order, cyclic):
    p, q = _untied_pair((2, 2, K), seed=10 * K)
    f = lambda p, q: huenet.emd(p, q, order=order, cyclic=cyclic)  # noqa: E731
    assert gradcheck(f, (p, q), **GC)


@pytest.mark.parametrize("cyclic", [False, True], ids=["linear", "cyclic"])
@pytest.mark.parametrize("order", [1, 2])
def test_gradcheck_emd_of_soft_histograms(order, cyclic):
    x = img((1, 2, 3, 4), seed=30)
    y = img((1, 2, 3, 4), seed=31).detach()
    boundary = "circular" if cyclic else "reflect"

    def f(x):
        p = huenet.soft_histogram(x, bins=9, boundary=boundary, backend="eager")
        q = huenet.soft_histogram(y, bins=9, boundary=boundary, backend="eager")
        return huenet.emd(p, q, order=order, cyclic=cyclic)

    assert gradcheck(f, (x,), **GC)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_eager_and_reference_gradients_agree(boundary):
    x0 = img((2, 2, 5, 4), seed=40).detach()
    y0 = img((2, 2, 5, 4), seed=41).detach()
    w0 = weight(x0, bcast=True).detach()
    cot = rand((2, 2), seed=42)
    grads = {}
    for backend in BACKENDS:
        x, y, w = (t.clone().requires_grad_(True) for t in (x0, y0, w0))
        out = huenet.mutual_information(x, y, bins=16, boundary=boundary, weight=w, backend=backend)
        h = huenet.soft_histogram(x, bins=16, boundary=boundary, weight=w, backend=backend)
        ((out * cot).sum() + (h * rand(h.shape, seed=43)).sum()).backward()
        grads[backend] = (x.grad, y.grad, w.grad)
    for a, b in zip(grads["eager"], grads["reference"]):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)


# --------------------------------------------------------------------------------------------
# finite gradients at degenerate inputs
# --------------------------------------------------------------------------------------------


def _degenerate_images(dtype):
    shape = (2, 2, 3, 4)
    yield "black", torch.zeros(shape, dtype=dtype)
    yield "white", torch.ones(shape, dtype=dtype)
    yield "grey", torch.full(shape, 0.5, dtype=dtype)
    ends = torch.zeros(shape, dtype=dtype)
    ends[..., ::2, :] = 1.0
    yield "lo_hi", ends


def _assert_finite_grads(*ts):
    for t in ts:
        assert t.grad is not None
        assert torch.isfinite(t.grad).all(), t.grad


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_finite_grads_degenerate_images(backend, boundary, dtype):
    K = 40  # enough bins for many exactly-zero histogram / joint entries (beyond ~15 bins in fp64)
    other = rand((2, 2, 3, 4), dtype=dtype, seed=50)
    kw = dict(bins=K, boundary=boundary, backend=backend)
    for name, base in _degenerate_images(dtype):
        # information ops: against itself (maximally degenerate joint) and against a random image
        for partner in (base, other):
            for op in INFO_OPS:
                x = base.clone().requires_grad_(True)
                y = partner.clone().requires_grad_(True)
                out = getattr(huenet, op)(x, y, **kw)
                want = getattr(oracle, op)(x, y, K, (0.0, 1.0), 0.4, boundary)
                np.testing.assert_allclose(
                    out.detach().double().numpy(),
                    want,
                    rtol=0,
                    atol=1e-4 if dtype == torch.float32 else 1e-10,
                    err_msg=f"{name} {op}",
                )
                out.sum().backward()
                _assert_finite_grads(x, y)
        partner = base  # identical histograms -> D == 0 in the emd below
        # histograms, weighted
        x = base.clone().requires_grad_(True)
        w = torch.ones_like(base[:, :1]).requires_grad_(True)
        h = huenet.soft_histogram(x, weight=w, **kw)
        (h * torch.linspace(-1, 1, K, dtype=dtype)).sum().backward()
        _assert_finite_grads(x, w)
        x = base.clone().requires_grad_(True)
        y = partner.clone().requires_grad_(True)
        J = huenet.joint_histogram(x, y, **kw)
        (J * J).sum().backward()
        _assert_finite_grads(x, y)
        # emd of soft histograms (identical histograms when partner is base: D == 0)
        for order in (1, 2):
            for cyclic in (False, True):
                x = base.clone().requires_grad_(True)
                p = huenet.soft_histogram(x, **kw)
                q = huenet.soft_histogram(partner, **kw)
                d = huenet.emd(p, q, order=order, cyclic=cyclic)
                assert torch.isfinite(d).all()
                d.sum().backward()
                _assert_finite_grads(x)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cyclic", [False, True], ids=["linear", "cyclic"])
def test_emd_order2_gradient_at_zero_is_zero(cyclic, dtype):
    p = _generic_hists((2, 3, 12), seed=60).detach().to(dtype).requires_grad_(True)
    q = p.detach().clone().requires_grad_(True)
    d = huenet.emd(p, q, order=2, cyclic=cyclic)
    assert torch.all(d == 0)
    d.sum().backward()
    _assert_finite_grads(p, q)
    assert torch.all(p.grad == 0) and torch.all(q.grad == 0)
    # same tensor on both sides
    p2 = p.detach().clone().requires_grad_(True)
    huenet.emd(p2, p2, order=2, cyclic=cyclic).sum().backward()
    _assert_finite_grads(p2)
    assert torch.all(p2.grad == 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_emd_order2_zero_row_does_not_poison_other_rows(dtype):
    p = _generic_hists((3, 10), seed=61).detach().to(dtype)
    q = _generic_hists((3, 10), seed=62).detach().to(dtype)
    q[1] = p[1]
    p.requires_grad_(True)
    d = huenet.emd(p, q, order=2)
    d.sum().backward()
    _assert_finite_grads(p)
    assert torch.all(p.grad[1] == 0)
    # rows 0 and 2 equal the single-row gradients
    for r in (0, 2):
        pr = p.detach()[r].clone().requires_grad_(True)
        huenet.emd(pr, q[r], order=2).backward()
        torch.testing.assert_close(p.grad[r], pr.grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_finite_grads_hard_kernel_delta_joint(backend, boundary, dtype):
    # H(X,Y) == 0 -> D_MI := 1 branch: gradient must still be finite
    x = torch.full((1, 2, 3, 3), 0.5625, dtype=dtype, requires_grad=True)
    y = torch.full((1, 2, 3, 3), 0.5625, dtype=dtype, requires_grad=True)
    for op in INFO_OPS:
        x.grad = y.grad = None
        out = getattr(huenet, op)(x, y, bins=8, bandwidth=1e-4, boundary=boundary, backend=backend)
        # One pixel value, one bin: no entropy and no information, so D_MI takes its defined value 1.
        want = 1.0 if op == "mi_distance" else 0.0
        torch.testing.assert_close(out.detach(), torch.full_like(out, want), rtol=0, atol=1e-6)
        out.sum().backward()
        _assert_finite_grads(x, y)
