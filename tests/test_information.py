"""mutual_information / joint_entropy / mi_distance / conditional_entropy vs the NumPy oracle."""

import numpy as np
import pytest
import torch

import huenet
import oracle
from conftest import BACKENDS
from helpers import make_weight, rand

BOUNDARIES = ("reflect", "circular", "none")
DTYPES = (torch.float32, torch.float64)
ATOL = {torch.float32: 1e-4, torch.float64: 1e-9}

OPS = {
    "mutual_information": oracle.mutual_information,
    "joint_entropy": oracle.joint_entropy,
    "mi_distance": oracle.mi_distance,
    "conditional_entropy": oracle.conditional_entropy,
}


def pair(shape, rng=(0.0, 1.0), dtype=torch.float64, seed=0, dependence=0.6):
    """A correlated pair (x, y) with values a little outside the range on both sides."""
    lo, hi = rng
    span = hi - lo
    x = rand(shape, lo - 0.03 * span, hi + 0.03 * span, torch.float64, seed)
    n = rand(shape, lo - 0.03 * span, hi + 0.03 * span, torch.float64, seed + 1000)
    y = dependence * x + (1 - dependence) * n
    return x.to(dtype), y.to(dtype)


def check(got, want, dtype, shape):
    assert got.shape == shape
    assert got.dtype == dtype
    np.testing.assert_allclose(got.detach().double().numpy(), want, rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weight_kind", [None, "full", "bcast"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", list(OPS))
def test_information_grid(op, backend, boundary, weight_kind, dtype):
    x, y = pair((2, 2, 6, 5), dtype=dtype, seed=1)
    w = make_weight(weight_kind, x)
    got = getattr(huenet, op)(x, y, bins=12, boundary=boundary, weight=w, backend=backend)
    want = OPS[op](x, y, 12, (0.0, 1.0), 0.4, boundary, w)
    check(got, want, dtype, (2, 2))


