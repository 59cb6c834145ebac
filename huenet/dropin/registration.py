r"""Global mutual information for image registration, a drop-in for MONAI's ``GlobalMutualInformationLoss``,
with masks, finite values on constant images, and O(N + K²) memory on the eager and Triton backends.

MONAI's formulas (1.6.1, ``monai/losses/image_dissimilarity.py``), reproduced to rounding: for each batch item
b every voxel of every channel is a sample; with weights :math:`a_n` of pred and :math:`b_n` of target,

.. math::
    p_{ab} = \frac{\sum_n m_n\, a_n b_n^\top}{\sum_n m_n},\quad p_a = p_{ab} 1,\quad p_b = 1^\top p_{ab},\qquad
    \mathrm{MI} = \sum p_{ab} \log\Big(\frac{p_{ab} + \epsilon_{nr}}{p_a p_b^\top + \epsilon_{dr}} + \epsilon_{dr}\Big)

and the loss is -MI (m = 1 without a mask).

* ``"gaussian"``: values clamped to [0, 1]; centres ``linspace(0, 1, K)`` and σ = mean bin spacing × sigma_ratio,
  both computed in float32 as MONAI does; weights exp(-(x - c)²/(2σ²)) normalised over the K bins per voxel.
* ``"b-spline"`` (Mattes): bin size (max - min)/(K - 4) from the min and max over the whole tensor (over the
  masked voxels with a mask), two padding bins each side; positions x/size - (min/size - 2) clamped to
  [2, K - 3]; pred takes the cubic B-spline, target the order-0 box (so target gets no gradient).
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import nn

from .. import _checks
from ..backends import DEFAULT_BACKEND
from ..histogram import compute_dtype
from .parzen import ParzenWindow, parzen_joint

KERNELS = ("gaussian", "b-spline")
#: Padding bins on each side of the B-spline histogram.
PADDING = 2


def _check_args(op, kernel_type, num_bins, sigma_ratio, reduction, smooth_nr, smooth_dr):
    _checks.check_choice(op, "kernel_type", kernel_type, KERNELS)
    least = 2 * PADDING + 1 if kernel_type == "b-spline" else 2
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < least:
        fail_why = f"an int >= {least}" + (" (the B-spline pads 2 bins each side)" if least > 2 else "")
        _checks.fail(op, "num_bins", fail_why, repr(num_bins))
    for name, value, positive in (
        ("sigma_ratio", sigma_ratio, True),
        ("smooth_nr", smooth_nr, False),
        ("smooth_dr", smooth_dr, False),
    ):
        bad = isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
        if bad or (value <= 0 if positive else value < 0):
            _checks.fail(op, name, "a finite number " + ("> 0" if positive else ">= 0"), repr(value))
    _checks.check_choice(op, "reduction", reduction, _checks.REDUCTIONS)


def _check_inputs(op, pred, target, mask):
    for name, t in (("pred", pred), ("target", target)):
        _checks.check_float_tensor(op, name, t)
        if not 3 <= t.ndim <= 5:
            _checks.fail(
                op, name, "of shape (B, C, *spatial) with 1, 2 or 3 spatial dimensions", f"shape {tuple(t.shape)}"
            )
    _checks.check_same(op, "target", target, "pred", pred)
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or not (mask.dtype == torch.bool or mask.is_floating_point()):
        _checks.fail(
            op,
            "mask",
            "a bool or float tensor",
            type(mask).__name__ if not isinstance(mask, torch.Tensor) else f"dtype {mask.dtype}",
            TypeError,
        )
    if mask.device != pred.device:
        _checks.fail(op, "mask", f"on the same device as `pred` ({pred.device})", f"device {mask.device}")
    try:
        broadcast = torch.broadcast_shapes(mask.shape, pred.shape) == pred.shape
    except RuntimeError:
        broadcast = False
    if not broadcast:
        _checks.fail(op, "mask", f"broadcastable to pred's shape {tuple(pred.shape)}", f"shape {tuple(mask.shape)}")
    mask = mask.expand_as(pred)
    if mask.is_floating_point():
        if not bool(torch.isfinite(mask).all()) or bool((mask < 0).any()):
            _checks.fail(op, "mask", "finite and >= 0", "negative or non-finite values")
    if not bool((mask.reshape(mask.shape[0], -1) != 0).any(1).all()):
        _checks.fail(op, "mask", "nonzero somewhere in every batch item", "an all-zero mask")
    return mask


@torch.no_grad()
def _gaussian_constants(bins: int, sigma_ratio: float) -> tuple[torch.Tensor, float]:
    """MONAI's bin centres and 1/(2σ²), computed in float32 as it does (its float32 rounding of the centres
    moves float64 gradients by up to 6e-6 relative)."""
    centres = torch.linspace(0.0, 1.0, bins)
    sigma = torch.mean(centres[1:] - centres[:-1]) * sigma_ratio
    return centres, float(1 / (2 * sigma**2))


def _bspline_positions(img: torch.Tensor, valid: torch.Tensor | None, bins: int) -> torch.Tensor:
    """MONAI's B-spline window positions, by its operations in its order (so the clamps fall alike).

    A constant image (max == min) takes a range of 1 instead of MONAI's 0 (NaN): its voxels all sit at the
    first unpadded bin, and the loss and its gradients are finite.
    """
    values = img if valid is None else img[valid]
    hi, lo = torch.max(values), torch.min(values)
    span = hi - lo
    span = torch.where(span > 0, span, torch.ones_like(span))
    bin_size = span / (bins - 2 * PADDING)
    norm_min = torch.div(lo, bin_size) - PADDING
    return torch.clamp(torch.div(img, bin_size) - norm_min, PADDING, bins - PADDING - 1)


# MONAI's defaults, kept by the drop-in.
KERNEL_TYPE = "gaussian"
NUM_BINS = 23
SIGMA_RATIO = 0.5
SMOOTH_NR = 1e-7
SMOOTH_DR = 1e-7


def global_mutual_information(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    kernel_type: str = KERNEL_TYPE,
    num_bins: int = NUM_BINS,
    sigma_ratio: float = SIGMA_RATIO,
    smooth_nr: float = SMOOTH_NR,
    smooth_dr: float = SMOOTH_DR,
    backend: str = DEFAULT_BACKEND,
) -> torch.Tensor:
    """MONAI's global mutual information of each batch item, (B,); see the module docstring for the formulas.

    Args:
        pred, target: (B, C, *spatial) with 1-3 spatial dimensions, one shape; channels are pooled as samples.
            Float16/bfloat16 compute in float32.
        mask: optional bool or float weights, broadcastable to pred's shape, >= 0 and nonzero in every batch
            item; the MI is that of the voxels with a nonzero mask (float masks weight them).
        kernel_type, num_bins, sigma_ratio, smooth_nr, smooth_dr: as MONAI's.
        backend: "auto", "eager", "reference" or "triton".

    Returns:
        (B,) MI in nats.

    Example:
        >>> x = torch.rand(2, 1, 8, 8, 8)
        >>> global_mutual_information(x, x ** 2).shape
        torch.Size([2])
    """
    op = "GlobalMutualInformationLoss"
    _check_args(op, kernel_type, num_bins, sigma_ratio, "mean", smooth_nr, smooth_dr)
    mask = _check_inputs(op, pred, target, mask)
    dtype = compute_dtype(pred, target)
    pred, target = pred.to(dtype), target.to(dtype)
    valid = None if mask is None else mask != 0
    if kernel_type == "gaussian":
        centres, preterm = _gaussian_constants(num_bins, sigma_ratio)
        centres = centres.to(dtype=dtype, device=pred.device)
        window = ParzenWindow("gaussian", preterm, normalized=True)
        x, y, windows = pred.clamp(0, 1), target.clamp(0, 1), (window, window)
    else:
        centres = torch.arange(num_bins, dtype=dtype, device=pred.device)
        x, y = _bspline_positions(pred, valid, num_bins), _bspline_positions(target, valid, num_bins)
        windows = (ParzenWindow("b-spline", 1.0), ParzenWindow("box", 1.0))
    b = pred.shape[0]
    w = None if mask is None else mask.to(dtype).reshape(b, -1)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        total = parzen_joint(op, x.reshape(b, -1), y.reshape(b, -1), w, (centres, centres), windows, backend)
    samples = w.sum(1)[:, None, None] if w is not None else float(x[0].numel())
    pab = total / samples
    papb = pab.sum(2, keepdim=True) * pab.sum(1, keepdim=True)
    return torch.sum(pab * torch.log((pab + smooth_nr) / (papb + smooth_dr) + smooth_dr), dim=(1, 2))


class GlobalMutualInformationLoss(nn.Module):
    """-MI between pred and target, a drop-in for ``monai.losses.GlobalMutualInformationLoss`` (same arguments,
    values and gradients) with an optional ``mask`` and a ``backend``; see :func:`global_mutual_information`.

    Args:
        kernel_type: "gaussian" or "b-spline".
        num_bins: K >= 2 ("gaussian") or >= 5 ("b-spline": 2 padding bins each side).
        sigma_ratio: Gaussian σ in bin spacings, > 0.
        reduction: "mean", "sum" (over the batch) or "none" ((B,)).
        smooth_nr, smooth_dr: MONAI's smoothing constants, >= 0.
        backend: "auto", "eager", "reference" or "triton".

    Example:
        >>> loss = GlobalMutualInformationLoss(kernel_type="b-spline", num_bins=32)
        >>> fixed = torch.rand(1, 1, 16, 16, 16)
        >>> bool(loss(fixed, fixed) < loss(fixed, torch.rand_like(fixed)))
        True
    """

    def __init__(
        self,
        kernel_type: str = KERNEL_TYPE,
        num_bins: int = NUM_BINS,
        sigma_ratio: float = SIGMA_RATIO,
        reduction: str = _checks.DEFAULT_REDUCTION,
        smooth_nr: float = SMOOTH_NR,
        smooth_dr: float = SMOOTH_DR,
        backend: str = DEFAULT_BACKEND,
    ):
        super().__init__()
        _check_args("GlobalMutualInformationLoss", kernel_type, num_bins, sigma_ratio, reduction, smooth_nr, smooth_dr)
        self.kernel_type, self.num_bins, self.sigma_ratio = kernel_type, num_bins, float(sigma_ratio)
        self.reduction, self.smooth_nr, self.smooth_dr, self.backend = (
            reduction,
            float(smooth_nr),
            float(smooth_dr),
            backend,
        )

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """-MI: a scalar for "mean" and "sum", (B,) for "none"."""
        mi = global_mutual_information(
            pred,
            target,
            mask,
            self.kernel_type,
            self.num_bins,
            self.sigma_ratio,
            self.smooth_nr,
            self.smooth_dr,
            self.backend,
        )
        if self.reduction == "sum":
            return torch.sum(mi).neg()
        if self.reduction == "none":
            return mi.neg()
        return torch.mean(mi).neg()
