r"""HistoGAN's RGB-uv histogram (Afifi et al., CVPR 2021) and its Hellinger loss, without HistoGAN's resizing
and in O(N + K²) memory on the eager and Triton backends.

For an RGB image clamped to [0, 1] and each channel c, the log-chroma of c against the other two,

.. math::
    u_R = \log\frac{R + \epsilon}{G + \epsilon},\ v_R = \log\frac{R + \epsilon}{B + \epsilon},\quad
    u_G = \log\frac{G + \epsilon}{R + \epsilon},\ v_G = \log\frac{G + \epsilon}{B + \epsilon},\quad
    u_B = \log\frac{B + \epsilon}{R + \epsilon},\ v_B = \log\frac{B + \epsilon}{G + \epsilon}

(each log taken as log(x + ε) and subtracted), bin centres ``linspace(-boundary, boundary, bins)`` and a kernel
k(d) = 1/(1 + (d/σ)²) ("inverse-quadratic", unbounded support: every bin is evaluated) or exp(-(d/σ)²) ("rbf"),

.. math::
    H_c = (I \cdot K_{u_c})^\top K_{v_c},\qquad I = \sqrt{R^2 + G^2 + B^2 + \epsilon}\ (\text{or } 1),\qquad
    H \leftarrow H / \big(\textstyle\sum_{c, k_1, k_2} H_{c k_1 k_2} + \epsilon\big).
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

KERNELS = {"inverse-quadratic": "inverse-quadratic", "rbf": "gaussian"}
# (numerator, denominators u and v) of each channel's log-ratios, in R, G, B order.
_PAIRS = ((0, 1, 2), (1, 0, 2), (2, 0, 1))


def _check_positive(op: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        _checks.fail(op, name, "a finite number > 0", repr(value))
    return float(value)


def _check_args(op, bins, sigma, boundary, kernel, eps):
    _checks.check_bins(op, bins)
    _checks.check_choice(op, "kernel", kernel, tuple(KERNELS))
    return (
        _check_positive(op, "sigma", sigma),
        _check_positive(op, "boundary", boundary),
        _check_positive(op, "eps", eps),
    )


def _check_images(op: str, name: str, images: object) -> torch.Tensor:
    _checks.check_image(op, name, images)
    if images.shape[1] != 3:
        _checks.fail(op, name, "RGB images of shape (B, 3, *spatial)", f"shape {tuple(images.shape)}")
    return images


# HistoGAN's defaults, kept by the drop-in.
BINS = 64
SIGMA = 0.02
BOUNDARY = 3.0
INTENSITY_SCALE = True
KERNEL = "inverse-quadratic"
EPS = 1e-6


def rgb_uv_histogram(
    images: torch.Tensor,
    bins: int = BINS,
    sigma: float = SIGMA,
    boundary: float = BOUNDARY,
    intensity_scale: bool = INTENSITY_SCALE,
    kernel: str = KERNEL,
    eps: float = EPS,
    backend: str = DEFAULT_BACKEND,
) -> torch.Tensor:
    """HistoGAN's RGB-uv histogram (module docstring) of RGB images, differentiable in the images.

    Args:
        images: (B, 3, *spatial) RGB, clamped to [0, 1]; float16/bfloat16 compute in float32.
        bins: K >= 2 bins per axis.
        sigma: kernel width σ in log-chroma units, > 0.
        boundary: the centres span [-boundary, boundary].
        intensity_scale: weight each pixel by sqrt(R² + G² + B² + eps).
        kernel: "inverse-quadratic" or "rbf".
        eps: ε of the logs, of the intensity and of the normalisation, > 0.
        backend: "auto", "eager", "reference" or "triton".

    Returns:
        (B, 3, bins, bins), rows indexing u and columns v, summing to just under 1 per image.

    Example:
        >>> rgb_uv_histogram(torch.rand(2, 3, 32, 32), bins=16).shape
        torch.Size([2, 3, 16, 16])
    """
    op = "rgb_uv_histogram"
    sigma, boundary, eps = _check_args(op, bins, sigma, boundary, kernel, eps)
    _check_images(op, "images", images)
    dtype = compute_dtype(images)
    x = images.to(dtype).clamp(0, 1).flatten(2)
    b, n = x.shape[0], x.shape[2]
    logs = torch.log(x + eps)
    u = torch.stack([logs[:, c] - logs[:, p] for c, p, _ in _PAIRS], 1).reshape(b * 3, n)
    v = torch.stack([logs[:, c] - logs[:, q] for c, _, q in _PAIRS], 1).reshape(b * 3, n)
    w = None
    if intensity_scale:
        w = torch.sqrt((x * x).sum(1, keepdim=True) + eps).expand(b, 3, n).reshape(b * 3, n)
    centres = torch.linspace(-boundary, boundary, bins, dtype=dtype, device=x.device)
    window = ParzenWindow(KERNELS[kernel], 1.0 / sigma**2)
    with torch.autocast(device_type=x.device.type, enabled=False):
        hist = parzen_joint(op, u, v, w, (centres, centres), (window, window), backend).reshape(b, 3, bins, bins)
    return hist / (hist.sum((1, 2, 3), keepdim=True) + eps)


def _sqrt(h: torch.Tensor) -> torch.Tensor:
    """sqrt with gradient 0 at 0 (an "rbf" histogram has empty bins, where sqrt's slope is infinite)."""
    positive = h > 0
    return torch.where(positive, h, torch.ones_like(h)).sqrt() * positive


class RGBuvHistogramLoss(nn.Module):
    """Hellinger distance (1/√2)·‖√H_target - √H_output‖₂ between RGB-uv histograms (:func:`rgb_uv_histogram`),
    per sample: HistoGAN's ``RGBuvHistBlock`` plus its Hellinger loss, without resizing the images.

    Args:
        bins, sigma, boundary, intensity_scale, kernel: as in :func:`rgb_uv_histogram` (eps 1e-6).
        reduction: "mean", "sum" (over the batch) or "none" ((B,)).
        backend: "auto", "eager", "reference" or "triton".

    The output and the target are (B, 3, *spatial) of one batch size; their spatial sizes may differ. Values
    lie in [0, 1].

    Example:
        >>> loss = RGBuvHistogramLoss(bins=32)
        >>> out, tgt = torch.rand(2, 3, 64, 64, requires_grad=True), torch.rand(2, 3, 48, 48)
        >>> loss(out, tgt).backward()
    """

    def __init__(
        self,
        bins: int = BINS,
        sigma: float = SIGMA,
        boundary: float = BOUNDARY,
        intensity_scale: bool = INTENSITY_SCALE,
        kernel: str = KERNEL,
        reduction: str = _checks.DEFAULT_REDUCTION,
        backend: str = DEFAULT_BACKEND,
    ):
        super().__init__()
        op = "RGBuvHistogramLoss"
        _check_args(op, bins, sigma, boundary, kernel, EPS)
        _checks.check_choice(op, "reduction", reduction, _checks.REDUCTIONS)
        self.bins, self.sigma, self.boundary = bins, float(sigma), float(boundary)
        self.intensity_scale, self.kernel, self.reduction, self.backend = intensity_scale, kernel, reduction, backend

    def histogram(self, images: torch.Tensor) -> torch.Tensor:
        """The RGB-uv histogram (B, 3, bins, bins) this loss compares."""
        return rgb_uv_histogram(
            images, self.bins, self.sigma, self.boundary, self.intensity_scale, self.kernel, backend=self.backend
        )

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Hellinger distance: a scalar for "mean" and "sum", (B,) for "none"."""
        op = "RGBuvHistogramLoss"
        _check_images(op, "output", output)
        _check_images(op, "target", target)
        if output.shape[0] != target.shape[0]:
            _checks.fail(op, "target", f"of the output's batch size {output.shape[0]}", f"batch size {target.shape[0]}")
        diff = _sqrt(self.histogram(target)) - _sqrt(self.histogram(output))
        loss = torch.linalg.vector_norm(diff.flatten(1), dim=1) / math.sqrt(2.0)
        if self.reduction == "sum":
            return loss.sum()
        if self.reduction == "none":
            return loss
        return loss.mean()
