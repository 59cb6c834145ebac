"""soft_histogram / joint_histogram against the float64 NumPy oracle, plus properties."""

import numpy as np
import pytest
import torch

import huenet
import oracle
from conftest import BACKENDS
from helpers import make_weight, rand
from huenet.backends import eager

BOUNDARIES = ("reflect", "circular", "none")
DTYPES = (torch.float32, torch.float64)
ATOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def values(shape, rng, dtype, seed=0, margin=0.05):
    """Values spanning the range plus `margin` of the span on both sides."""
    lo, hi = rng
    span = hi - lo
    return rand(shape, lo - margin * span, hi + margin * span, dtype, seed)


def check(got, want, dtype):
    assert got.dtype == dtype
    np.testing.assert_allclose(got.detach().double().numpy(), want, rtol=0, atol=ATOL[dtype])


# --------------------------------------------------------------------------------------------
# soft_histogram vs oracle
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weight_kind", [None, "full", "bcast"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_grid(backend, boundary, weight_kind, dtype):
    x = values((2, 3, 7, 5), (0.0, 1.0), dtype, seed=1)
    w = make_weight(weight_kind, x)
    got = huenet.soft_histogram(x, bins=37, boundary=boundary, weight=w, backend=backend)
    assert got.shape == (2, 3, 37)
    want = oracle.soft_histogram(x, 37, (0.0, 1.0), 0.4, boundary, w)
    check(got, want, dtype)


