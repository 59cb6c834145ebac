r"""Evaluation metrics for colour transfer, on hard (counted) histograms so they do not depend on a kernel.

- colour, output vs target: :func:`hue_emd` (cyclic W1 of 256-bin hue histograms),
  :func:`hue_intersection` (histogram intersection of the same histograms) and :func:`ab_swd` (sliced
  Wasserstein distance of the CIELAB a*b* distributions, which no loss of this package optimises directly);
- structure, output vs source: :func:`v_mi_distance` (:math:`D_{MI} = 1 - I/H` of the V channels),
  :func:`v_ssim` (SSIM of the V channels) and :func:`lightness_ssim` (SSIM of CIELAB lightness).

Hue histograms weight each pixel by its saturation, as the training loss does: a grey pixel has no hue, and
counting it as hue 0 (red) would measure nothing but the amount of grey.

All functions take RGB batches in [0, 1], (B, 3, H, W) (the target may have another size), and return (B,).

Example:
    >>> a, b = torch.rand(2, 2, 3, 32, 32).unbind(0)
    >>> sorted(transfer_metrics(a, a, b))
    ['ab_swd', 'hue_emd', 'hue_intersection', 'lightness_ssim', 'v_mi_distance', 'v_ssim']
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..color import rgb_to_hsv, rgb_to_lab
from ..emd import emd
from ..information import histogram_entropies, mi_distance_from_entropies
from ..losses import HUE_WEIGHT_FLOOR

HUE_BINS = 256
# Hard joint histograms need many pixels per occupied cell; 64 x 64 cells keep the MI estimate of a 64x64
# image (4096 pixels) from being dominated by the sparsity bias of 256 x 256 = 65536 cells.
MI_BINS = 64
# Directions of the sliced Wasserstein distance: evenly spaced on the half circle (a direction and its
# opposite give the same 1-D distance), deterministic so that scores are reproducible.
SWD_DIRECTIONS = 64

METRICS = {
    # name: (label, lower is better)
    "hue_emd": ("hue EMD to target", True),
    "hue_intersection": ("hue HI to target", False),
    "v_mi_distance": ("D_MI(V) to source", True),
    "v_ssim": ("V-SSIM to source", False),
    "ab_swd": ("a*b* SWD to target", True),
    "lightness_ssim": ("L-SSIM to source", False),
}


def _check_rgb(op: str, arg: str, image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        raise TypeError(f"{op}: `{arg}` must be a floating-point tensor; got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"{op}: `{arg}` must be an RGB batch (B, 3, H, W); got shape {tuple(image.shape)}")


def _bin_index(values: torch.Tensor, bins: int) -> torch.Tensor:
    return (values * bins).long().clamp_(0, bins - 1)


def hue_histogram(image: torch.Tensor, bins: int = HUE_BINS) -> torch.Tensor:
    """Saturation-weighted hard hue histograms, (B, 3, H, W) -> (B, bins), each summing to 1."""
    _check_rgb("hue_histogram", "image", image)
    hsv = rgb_to_hsv(image.float())
    index = _bin_index(hsv[:, 0].flatten(1), bins)
    # The loss's floor: an all-grey image still has a (red) hue histogram.
    weight = hsv[:, 1].flatten(1) + HUE_WEIGHT_FLOOR
    hist = torch.zeros(image.shape[0], bins, device=image.device).scatter_add_(1, index, weight)
    return hist / hist.sum(1, keepdim=True)


def hue_emd(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cyclic EMD (order 1) of the hue histograms of output and target, (B,): 0 = same hues, 0.5 = opposite."""
    return emd(hue_histogram(output), hue_histogram(target), order=1, cyclic=True)


