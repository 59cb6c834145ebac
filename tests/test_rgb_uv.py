"""huenet.rgb_uv_histogram and RGBuvHistogramLoss against a float64 oracle written from HistoGAN's formulas
(tests/oracle_families.py), gradients on every backend, and bad input."""

import numpy as np
import oracle_families as of
import pytest
import torch

import huenet
from conftest import ALL_BACKENDS


def _images(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = 1.1 * torch.rand(shape, generator=g, dtype=torch.float64) - 0.05  # clamped at both ends
    x[0, 0, 0] = 0.0  # a zero channel: log(0 + eps)
    return x.to(dtype)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("kernel", ["inverse-quadratic", "rbf"])
@pytest.mark.parametrize("intensity_scale", [True, False])
def test_histogram_matches_oracle(backend, kernel, intensity_scale):
    x = _images((2, 3, 9, 13))
    for bins, sigma, boundary in ((64, 0.02, 3.0), (20, 0.3, 2.0)):
        got = huenet.rgb_uv_histogram(x, bins, sigma, boundary, intensity_scale, kernel, backend=backend)
        want = of.rgb_uv_histogram(x, bins, sigma, boundary, intensity_scale, kernel)
        assert got.shape == (2, 3, bins, bins)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("backend", ["eager", "triton"])
def test_histogram_float32(backend):
    x = _images((2, 3, 16, 16), seed=1)
    got = huenet.rgb_uv_histogram(x.float(), backend=backend)
    assert got.dtype == torch.float32
    want = of.rgb_uv_histogram(x)
    np.testing.assert_allclose(got.double().numpy(), want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_inverse_quadratic_tails_are_not_truncated():
    """A pixel far from every bin still adds 1/(1 + (d/σ)²) to all of them: with one pixel the histogram is
    the normalised outer product of its two kernel rows, however far out it lies."""
    x = torch.tensor([0.9, 0.001, 0.5], dtype=torch.float64).reshape(1, 3, 1, 1)  # R: u = log(900) ≈ 6.8
    for backend in ("eager", "triton"):
        got = huenet.rgb_uv_histogram(x, bins=16, backend=backend)
        np.testing.assert_allclose(got.numpy(), of.rgb_uv_histogram(x, bins=16), rtol=1e-10)
        assert (got[0, 0] > 0).all()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_loss_matches_oracle_with_different_sizes(backend):
    out, tgt = _images((2, 3, 12, 10), seed=2), _images((2, 3, 7, 15), seed=3)
    want = of.hellinger(of.rgb_uv_histogram(out, 32, 0.05), of.rgb_uv_histogram(tgt, 32, 0.05))
    for reduction, reduce in (("none", lambda a: a), ("mean", np.mean), ("sum", np.sum)):
        got = huenet.RGBuvHistogramLoss(32, 0.05, reduction=reduction, backend=backend)(out, tgt)
        np.testing.assert_allclose(got.numpy(), reduce(want), rtol=1e-6)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("kernel", ["inverse-quadratic", "rbf"])
def test_gradcheck_histogram(backend, kernel):
    x = (0.2 + 0.6 * _images((1, 3, 3, 4), seed=4)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: huenet.rgb_uv_histogram(t, bins=6, sigma=0.4, boundary=1.0, kernel=kernel, backend=backend),
        (x,),
        fast_mode=True,
    )


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_gradcheck_loss(backend):
    out = (0.2 + 0.6 * _images((2, 3, 3, 3), seed=5)).requires_grad_()
    tgt = (0.2 + 0.6 * _images((2, 3, 4, 2), seed=6)).requires_grad_()
    loss = huenet.RGBuvHistogramLoss(bins=6, sigma=0.4, boundary=1.0, backend=backend)
    assert torch.autograd.gradcheck(loss, (out, tgt))


def test_identical_images_give_zero_loss_and_finite_gradients():
    """At output == target the Hellinger norm is 0 and its gradient is taken as 0; "rbf" histograms have
    empty bins, where sqrt's slope is infinite, and still give finite gradients."""
    x = _images((1, 3, 6, 6), seed=7).requires_grad_()
    for kernel in ("inverse-quadratic", "rbf"):
        loss = huenet.RGBuvHistogramLoss(kernel=kernel)(x, x.detach())
        (grad,) = torch.autograd.grad(loss, x)
        assert loss.item() == 0 and torch.isfinite(grad).all()
    y = _images((1, 3, 6, 6), seed=8)
    (grad,) = torch.autograd.grad(huenet.RGBuvHistogramLoss(kernel="rbf")(x, y), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda x: huenet.rgb_uv_histogram(x, kernel="thresholding"), "`kernel` must be one of"),
        (lambda x: huenet.rgb_uv_histogram(x, bins=1), "`bins` must be an int >= 2"),
        (lambda x: huenet.rgb_uv_histogram(x, sigma=0), "`sigma` must be a finite number > 0"),
        (lambda x: huenet.rgb_uv_histogram(x, boundary=-1.0), "`boundary` must be a finite number > 0"),
        (lambda x: huenet.rgb_uv_histogram(x[:, :2]), "`images` must be RGB images of shape \\(B, 3, \\*spatial\\)"),
        (lambda x: huenet.RGBuvHistogramLoss(reduction="max"), "`reduction` must be one of"),
        (lambda x: huenet.RGBuvHistogramLoss()(x, x[:1]), "`target` must be of the output's batch size 2"),
        (lambda x: huenet.RGBuvHistogramLoss()(x, x[:, :1]), "`target` must be RGB images"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make(torch.rand(2, 3, 4, 4))