# (shape, bins, range, bandwidth, margin, weight_kind)
HIST_CONFIGS = [
    pytest.param((1, 1, 1, 1), 2, (0.0, 1.0), 0.4, 0.05, None, id="1x1-K2"),
    pytest.param((1, 2, 2, 3, 4), 100, (0.0, 1.0), 0.4, 0.05, "full", id="3d-K100"),
    pytest.param((2, 1, 7, 5), 37, (0.0, 1.0), 3.0, 0.05, None, id="b3"),
    pytest.param((2, 1, 7, 5), 37, (0.0, 1.0), 50.0, 0.05, "bcast", id="b50"),
    pytest.param((1, 2, 5, 7), 2, (0.0, 1.0), 3.0, 0.05, None, id="K2-b3"),
    pytest.param((1, 2, 5, 7), 16, (0.0, 1.0), 1.5, 0.05, None, id="b1.5"),
    pytest.param((2, 1, 7, 5), 37, (0.0, 1.0), 0.05, 0.05, "full", id="b0.05"),
    pytest.param((1, 2, 5, 7), 16, (0.0, 1.0), 8.0, 0.05, None, id="b8"),
    pytest.param((2, 2, 7, 5), 37, (-1.0, 1.0), 0.4, 0.05, "full", id="range-1_1"),
    pytest.param((2, 2, 5, 7), 64, (-0.615, 0.615), 0.4, 0.05, None, id="range-v"),
    pytest.param((2, 2, 5, 7), 20, (-0.436, 0.436), 3.0, 0.05, "bcast", id="range-u-b3"),
    pytest.param((3, 2, 9), 24, (0.0, 1.0), 0.4, 0.05, None, id="1d-spatial"),
    pytest.param((1, 1, 16, 16), 256, (0.0, 1.0), 0.4, 0.02, None, id="K256"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,bins,rng,bw,margin,weight_kind", HIST_CONFIGS)
def test_soft_histogram_configs(shape, bins, rng, bw, margin, weight_kind, backend, boundary, dtype):
    x = values(shape, rng, dtype, seed=2, margin=margin)
    w = make_weight(weight_kind, x)
    got = huenet.soft_histogram(x, bins=bins, range=rng, bandwidth=bw, boundary=boundary, weight=w, backend=backend)
    assert got.shape == shape[:2] + (bins,)
    check(got, oracle.soft_histogram(x, bins, rng, bw, boundary, w), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", ["circular", "none"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_far_outside(backend, boundary, dtype):
    # circular wraps any value; 'none' just evaluates the kernel (reflect is only specified near the range)
    rng = (-0.436, 0.436)
    x = values((1, 2, 4, 5), rng, dtype, seed=15, margin=1.5)
    got = huenet.soft_histogram(x, bins=10, range=rng, boundary=boundary, backend=backend)
    check(got, oracle.soft_histogram(x, 10, rng, 0.4, boundary), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_defaults(backend):
    """Defaults: bins=256, range=(0,1), bandwidth=0.4, boundary='reflect'."""
    x = values((1, 2, 6, 6), (0.0, 1.0), torch.float64, seed=3, margin=0.0)
    got = huenet.soft_histogram(x, backend=backend)
    assert got.shape == (1, 2, 256)
    check(got, oracle.soft_histogram(x, 256, (0.0, 1.0), 0.4, "reflect"), torch.float64)


def test_soft_histogram_auto_backend_matches():
    # "auto" is the eager backend on CPU tensors: the same values, bit for bit, and right against the oracle.
    x = values((1, 2, 6, 6), (0.0, 1.0), torch.float64, seed=3)
    a = huenet.soft_histogram(x, bins=20)
    assert torch.equal(a, huenet.soft_histogram(x, bins=20, backend="eager"))
    check(a, oracle.soft_histogram(x, 20), torch.float64)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_noncontiguous(backend, boundary):
    base = values((2, 5, 3, 7), (0.0, 1.0), torch.float64, seed=4)
    x = base.permute(0, 2, 3, 1)[:, :, :, ::2]  # (2, 3, 7, 3), non-contiguous
    assert not x.is_contiguous()
    w = rand((2, 1, 7, 3), 0.1, 2.0, torch.float64, seed=5).transpose(-1, -2).contiguous().transpose(-1, -2)
    got = huenet.soft_histogram(x, bins=13, boundary=boundary, weight=w, backend=backend)
    check(got, oracle.soft_histogram(x, 13, (0.0, 1.0), 0.4, boundary, w), torch.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_exact_endpoints(backend, boundary, dtype):
    rng = (-1.0, 1.0)
    x = torch.tensor([-1.0, 1.0, 0.0, -1.0, 1.0, 0.5], dtype=dtype).reshape(1, 2, 3)
    got = huenet.soft_histogram(x, bins=10, range=rng, boundary=boundary, backend=backend)
    check(got, oracle.soft_histogram(x, 10, rng, 0.4, boundary), dtype)


# --------------------------------------------------------------------------------------------
# soft_histogram properties
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", ["reflect", "circular"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_sums_to_one(backend, boundary, dtype):
    x = values((2, 3, 8, 5), (-0.615, 0.615), dtype, seed=6)
    for w in (None, make_weight("full", x), make_weight("bcast", x)):
        p = huenet.soft_histogram(x, bins=50, range=(-0.615, 0.615), boundary=boundary, weight=w, backend=backend)
        torch.testing.assert_close(p.sum(-1), torch.ones(2, 3, dtype=dtype), rtol=0, atol=ATOL[dtype])
        assert (p >= -ATOL[dtype]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_none_leaks_mass(backend):
    x = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)
    p = huenet.soft_histogram(x, bins=10, boundary="none", backend=backend)
    assert abs(p.sum().item() - 0.5) < 1e-10  # half of each kernel lies outside


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_weight_scale_invariant(backend):
    x = values((2, 2, 5, 4), (0.0, 1.0), torch.float64, seed=8)
    w = make_weight("full", x)
    a = huenet.soft_histogram(x, bins=16, weight=w, backend=backend)
    b = huenet.soft_histogram(x, bins=16, weight=w * 3.5, backend=backend)
    c = huenet.soft_histogram(x, bins=16, weight=torch.ones_like(x), backend=backend)
    d = huenet.soft_histogram(x, bins=16, backend=backend)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(c, d, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_bcast_weight_equals_full(backend):
    x = values((2, 3, 5, 4), (0.0, 1.0), torch.float64, seed=9)
    w1 = make_weight("bcast", x)
    a = huenet.soft_histogram(x, bins=16, weight=w1, backend=backend)
    b = huenet.soft_histogram(x, bins=16, weight=w1.expand_as(x), backend=backend)
    c = huenet.soft_histogram(x, bins=16, weight=w1.expand_as(x).contiguous(), backend=backend)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(a, c, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_weight_pixels_are_ignored(backend):
    x = values((1, 2, 4, 6), (0.0, 1.0), torch.float64, seed=10)
    w = torch.ones_like(x)
    w[..., :, 3:] = 0.0
    a = huenet.soft_histogram(x, bins=12, weight=w, backend=backend)
    b = huenet.soft_histogram(x[..., :, :3].contiguous(), bins=12, backend=backend)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_bandwidth_gives_hard_histogram(backend, boundary, dtype):
    K = 12
    g = torch.Generator().manual_seed(11)
    idx = torch.randint(0, K, (2, 2, 6, 5), generator=g)
    lo, hi = -1.0, 1.0
    L = (hi - lo) / K
    x = (lo + (idx.double() + 0.5) * L).to(dtype)
    p = huenet.soft_histogram(x, bins=K, range=(lo, hi), bandwidth=0.01, boundary=boundary, backend=backend)
    want = torch.nn.functional.one_hot(idx.flatten(2), K).double().mean(2)
    np.testing.assert_allclose(p.double().numpy(), want.numpy(), rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_eager_matches_reference(boundary, dtype):
    x = values((2, 2, 9, 7), (0.0, 1.0), dtype, seed=12)
    w = make_weight("bcast", x)
    for bw in (0.4, 3.0, 50.0):
        a = huenet.soft_histogram(x, bins=30, bandwidth=bw, boundary=boundary, weight=w, backend="eager")
        b = huenet.soft_histogram(x, bins=30, bandwidth=bw, boundary=boundary, weight=w, backend="reference")
        torch.testing.assert_close(a, b, rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_circular_periodic(backend):
    x = values((1, 2, 5, 5), (0.0, 1.0), torch.float64, seed=13, margin=0.0)
    a = huenet.soft_histogram(x, bins=16, boundary="circular", backend=backend)
    for shift in (-3.0, -1.0, 1.0, 2.0):
        b = huenet.soft_histogram(x + shift, bins=16, boundary="circular", backend=backend)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_and_channel_independence(backend):
    x = values((3, 4, 5, 6), (0.0, 1.0), torch.float64, seed=14)
    full = huenet.soft_histogram(x, bins=16, backend=backend)
    for b in range(3):
        for c in range(4):
            one = huenet.soft_histogram(x[b : b + 1, c : c + 1], bins=16, backend=backend)
            torch.testing.assert_close(full[b, c], one[0, 0], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# joint_histogram
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weight_kind", [None, "full", "bcast"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_joint_histogram_grid(backend, boundary, weight_kind, dtype):
    x = values((2, 2, 7, 5), (0.0, 1.0), dtype, seed=20)
    y = values((2, 2, 7, 5), (0.0, 1.0), dtype, seed=21)
    w = make_weight(weight_kind, x)
    got = huenet.joint_histogram(x, y, bins=12, boundary=boundary, weight=w, backend=backend)
    assert got.shape == (2, 2, 12, 12)
    check(got, oracle.joint_histogram(x, y, 12, (0.0, 1.0), 0.4, boundary, w), dtype)


JOINT_CONFIGS = [
    pytest.param((1, 1, 1, 1), 2, (0.0, 1.0), 0.4, None, id="1x1-K2"),
    pytest.param((1, 2, 2, 3, 4), 37, (0.0, 1.0), 0.4, "bcast", id="3d-K37"),
    pytest.param((2, 1, 7, 5), 37, (0.0, 1.0), 3.0, None, id="b3"),
    pytest.param((1, 2, 5, 7), 20, (0.0, 1.0), 50.0, "full", id="b50"),
    pytest.param((2, 2, 5, 7), 16, (-1.0, 1.0), 0.4, None, id="range-1_1"),
    pytest.param((1, 1, 8, 8), 64, (-0.615, 0.615), 0.4, None, id="range-v-K64"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,bins,rng,bw,weight_kind", JOINT_CONFIGS)
def test_joint_histogram_configs(shape, bins, rng, bw, weight_kind, backend, boundary, dtype):
    x = values(shape, rng, dtype, seed=22)
    y = values(shape, rng, dtype, seed=23)
    w = make_weight(weight_kind, x)
    got = huenet.joint_histogram(x, y, bins=bins, range=rng, bandwidth=bw, boundary=boundary, weight=w, backend=backend)
    assert got.shape == shape[:2] + (bins, bins)
    check(got, oracle.joint_histogram(x, y, bins, rng, bw, boundary, w), dtype)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_joint_histogram_marginals_and_orientation(backend, boundary):
    x = values((2, 2, 6, 5), (0.0, 1.0), torch.float64, seed=24)
    y = values((2, 2, 6, 5), (0.0, 1.0), torch.float64, seed=25) ** 2  # different distribution
    w = make_weight("bcast", x)
    J = huenet.joint_histogram(x, y, bins=14, boundary=boundary, weight=w, backend=backend)
    px = huenet.soft_histogram(x, bins=14, boundary=boundary, weight=w, backend=backend)
    py = huenet.soft_histogram(y, bins=14, boundary=boundary, weight=w, backend=backend)
    Jt = huenet.joint_histogram(y, x, bins=14, boundary=boundary, weight=w, backend=backend)
    torch.testing.assert_close(Jt, J.transpose(-1, -2), rtol=0, atol=1e-12)
    if boundary == "none":
        # memberships do not sum to 1: J.sum(-1) = p_x weighted by the mass of y that stays inside
        return
    torch.testing.assert_close(J.sum(-1), px, rtol=0, atol=1e-10)  # k1 indexes x
    torch.testing.assert_close(J.sum(-2), py, rtol=0, atol=1e-10)  # k2 indexes y
    torch.testing.assert_close(J.sum((-1, -2)), torch.ones(2, 2, dtype=torch.float64), rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_joint_histogram_hard(backend):
    K = 6
    g = torch.Generator().manual_seed(26)
    ix = torch.randint(0, K, (1, 1, 5, 5), generator=g)
    iy = torch.randint(0, K, (1, 1, 5, 5), generator=g)
    x = (ix.double() + 0.5) / K
    y = (iy.double() + 0.5) / K
    J = huenet.joint_histogram(x, y, bins=K, bandwidth=0.01, backend=backend)
    want = torch.zeros(K, K, dtype=torch.float64)
    for a, b in zip(ix.flatten().tolist(), iy.flatten().tolist()):
        want[a, b] += 1.0 / 25
    torch.testing.assert_close(J[0, 0], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_joint_eager_matches_reference(boundary, dtype):
    x = values((2, 2, 7, 6), (0.0, 1.0), dtype, seed=27)
    y = values((2, 2, 7, 6), (0.0, 1.0), dtype, seed=28)
    w = make_weight("full", x)
    for bw in (0.4, 3.0, 50.0):
        a = huenet.joint_histogram(x, y, bins=18, bandwidth=bw, boundary=boundary, weight=w, backend="eager")
        b = huenet.joint_histogram(x, y, bins=18, bandwidth=bw, boundary=boundary, weight=w, backend="reference")
        torch.testing.assert_close(a, b, rtol=0, atol=ATOL[dtype])


# --------------------------------------------------------------------------------------------
# values on bin edges; images large enough to be processed in several chunks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_values_on_and_around_bin_edges(backend, boundary, dtype):
    for rng, K in (((0.0, 1.0), 16), ((-0.615, 0.615), 37)):
        lo, hi = rng
        L = (hi - lo) / K
        k = torch.arange(K + 1, dtype=torch.float64)
        tiny = 1e-12 if dtype == torch.float64 else 1e-6
        vals = torch.cat([lo + k * L, lo + k * L + tiny * (hi - lo), lo + k * L - tiny * (hi - lo), lo + (k + 0.5) * L])
        x = vals.to(dtype).reshape(1, 4, K + 1)
        got = huenet.soft_histogram(x, bins=K, range=rng, boundary=boundary, backend=backend)
        check(got, oracle.soft_histogram(x, K, rng, 0.4, boundary), dtype)
        y = torch.roll(x, 3, -1)
        J = huenet.joint_histogram(x, y, bins=K, range=rng, boundary=boundary, backend=backend)
        check(J, oracle.joint_histogram(x, y, K, rng, 0.4, boundary), dtype)


@pytest.fixture
def chunk_counts(monkeypatch):
    """Chunks run by each eager loop, in call order, under a 64x smaller budget (so small inputs need several)."""
    counts = []
    real = eager._chunks

    def spy(*args):
        slices = list(real(*args))
        counts.append(len(slices))
        return iter(slices)

    monkeypatch.setattr(eager, "_chunks", spy)
    monkeypatch.setattr(eager, "CHUNK_ELEMENTS", eager.CHUNK_ELEMENTS // 64)
    return counts


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_large_image_soft_histogram_chunked(boundary, chunk_counts):
    x = values((2, 1, 300, 300), (0.0, 1.0), torch.float64, seed=30)
    w = make_weight("full", x)
    got = huenet.soft_histogram(x, bins=16, boundary=boundary, weight=w, backend="eager")
    check(got, oracle.soft_histogram(x, 16, (0.0, 1.0), 0.4, boundary, w), torch.float64)
    assert chunk_counts and min(chunk_counts) >= 2, chunk_counts


@pytest.mark.parametrize("path", ["dense-rows", "window-products"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_large_image_joint_histogram_chunked(boundary, path, chunk_counts, monkeypatch):
    monkeypatch.setattr(eager, "_DENSE_ROWS_MAX_RATIO", float("inf") if path == "dense-rows" else 0.0)
    x = values((1, 2, 64, 64), (0.0, 1.0), torch.float64, seed=31)
    y = values((1, 2, 64, 64), (0.0, 1.0), torch.float64, seed=32)
    w = make_weight("bcast", x)
    got = huenet.joint_histogram(x, y, bins=16, boundary=boundary, weight=w, backend="eager")
    check(got, oracle.joint_histogram(x, y, 16, (0.0, 1.0), 0.4, boundary, w), torch.float64)
    assert chunk_counts and min(chunk_counts) >= 2, chunk_counts


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_large_image_gradients_match_reference(boundary, chunk_counts):
    """Eager backward passes, several chunks each, against the reference autograd graph."""

    def grads(backend, x0, y0, w0, joint):
        x, y, w = (t.clone().requires_grad_(True) for t in (x0, y0, w0))
        if joint:
            out = huenet.joint_histogram(x, y, bins=12, boundary=boundary, weight=w, backend=backend)
        else:
            out = huenet.soft_histogram(x, bins=12, boundary=boundary, weight=w, backend=backend)
        (out * rand(out.shape, -1, 1, torch.float64, seed=35)).sum().backward()
        return [t.grad for t in (x, y, w) if t.grad is not None]

    for shape, joint in (((2, 1, 150, 150), False), ((1, 2, 32, 32), True)):
        x0 = values(shape, (0.0, 1.0), torch.float64, seed=33)
        y0 = values(shape, (0.0, 1.0), torch.float64, seed=34)
        w0 = make_weight("full", x0)
        ge, gr = grads("eager", x0, y0, w0, joint), grads("reference", x0, y0, w0, joint)
        assert len(ge) == len(gr) == (3 if joint else 2)
        for a, b in zip(ge, gr):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-12)
        assert len(chunk_counts) == 2 and min(chunk_counts) >= 2, chunk_counts  # the eager forward and backward
        chunk_counts.clear()