def hue_intersection(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Histogram intersection sum_k min(p_k, q_k) of the hue histograms, (B,); 1 = identical."""
    return torch.minimum(hue_histogram(output), hue_histogram(target)).sum(1)


def v_mi_distance(output: torch.Tensor, source: torch.Tensor, bins: int = MI_BINS) -> torch.Tensor:
    """D_MI = 1 - I/H(X,Y) of the hard joint histogram of the V channels of output and source, (B,)."""
    _check_rgb("v_mi_distance", "output", output)
    _check_rgb("v_mi_distance", "source", source)
    out_v, src_v = output.float().amax(1).flatten(1), source.float().amax(1).flatten(1)
    cell = _bin_index(out_v, bins) * bins + _bin_index(src_v, bins)
    joint = torch.zeros(output.shape[0], bins * bins, device=output.device)
    joint.scatter_add_(1, cell, torch.ones_like(out_v))
    joint = joint / out_v.shape[1]
    return mi_distance_from_entropies(histogram_entropies(joint.view(-1, bins, bins)))


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def _ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of (B, 1, H, W) images with data range 1, (B,)."""
    window = _gaussian_window(min(11, x.shape[-2], x.shape[-1]), device=x.device)
    c1, c2 = 0.01**2, 0.03**2

    def blur(t):
        return F.conv2d(t, window)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim.flatten(1).mean(1)


def v_ssim(output: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, data range 1) of the V channels, (B,)."""
    _check_rgb("v_ssim", "output", output)
    _check_rgb("v_ssim", "source", source)
    return _ssim(output.float().amax(1, keepdim=True), source.float().amax(1, keepdim=True))


def lightness_ssim(output: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """SSIM (as :func:`v_ssim`) of the CIELAB lightness L*/100 of output and source, (B,)."""
    _check_rgb("lightness_ssim", "output", output)
    _check_rgb("lightness_ssim", "source", source)
    return _ssim(rgb_to_lab(output.float())[:, :1] / 100, rgb_to_lab(source.float())[:, :1] / 100)


def _wasserstein_1d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact W1 between the empirical distributions of the rows of x (R, n) and y (R, m), (R,).

    W1 is the integral over u in (0, 1) of |F^-1(u) - G^-1(u)|; both quantile functions are steps that change
    only at multiples of 1/n and 1/m, so the integral is a sum over the merged breakpoints.
    """
    n, m = x.shape[1], y.shape[1]
    xs, ys = x.sort(1).values, y.sort(1).values
    steps = (
        torch.cat(
            [
                torch.arange(1, n + 1, device=x.device, dtype=torch.float64) / n,
                torch.arange(1, m + 1, device=x.device, dtype=torch.float64) / m,
            ]
        )
        .sort()
        .values
    )
    widths = torch.diff(steps, prepend=steps.new_zeros(1))
    mids = steps - widths / 2
    ix = (mids * n).long().clamp_(max=n - 1)
    iy = (mids * m).long().clamp_(max=m - 1)
    return ((xs[:, ix] - ys[:, iy]).abs() * widths.to(xs.dtype)).sum(1)


def ab_swd(output: torch.Tensor, target: torch.Tensor, directions: int = SWD_DIRECTIONS) -> torch.Tensor:
    r"""Sliced Wasserstein distance (order 1) between the CIELAB a*b* distributions of output and target, (B,).

    The mean over ``directions`` angles :math:`\theta_k = \pi (k + 1/2) / K` of the exact 1-D W1 distance
    between the projections :math:`a \cos\theta + b \sin\theta` of all pixels; in a*b* units (0 = the same
    colour distribution, about 2.3 = one just noticeable difference).
    """
    _check_rgb("ab_swd", "output", output)
    _check_rgb("ab_swd", "target", target)
    angles = torch.pi * (torch.arange(directions, dtype=torch.float64, device=output.device) + 0.5) / directions
    axes = torch.stack([angles.cos(), angles.sin()])  # (2, K)
    scores = []
    for out, tgt in zip(output, target):
        proj_out = (rgb_to_lab(out.double())[1:].flatten(1).T @ axes).T  # (K, N)
        proj_tgt = (rgb_to_lab(tgt.double())[1:].flatten(1).T @ axes).T
        scores.append(_wasserstein_1d(proj_out, proj_tgt).mean())
    return torch.stack(scores).float()


def rgb_ssim(output: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """SSIM (as :func:`v_ssim`) of each RGB channel of output and ground truth, averaged over channels, (B,).

    The colour SSIM of scikit-image's ``structural_similarity(..., channel_axis=-1, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1)``, as pix2pix-style papers report it.
    """
    _check_rgb("rgb_ssim", "output", output)
    _check_rgb("rgb_ssim", "truth", truth)
    if output.shape != truth.shape:
        raise ValueError(
            f"rgb_ssim: `truth` must have the shape of `output` {tuple(output.shape)}; got {tuple(truth.shape)}"
        )
    b = output.shape[0]
    return _ssim(output.float().flatten(0, 1)[:, None], truth.float().flatten(0, 1)[:, None]).view(b, 3).mean(1)


def psnr(output: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(1 / MSE)`` in dB (data range 1) over all of RGB, (B,).

    Identical images give +inf (as in scikit-image); means over a set should then be read with care.
    """
    _check_rgb("psnr", "output", output)
    _check_rgb("psnr", "truth", truth)
    if output.shape != truth.shape:
        raise ValueError(
            f"psnr: `truth` must have the shape of `output` {tuple(output.shape)}; got {tuple(truth.shape)}"
        )
    mse = (output.double() - truth.double()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1 / mse)).float()


def transfer_metrics(output: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """All of :data:`METRICS` for one batch: name -> (B,)."""
    return {
        "hue_emd": hue_emd(output, target),
        "hue_intersection": hue_intersection(output, target),
        "v_mi_distance": v_mi_distance(output, source),
        "v_ssim": v_ssim(output, source),
        "ab_swd": ab_swd(output, target),
        "lightness_ssim": lightness_ssim(output, source),
    }


PAIRED_METRICS = {
    # name: (label, lower is better) -- the paired tasks (colorize, edges2photo)
    "psnr": ("PSNR to truth (dB)", False),
    "ssim": ("SSIM to truth", False),
    "hue_emd": ("hue EMD to reference", True),
    "hue_intersection": ("hue HI to reference", False),
    "ab_swd": ("a*b* SWD to reference", True),
    "v_mi_distance": ("D_MI(V) to input", True),
    "lightness_ssim": ("L-SSIM to input", False),
}


def paired_metrics(
    output: torch.Tensor, inputs: torch.Tensor, reference: torch.Tensor, truth: torch.Tensor
) -> dict[str, torch.Tensor]:
    """All of :data:`PAIRED_METRICS` for one batch of a paired task: name -> (B,).

    ``inputs``: the grey or edge inputs; ``reference``: the exemplars G was given; ``truth``: the photos the
    inputs were made from (the reference too, when evaluating as in training).
    """
    return {
        "psnr": psnr(output, truth),
        "ssim": rgb_ssim(output, truth),
        "hue_emd": hue_emd(output, reference),
        "hue_intersection": hue_intersection(output, reference),
        "ab_swd": ab_swd(output, reference),
        "v_mi_distance": v_mi_distance(output, inputs),
        "lightness_ssim": lightness_ssim(output, inputs),
    }
