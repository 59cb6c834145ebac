"""huenet.emd against the NumPy oracle, plus metric properties and an independent W1 check."""

import numpy as np
import pytest
import torch

import huenet
import oracle
from conftest import BACKENDS

DTYPES = (torch.float32, torch.float64)
ATOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def rand_hist(shape, dtype=torch.float64, seed=0, normalize=True):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(shape, generator=g, dtype=torch.float64) + 0.01
    if normalize:
        p = p / p.sum(-1, keepdim=True)
    return p.to(dtype)


SHAPES = [(16,), (3, 16), (2, 3, 37), (2, 2, 2), (1, 1, 100), (2, 1, 3, 7)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("normalize", [True, False], ids=["norm", "raw"])
@pytest.mark.parametrize("cyclic", [False, True], ids=["linear", "cyclic"])
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_emd_matches_oracle(shape, order, cyclic, normalize, dtype):
    p = rand_hist(shape, dtype, seed=1, normalize=normalize)
    q = rand_hist(shape, dtype, seed=2, normalize=normalize)
    got = huenet.emd(p, q, order=order, cyclic=cyclic)
    assert got.shape == shape[:-1]
    assert got.dtype == dtype
    want = oracle.emd(p, q, order, cyclic)
    # un-normalised inputs have cumulative sums up to ~K/2: scale the float32 tolerance
    atol = ATOL[dtype] * (1.0 if normalize else shape[-1])
    np.testing.assert_allclose(got.double().numpy(), want, rtol=0, atol=atol)


def test_emd_defaults_are_order1_linear():
    p = rand_hist((2, 3, 20), seed=3)
    q = rand_hist((2, 3, 20), seed=4)
    torch.testing.assert_close(huenet.emd(p, q), huenet.emd(p, q, order=1, cyclic=False), rtol=0, atol=0)
    np.testing.assert_allclose(huenet.emd(p, q).numpy(), oracle.emd(p, q, 1, False), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cyclic", [False, True], ids=["linear", "cyclic"])
@pytest.mark.parametrize("order", [1, 2])
def test_emd_even_K_median(order, cyclic):
    # even K: torch's lower median and the average median give the same l1 value
    for K in (2, 4, 10, 64):
        p = rand_hist((3, K), seed=K)
        q = rand_hist((3, K), seed=K + 1)
        np.testing.assert_allclose(huenet.emd(p, q, order, cyclic).numpy(), oracle.emd(p, q, order, cyclic), atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cyclic", [False, True], ids=["linear", "cyclic"])
@pytest.mark.parametrize("order", [1, 2])
def test_emd_identity_and_symmetry(order, cyclic, dtype):
    p = rand_hist((2, 3, 24), dtype, seed=5)
    q = rand_hist((2, 3, 24), dtype, seed=6)
    zero = huenet.emd(p, p, order=order, cyclic=cyclic)
    assert torch.all(zero.abs() <= ATOL[dtype])
    zero2 = huenet.emd(p, p.clone(), order=order, cyclic=cyclic)
    assert torch.all(zero2.abs() <= ATOL[dtype])
    torch.testing.assert_close(
        huenet.emd(p, q, order=order, cyclic=cyclic),
        huenet.emd(q, p, order=order, cyclic=cyclic),
        rtol=0,
        atol=ATOL[dtype],
    )
    assert torch.all(huenet.emd(p, q, order=order, cyclic=cyclic) > 0)


@pytest.mark.parametrize("order", [1, 2])
def test_emd_triangle_inequality(order):
    p, q, r = (rand_hist((50, 12), seed=s) for s in (7, 8, 9))
    for cyclic in (False, True):
        d = lambda a, b: huenet.emd(a, b, order=order, cyclic=cyclic)  # noqa: E731
        assert torch.all(d(p, r) <= d(p, q) + d(q, r) + 1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("order", [1, 2])
def test_cyclic_emd_roll_invariant(order, dtype):
    K = 37
    p = rand_hist((2, 3, K), dtype, seed=10)
    q = rand_hist((2, 3, K), dtype, seed=11)
    base = huenet.emd(p, q, order=order, cyclic=True)
    for shift in (1, 5, 18, 36, -3):
        rolled = huenet.emd(torch.roll(p, shift, -1), torch.roll(q, shift, -1), order=order, cyclic=True)
        torch.testing.assert_close(rolled, base, rtol=0, atol=10 * ATOL[dtype])


def test_cyclic_emd_wraparound_is_short():
    # mass at bin 0 vs mass at bin K-1: far apart on a line, neighbours on a circle
    K = 20
    p = torch.zeros(K, dtype=torch.float64)
    q = torch.zeros(K, dtype=torch.float64)
    p[0] = 1.0
    q[K - 1] = 1.0
    lin = huenet.emd(p, q, order=1, cyclic=False)
    cyc = huenet.emd(p, q, order=1, cyclic=True)
    assert abs(lin.item() - (K - 1) / K) < 1e-12  # W1 on the unit range
    assert abs(cyc.item() - 1 / K) < 1e-12  # one bin on the unit circle
    # and a one-bin shift costs one bin width in both
    q2 = torch.zeros(K, dtype=torch.float64)
    q2[1] = 1.0
    assert abs(huenet.emd(p, q2).item() - 1 / K) < 1e-12
    assert abs(huenet.emd(p, q2, cyclic=True).item() - 1 / K) < 1e-12


def _w1_sorted(a, b):
    """Exact W1 between two equal-size empirical distributions on the real line (sorting)."""
    return float(np.mean(np.abs(np.sort(np.ravel(a)) - np.sort(np.ravel(b)))))


def _w1_cdf_integral(a, b, grid_n=200001):
    """Independent second estimate: integral over the line of |F - G| on a fine grid."""
    a, b = np.ravel(a), np.ravel(b)
    t = np.linspace(-0.5, 1.5, grid_n)
    F = np.searchsorted(np.sort(a), t, side="right") / a.size
    G = np.searchsorted(np.sort(b), t, side="right") / b.size
    return float(np.trapezoid(np.abs(F - G), t)) if hasattr(np, "trapezoid") else float(np.trapz(np.abs(F - G), t))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("boundary", ["reflect", "circular", "none"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_hard_histogram_emd_equals_w1(backend, boundary, dtype):
    K = 10
    g = torch.Generator().manual_seed(12)
    ia = torch.randint(0, K, (1, 1, 8, 8), generator=g)
    ib = torch.randint(0, K, (1, 1, 8, 8), generator=g)
    ib[0, 0, 0, :3] = torch.tensor([0, K - 1, K - 1])  # make sure the ends of the range are used
    xa = ((ia.double() + 0.5) / K).to(dtype)
    xb = ((ib.double() + 0.5) / K).to(dtype)
    pa = huenet.soft_histogram(xa, bins=K, bandwidth=0.01, boundary=boundary, backend=backend)
    pb = huenet.soft_histogram(xb, bins=K, bandwidth=0.01, boundary=boundary, backend=backend)
    d = huenet.emd(pa, pb, order=1)
    w1 = _w1_sorted(xa.double().numpy(), xb.double().numpy())
    assert abs(_w1_cdf_integral(xa.double().numpy(), xb.double().numpy()) - w1) < 1e-4  # sanity of the W1
    assert w1 > 0.01
    assert abs(d.item() - w1) < (1e-5 if dtype == torch.float32 else 1e-10)


def test_emd_order2_cramer():
    # order 2 of a one-bin shift of a delta: sqrt(1/K)
    K = 16
    p = torch.zeros(1, K, dtype=torch.float64)
    q = torch.zeros(1, K, dtype=torch.float64)
    p[0, 3] = 1
    q[0, 4] = 1
    assert abs(huenet.emd(p, q, order=2).item() - (1 / K) ** 0.5) < 1e-12
    # cyclic: D = e_3 (one entry 1), minus mean 1/K -> sqrt(((1 - 1/K)^2 + (K-1)/K^2)/K)
    want = (((1 - 1 / K) ** 2 + (K - 1) / K**2) / K) ** 0.5
    assert abs(huenet.emd(p, q, order=2, cyclic=True).item() - want) < 1e-12


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_emd_of_soft_histograms_against_oracle(dtype):
    g = torch.Generator().manual_seed(13)
    x = torch.rand(2, 3, 6, 5, generator=g, dtype=torch.float64).to(dtype)
    y = torch.rand(2, 3, 6, 5, generator=g, dtype=torch.float64).to(dtype)
    for boundary, cyclic in (("reflect", False), ("circular", True)):
        p = huenet.soft_histogram(x, bins=32, boundary=boundary, backend="eager")
        q = huenet.soft_histogram(y, bins=32, boundary=boundary, backend="eager")
        want = oracle.emd(
            oracle.soft_histogram(x, 32, boundary=boundary), oracle.soft_histogram(y, 32, boundary=boundary), 1, cyclic
        )
        np.testing.assert_allclose(
            huenet.emd(p, q, cyclic=cyclic).double().numpy(), want, rtol=0, atol=10 * ATOL[dtype]
        )
