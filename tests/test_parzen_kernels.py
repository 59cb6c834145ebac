"""The Parzen joint kernels (huenet.kernels.parzen_joint) with every autotune config forced, at sizes that span
several programs: 4100 pixels forward (several pixel blocks and at least two pixel splits), 1100 backward, K = 40 bins (two
or three bin tiles, and the sort of compactly supported x above 32 bins). Under TRITON_INTERPRET=1 on the CPU,
compiled on a GPU. Forward against the float64 NumPy oracle, gradients against the reference backend's float64
autograd (dense weights, torch's own derivatives)."""

import numpy as np
import oracle_families as of
import pytest
import torch

from conftest import ALL_BACKENDS
from huenet import kernels
from huenet.dropin.parzen import ParzenWindow, parzen_joint
from huenet.kernels import parzen_joint as pj

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BINS = 40
# (x window, y window, centres): every shape, normalised and not, on each axis.
PAIRS = {
    "bspline-box": (ParzenWindow("b-spline", 1.0), ParzenWindow("box", 1.0), "integers"),
    "invquad-gauss": (ParzenWindow("inverse-quadratic", 400.0), ParzenWindow("gaussian", 900.0), "unit"),
    "gauss-bspline": (ParzenWindow("gaussian", 0.5), ParzenWindow("b-spline", 0.8), "integers"),
}


def _inputs(pair, n, dtype, seed=0, rows=1):
    g = torch.Generator().manual_seed(seed)
    if PAIRS[pair][2] == "integers":
        centres = torch.arange(BINS, dtype=torch.float64)
        x = 2 + (BINS - 5) * torch.rand(rows, n, generator=g, dtype=torch.float64)
        y = 2 + (BINS - 5) * torch.rand(rows, n, generator=g, dtype=torch.float64)
        y[:, :50] = torch.floor(y[:, :50]) + 0.5  # the box's ties at half a bin
        x = x.sort(1).values.flip(1)  # sorted the wrong way: the launcher's sort must put it right
    else:
        centres = torch.linspace(0, 1, BINS, dtype=torch.float64)
        x = 1.2 * torch.rand(rows, n, generator=g, dtype=torch.float64) - 0.1
        y = torch.rand(rows, n, generator=g, dtype=torch.float64)
    w = 0.1 + torch.rand(rows, n, generator=g, dtype=torch.float64)
    return [t.to(dtype).to(DEVICE) for t in (x, y, w, centres)]


def _oracle(x, y, w, centres, pair):
    windows = [(p.shape, p.scale, p.normalized) for p in PAIRS[pair][:2]]
    return of.parzen_joint(x.cpu(), y.cpu(), w.cpu(), (centres.cpu(), centres.cpu()), windows)


def _configs(kernel):
    return [
        pytest.param(index, pair, id=f"config{index}-{pair}") for index in range(len(kernel.configs)) for pair in PAIRS
    ]


@pytest.mark.parametrize("index,pair", _configs(pj._forward_kernel))
def test_forward_every_config(index, pair):
    x, y, w, centres = _inputs(pair, 4100, torch.float32)
    assert pj.partial_splits(1, 4100, 4) >= 2
    with kernels.pinned(pj._forward_kernel, index):
        got = parzen_joint("test", x, y, w, (centres, centres), PAIRS[pair][:2], backend="triton")
    want = _oracle(x, y, w, centres, pair)
    np.testing.assert_allclose(got.cpu().double().numpy(), want, rtol=0, atol=2e-6 * np.abs(want).max())


@pytest.mark.parametrize("index,pair", _configs(pj._backward_kernel))
def test_backward_every_config(index, pair):
    x, y, w, centres = _inputs(pair, 1100, torch.float32, seed=1)
    x, y, w = (t.requires_grad_() for t in (x, y, w))
    g = torch.randn(1, BINS, BINS, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    with kernels.pinned(pj._backward_kernel, index):
        out = parzen_joint("test", x, y, w, (centres, centres), PAIRS[pair][:2], backend="triton")
        got = torch.autograd.grad((out * g).sum(), (x, y, w))
    leaves = [t.detach().double().requires_grad_() for t in (x, y, w)]
    ref = parzen_joint("test", *leaves, (centres.double(),) * 2, PAIRS[pair][:2], backend="reference")
    want = torch.autograd.grad((ref * g.double()).sum(), leaves, allow_unused=True, materialize_grads=True)
    for name, a, b in zip("xyw", got, want):
        scale = max(b.abs().max().item(), 1e-12)
        np.testing.assert_allclose(a.cpu().double().numpy(), b.cpu().numpy(), rtol=0, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize("backend", ["triton", "eager"])
def test_normalised_gaussian_float64(backend):
    """The per-value normaliser (MONAI's Gaussian) in float64 over several blocks, values and gradients; and a
    width so narrow that an unshifted exponential would underflow to 0/0 at every bin."""
    g = torch.Generator().manual_seed(3)
    centres = torch.linspace(0, 1, 23, dtype=torch.float64).to(DEVICE)
    x, y, w = (torch.rand(2, 300, generator=g, dtype=torch.float64).to(DEVICE).requires_grad_() for _ in range(3))
    for scale in (968.0, 3e6):
        window = ParzenWindow("gaussian", scale, normalized=True)
        out = parzen_joint("test", x, y, w, (centres, centres), (window, window), backend=backend)
        with np.errstate(invalid="ignore"):  # the narrow case's 0/0, asserted below
            want = of.parzen_joint(
                x.detach().cpu(),
                y.detach().cpu(),
                w.detach().cpu(),
                (centres.cpu(),) * 2,
                [("gaussian", scale, True)] * 2,
            )
        if scale < 1e4:
            np.testing.assert_allclose(out.detach().cpu().numpy(), want, rtol=1e-12, atol=1e-14)
        else:  # the oracle's unshifted exponentials underflow (NaN); every value still has unit total weight
            assert np.isnan(want).all()
            np.testing.assert_allclose(
                out.detach().sum((1, 2)).cpu().numpy(), w.detach().sum(1).cpu().numpy(), rtol=1e-12
            )
        assert all(torch.isfinite(t).all() for t in torch.autograd.grad(out.sum(), (x, y, w)))
    small = [t.detach()[:1, :8].clone().requires_grad_() for t in (x, y, w)]
    window = ParzenWindow("gaussian", 300.0, normalized=True)
    # fast_mode: random projections of the (K, K) output, not one backward per output element.
    assert torch.autograd.gradcheck(
        lambda a, b, c: parzen_joint("test", a, b, c, (centres, centres), (window, window), backend=backend),
        small,
        fast_mode=True,
    )


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("pair", list(PAIRS))
def test_gradcheck_float64(backend, pair):
    x, y, w, centres = _inputs(pair, 6, torch.float64, seed=4, rows=2)
    if PAIRS[pair][2] == "integers":  # keep the B-splines off their knots, where they are only C²
        x, y = x + 0.013, y + 0.021
    leaves = [t.requires_grad_() for t in (x, y, w)]
    assert torch.autograd.gradcheck(
        lambda a, b, c: parzen_joint("test", a, b, c, (centres, centres), PAIRS[pair][:2], backend=backend),
        leaves,
        fast_mode=True,
    )