# (shape, bins, range, bandwidth)
CONFIGS = [
    pytest.param((1, 1, 1, 1), 2, (0.0, 1.0), 0.4, id="1x1-K2"),
    pytest.param((1, 2, 2, 3, 4), 37, (0.0, 1.0), 0.4, id="3d-K37"),
    pytest.param((2, 1, 7, 5), 37, (0.0, 1.0), 3.0, id="b3"),
    pytest.param((1, 2, 5, 7), 20, (0.0, 1.0), 50.0, id="b50"),
    pytest.param((2, 2, 5, 7), 16, (-1.0, 1.0), 0.4, id="range-1_1"),
    pytest.param((1, 1, 8, 8), 64, (-0.615, 0.615), 0.4, id="range-v-K64"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,bins,rng,bw", CONFIGS)
def test_information_configs(shape, bins, rng, bw, backend, boundary, dtype):
    x, y = pair(shape, rng, dtype, seed=2)
    for op, ref in OPS.items():
        got = getattr(huenet, op)(x, y, bins=bins, range=rng, bandwidth=bw, boundary=boundary, backend=backend)
        check(got, ref(x, y, bins, rng, bw, boundary), dtype, shape[:2])


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_information_identities(backend, boundary):
    x, y = pair((2, 3, 8, 7), seed=3)
    kw = dict(bins=16, boundary=boundary, backend=backend)
    J = huenet.joint_histogram(x, y, **kw)
    H = huenet.joint_entropy(x, y, **kw)
    I = huenet.mutual_information(x, y, **kw)  # noqa: E741
    D = huenet.mi_distance(x, y, **kw)
    CE = huenet.conditional_entropy(x, y, **kw)

    def ent(p, dims):
        return -(torch.where(p > 0, p * torch.log(torch.where(p > 0, p, torch.ones_like(p))), torch.zeros_like(p))).sum(
            dims
        )

    Hx = ent(J.sum(-1), (-1,))
    Hy = ent(J.sum(-2), (-1,))
    torch.testing.assert_close(H, ent(J, (-2, -1)), rtol=0, atol=1e-10)
    torch.testing.assert_close(I, Hx + Hy - H, rtol=0, atol=1e-10)
    torch.testing.assert_close(D, 1 - I / H, rtol=0, atol=1e-10)
    torch.testing.assert_close(CE, H - Hy, rtol=0, atol=1e-10)  # H(X|Y), Y = y = marginal over k1
    # and H(X|Y) != H(Y|X) for this asymmetric pair: the argument order matters
    CE_rev = huenet.conditional_entropy(y, x, **kw)
    torch.testing.assert_close(CE_rev, H - Hx, rtol=0, atol=1e-10)
    # symmetric quantities
    torch.testing.assert_close(huenet.mutual_information(y, x, **kw), I, rtol=0, atol=1e-10)
    torch.testing.assert_close(huenet.joint_entropy(y, x, **kw), H, rtol=0, atol=1e-10)
    torch.testing.assert_close(huenet.mi_distance(y, x, **kw), D, rtol=0, atol=1e-10)
    # bounds
    assert torch.all(I >= -1e-10)
    assert torch.all(I <= torch.minimum(Hx, Hy) + 1e-10)
    assert torch.all((D >= -1e-10) & (D <= 1 + 1e-10))
    assert torch.all(CE >= -1e-10)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_conditional_entropy_matches_oracle_difference(backend, boundary, dtype):
    x, y = pair((2, 2, 7, 6), dtype=dtype, seed=4, dependence=0.8)
    got = huenet.conditional_entropy(x, y, bins=20, boundary=boundary, backend=backend)
    J = oracle.joint_histogram(x, y, 20, boundary=boundary)
    want = oracle.joint_entropy_from_joint(J) - oracle.entropy(oracle.marginals(J)[1])
    check(got, want, dtype, (2, 2))


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_mi_bounded_by_marginal_entropies(backend, boundary):
    for seed, dep in ((5, 0.0), (6, 0.5), (7, 0.95), (8, 1.0)):
        x, y = pair((2, 2, 10, 10), seed=seed, dependence=dep)
        I = huenet.mutual_information(x, y, bins=24, boundary=boundary, backend=backend)  # noqa: E741
        Hx = torch.from_numpy(oracle.entropy(oracle.soft_histogram(x, 24, boundary=boundary)))
        Hy = torch.from_numpy(oracle.entropy(oracle.soft_histogram(y, 24, boundary=boundary)))
        # (also holds for 'none': with total mass s, every term scales as s * (. - log s))
        assert torch.all(I <= torch.minimum(Hx, Hy) + 1e-9)
        D = huenet.mi_distance(x, y, bins=24, boundary=boundary, backend=backend)
        assert torch.all((D >= -1e-9) & (D <= 1 + 1e-9))


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_mi_distance_independent_vs_identical(backend, boundary):
    x = rand((1, 2, 64, 64), seed=9)
    y = rand((1, 2, 64, 64), seed=10)
    d_ind = huenet.mi_distance(x, y, bins=16, boundary=boundary, backend=backend)
    d_same = huenet.mi_distance(x, x, bins=16, boundary=boundary, backend=backend)
    assert torch.all(d_ind > 0.9), d_ind
    assert torch.all(d_same < 0.8), d_same
    assert torch.all(d_ind - d_same > 0.2)
    mi_ind = huenet.mutual_information(x, y, bins=16, boundary=boundary, backend=backend)
    mi_same = huenet.mutual_information(x, x, bins=16, boundary=boundary, backend=backend)
    assert torch.all(mi_same > 5 * mi_ind)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hard_identical_images_have_zero_distance(backend):
    K = 8
    g = torch.Generator().manual_seed(11)
    idx = torch.randint(0, K, (1, 1, 8, 8), generator=g)
    x = (idx.double() + 0.5) / K
    d = huenet.mi_distance(x, x, bins=K, bandwidth=0.01, backend=backend)
    assert abs(d.item()) < 1e-10
    ce = huenet.conditional_entropy(x, x, bins=K, bandwidth=0.01, backend=backend)
    assert abs(ce.item()) < 1e-10  # H(X|X) = 0
    p = torch.bincount(idx.flatten(), minlength=K).double() / 64
    h = -(p[p > 0] * p[p > 0].log()).sum()
    assert abs(huenet.mutual_information(x, x, bins=K, bandwidth=0.01, backend=backend).item() - h.item()) < 1e-10
    assert abs(huenet.joint_entropy(x, x, bins=K, bandwidth=0.01, backend=backend).item() - h.item()) < 1e-10


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_mi_distance_is_one_when_joint_entropy_is_zero(backend, boundary, dtype):
    # constant images + (numerically) hard kernel -> J is a delta, H(X,Y) == 0 -> D_MI := 1
    x = torch.full((2, 1, 4, 4), 0.5625, dtype=dtype)  # centre of bin 4 of 8
    H = huenet.joint_entropy(x, x, bins=8, bandwidth=1e-4, boundary=boundary, backend=backend)
    assert torch.all(H == 0), H
    d = huenet.mi_distance(x, x, bins=8, bandwidth=1e-4, boundary=boundary, backend=backend)
    assert d.dtype == dtype
    assert torch.all(d == 1.0), d
    assert torch.all(huenet.mutual_information(x, x, bins=8, bandwidth=1e-4, boundary=boundary, backend=backend) == 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_information_eager_matches_reference(boundary, dtype):
    x, y = pair((2, 2, 9, 8), dtype=dtype, seed=12)
    w = make_weight("bcast", x)
    for op in OPS:
        for bw in (0.4, 3.0):
            kw = dict(bins=24, bandwidth=bw, boundary=boundary, weight=w)
            a = getattr(huenet, op)(x, y, backend="eager", **kw)
            b = getattr(huenet, op)(x, y, backend="reference", **kw)
            torch.testing.assert_close(a, b, rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
def test_information_default_bins(backend):
    x, y = pair((1, 1, 16, 16), seed=13)
    got = huenet.mutual_information(x, y, backend=backend)  # bins=256 default
    check(got, oracle.mutual_information(x, y, 256), torch.float64, (1, 1))
