"""huenet.GlobalMutualInformationLoss against MONAI's GlobalMutualInformationLoss (the reference), masks,
constant images, gradients on every backend and bad input."""

import numpy as np
import pytest
import torch

import huenet
from conftest import ALL_BACKENDS

monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the reference (pip install -e '.[test]')")
KERNELS = ["gaussian", "b-spline"]


def _pair(shape, kernel, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(shape, generator=g, dtype=torch.float64)
    target = 0.6 * pred**2 + 0.4 * torch.rand(shape, generator=g, dtype=torch.float64)
    if kernel == "b-spline":  # any intensity range: the B-spline bins span min..max
        pred, target = 300 * pred - 40, 5 * target + 2
    else:  # some values outside [0, 1], which both clamp
        pred, target = 1.1 * pred - 0.05, target
    return pred.to(dtype), target.to(dtype)


def _value_and_grads(loss, pred, target, mask=None):
    pred, target = pred.clone().requires_grad_(), target.clone().requires_grad_()
    value = loss(pred, target) if mask is None else loss(pred, target, mask)
    grads = torch.autograd.grad(value.sum(), (pred, target), allow_unused=True, materialize_grads=True)
    return value.detach(), grads


def _close(got, want, rel):
    scale = max(want.abs().max().item(), 1e-300)
    np.testing.assert_allclose(got.double().numpy(), want.double().numpy(), rtol=0, atol=rel * scale)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bins,ratio", [(23, 0.5), (32, 0.2), (7, 2.0), (64, 1.0)])
def test_matches_monai_float64(backend, kernel, bins, ratio):
    """Value and gradients within 1e-6 relative in float64, for every reduction."""
    pred, target = _pair((2, 2, 9, 11), kernel, seed=bins)
    for reduction in ("mean", "sum", "none"):
        want = _value_and_grads(monai_losses.GlobalMutualInformationLoss(kernel, bins, ratio, reduction), pred, target)
        got = _value_and_grads(
            huenet.GlobalMutualInformationLoss(kernel, bins, ratio, reduction, backend=backend), pred, target
        )
        assert got[0].shape == want[0].shape
        np.testing.assert_allclose(got[0].numpy(), want[0].numpy(), rtol=1e-6, atol=0)
        for a, b in zip(got[1], want[1]):
            _close(a, b, 1e-6)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("shape", [(2, 1, 300), (1, 3, 14, 15), (2, 1, 6, 7, 8)], ids=["1d", "2d", "3d"])
def test_spatial_dims_float32_against_monai_float64(kernel, shape):
    """1-, 2- and 3-D inputs; float32 within 1e-4 absolute of MONAI in float64."""
    pred, target = _pair(shape, kernel, seed=5)
    want = monai_losses.GlobalMutualInformationLoss(kernel, 32, reduction="none")(pred, target)
    for backend in ("eager", "triton"):
        got = huenet.GlobalMutualInformationLoss(kernel, 32, reduction="none", backend=backend)(
            pred.float(), target.float()
        )
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.double().numpy(), want.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("backend", ["eager", "triton"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_bool_mask_is_monai_on_the_masked_voxels(backend, kernel):
    """Two batch items with masks of equal voxel counts: MONAI on the gathered voxels (B, 1, n), values and the
    gradients of the masked voxels; the others get zero gradient."""
    pred, target = _pair((2, 1, 10, 12), kernel, seed=7)
    mask = torch.zeros(2, 1, 10, 12, dtype=torch.bool)
    g = torch.Generator().manual_seed(8)
    for b in range(2):
        mask.view(2, -1)[b, torch.randperm(120, generator=g)[:70]] = True
    # Voxels outside the mask lie far outside the masked range: they must not move the B-spline's min/max.
    pred, target = pred.masked_fill(~mask, 1e4), target.masked_fill(~mask, -1e4)
    gathered = [t[mask].reshape(2, 1, 70) for t in (pred, target)]
    want = _value_and_grads(monai_losses.GlobalMutualInformationLoss(kernel, 24, reduction="none"), *gathered)
    got = _value_and_grads(
        huenet.GlobalMutualInformationLoss(kernel, 24, reduction="none", backend=backend), pred, target, mask
    )
    np.testing.assert_allclose(got[0].numpy(), want[0].numpy(), rtol=1e-6)
    for a, b in zip(got[1], want[1]):
        _close(a[mask].reshape(2, 1, 70), b, 1e-6)
        assert (a[~mask] == 0).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_float_mask_weights_voxels(kernel):
    """Integer float weights count a voxel that many times: MONAI on the voxels repeated; a (B, 1, ...) mask
    broadcasts over channels."""
    pred, target = _pair((1, 2, 5, 6), kernel, seed=9)
    g = torch.Generator().manual_seed(10)
    mask = torch.randint(0, 4, (1, 1, 5, 6), generator=g).to(torch.float64)
    counts = mask.expand_as(pred).flatten().long()
    repeated = [t.flatten().repeat_interleave(counts).reshape(1, 1, -1) for t in (pred, target)]
    want = monai_losses.GlobalMutualInformationLoss(kernel, 16)(*repeated)
    got = huenet.GlobalMutualInformationLoss(kernel, 16)(pred, target, mask)
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_constant_images_are_finite(backend):
    """MONAI's B-spline gives NaN on a constant image; here the image takes a range of 1, every voxel sits in
    the first unpadded bin, pred and target are independent and MI = log(1 + smooth_dr)-ish ≈ 0, with finite
    gradients. The Gaussian matches MONAI, which is finite there."""
    pred = torch.full((1, 1, 6, 6), 0.3, dtype=torch.float64)
    target = _pair((1, 1, 6, 6), "gaussian", seed=11)[1]
    assert torch.isnan(monai_losses.GlobalMutualInformationLoss("b-spline", 16)(pred, target))
    value, grads = _value_and_grads(huenet.GlobalMutualInformationLoss("b-spline", 16, backend=backend), pred, target)
    assert abs(value.item()) < 1e-6
    assert all(torch.isfinite(g).all() for g in grads)
    value, grads = _value_and_grads(huenet.GlobalMutualInformationLoss("b-spline", 16, backend=backend), target, pred)
    assert abs(value.item()) < 1e-6 and all(torch.isfinite(g).all() for g in grads)
    want = monai_losses.GlobalMutualInformationLoss("gaussian", 16)(pred, target)
    got = huenet.GlobalMutualInformationLoss("gaussian", 16, backend=backend)(pred, target)
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_gradcheck(backend, kernel):
    pred, target = _pair((1, 1, 4, 5), kernel, seed=12)
    if kernel == "gaussian":
        pred = pred.clamp(0.01, 0.99)  # away from the clamp's kinks
    mask = torch.rand(1, 1, 4, 5, generator=torch.Generator().manual_seed(13), dtype=torch.float64) + 0.1
    loss = huenet.GlobalMutualInformationLoss(kernel, 12, backend=backend)
    leaves = (pred.requires_grad_(), target.requires_grad_())
    assert torch.autograd.gradcheck(lambda p, t: loss(p, t, mask), leaves)


@pytest.mark.parametrize(
    "kwargs,call,match",
    [
        ({"kernel_type": "cubic"}, None, "`kernel_type` must be one of 'gaussian', 'b-spline'"),
        ({"num_bins": 1}, None, "`num_bins` must be an int >= 2"),
        ({"kernel_type": "b-spline", "num_bins": 4}, None, "`num_bins` must be an int >= 5"),
        ({"sigma_ratio": 0.0}, None, "`sigma_ratio` must be a finite number > 0"),
        ({"reduction": "max"}, None, "`reduction` must be one of"),
        ({}, "shape", "`target` must be of the same shape as `pred`"),
        ({}, "zero mask", "`mask` must be nonzero somewhere in every batch item"),
        ({}, "negative mask", "`mask` must be finite and >= 0"),
        ({}, "mask shape", "`mask` must be broadcastable to pred's shape"),
        ({}, "2-d", "`pred` must be of shape \\(B, C, \\*spatial\\) with 1, 2 or 3 spatial dimensions"),
    ],
)
def test_bad_input(kwargs, call, match):
    x = torch.rand(2, 1, 5, 5)
    with pytest.raises((ValueError, TypeError), match=match):
        loss = huenet.GlobalMutualInformationLoss(**kwargs)
        if call == "shape":
            loss(x, torch.rand(2, 1, 5, 4))
        elif call == "zero mask":
            mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
            mask[1] = False
            loss(x, x, mask)
        elif call == "negative mask":
            loss(x, x, -torch.ones(2, 1, 5, 5))
        elif call == "mask shape":
            loss(x, x, torch.ones(3, 1, 5, 5))
        elif call == "2-d":
            loss(x[:, 0, 0], x[:, 0, 0])


def test_eager_restores_the_thread_setting():
    """The eager chunks run with one intra-op thread on the CPU; the process's setting comes back after the
    forward and the backward."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pred, target = _pair((1, 1, 6, 6), "gaussian", seed=14)
        pred.requires_grad_()
        huenet.GlobalMutualInformationLoss(backend="eager")(pred, target).backward()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
