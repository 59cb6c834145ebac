r"""Training-free colour transfer: fit a smooth 3D colour LUT that gives the source the target's colours.

:func:`fit` starts from the closed-form Monge-Kantorovich linear map (MKL: the affine RGB map that matches the
target's mean and covariance with the least displacement; natural, because its gain is the same everywhere) and
refines the table :math:`T = T_0 + \Delta` with Adam against this library's losses, on the source's colours:

.. math::
    SW_1(\mathrm{Lab}'(T(s)), \mathrm{Lab}'(t)) + w_h\,EMD_{cyc}(h_{out}, h_{tgt})
    + w_p\,\overline{[\,d_{t}(T(s)) - m\,]_+} + w_g\,\overline{[\,g(T, s) - k\,G\,]_+^2} + w_s\,R(\Delta)

- :math:`SW_1`: :func:`huenet.sliced_emd` between the CIELAB colours of output and target (L* at half weight, so
  lightness, which carries the structure, moves least) over random directions: it matches the joint colour
  distribution, which separate marginals leave free.
- :math:`EMD_{cyc}`: the cyclic EMD of chroma-weighted soft hue histograms. Chroma (max - min) rather than HSV
  saturation, whose (max - min)/max gives dark, noisy pixels full hue votes.
- the palette term: each output colour's CIELAB distance :math:`d_t` to the nearest target colour beyond a margin
  :math:`m`, so that the fit does not invent colours the target lacks.
- the gain term: the map's local gain :math:`g` at the source's colours (finite differences along L*, a* and b*)
  beyond :math:`k` times the start's mean gain :math:`G`: a steep map turns gradients into contours and noise
  into speckle, so the gain is bounded where the photo's colours are.
- :math:`R`: the mean squared second differences of :math:`\Delta`, which keeps the refinement smooth between
  the photo's sparse colours without pulling it back to any particular map.

The fit runs on copies downscaled to ``fit_size`` and pooled into a few thousand weighted colours
(:mod:`.pixels`), and the table applies to any size. Defaults: docs/recolor.md says how they were measured.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> source, target = torch.rand(3, 32, 32, generator=g), torch.rand(3, 24, 40, generator=g) * 0.5
    >>> lut = fit(source, target, steps=5)
    >>> lut(source).shape, lut.size
    (torch.Size([3, 32, 32]), 17)
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from .. import _checks
from .._threads import one_cpu_thread
from ..backends import DEFAULT_BACKEND
from ..color import hsv_to_rgb, lab_to_rgb, rgb_to_hsv, rgb_to_lab
from ..emd import emd, sliced_histograms
from ..histogram import soft_histogram
from ..losses import GREY_TARGET_SATURATION
from .lut import ColorLUT, apply_lut, check_strength, identity_table
from .pixels import as_images, as_masks, pooled_pixels

__all__ = ["DEFAULTS", "fit", "mkl_matrix"]

#: Defaults of :func:`fit`, measured on every ordered pair of the packaged photos (docs/recolor.md).
DEFAULTS = dict(
    size=17,
    steps=30,
    lr=0.025,
    fit_size=192,
    bins=64,
    bandwidth=0.4,
    directions=24,
    hue_weight=30.0,
    palette_weight=0.3,
    palette_margin=8.0,
    gain_weight=1.0,
    max_gain=2.0,
    smoothness=10.0,
)

# The settings of DEFAULTS that are integers, with their least values; the others are numbers >= 0.
INT_MINIMUMS = dict(size=2, steps=0, fit_size=8, bins=2, directions=1)

# The learning rate decays linearly from ``lr`` to this fraction of it over the steps.
FINAL_LR_FRACTION = 0.3
# Weight of L* in the sliced EMD (a* and b* have 1): lightness carries the structure, so it moves least.
LIGHTNESS_SCALE = 0.5
# The sliced EMD's histograms span this many CIELAB units either side of 0; every projection of a scaled colour
# (|L*/2| <= 50, |a*|, |b*| <= 128) of a unit direction lies inside.
SLICE_RANGE = 160.0
# The slices' histograms are finer than the hue's: a slice spans 320 CIELAB units.
SLICE_BINS = 128
# Step (CIELAB units) of the finite differences that measure the map's local gain.
GAIN_PROBE = 2.0
# Covariances get this much variance added on their diagonal (RGB units squared), so that a flat channel (a grey
# photo has no chroma spread) does not make the MKL map's gain unbounded.
MKL_RIDGE = 1e-3


def _weighted_moments(colours: torch.Tensor, weight: torch.Tensor):
    w = weight / weight.sum()
    mean = (colours * w).sum(1, keepdim=True)
    centred = colours - mean
    return mean, (centred * w) @ centred.T


def _sym_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp(min=1e-12) ** power) @ vectors.T


def mkl_matrix(source_cov: torch.Tensor, target_cov: torch.Tensor) -> torch.Tensor:
    r"""The Monge-Kantorovich linear map between two covariances (Pitié and Kokaram, 2007):
    :math:`A = \Sigma_s^{-1/2} (\Sigma_s^{1/2} \Sigma_t \Sigma_s^{1/2})^{1/2} \Sigma_s^{-1/2}`, the symmetric positive
    map with :math:`A \Sigma_s A^\top = \Sigma_t` that moves colours least.

    Args:
        source_cov, target_cov: (C, C) symmetric positive definite.

    Returns:
        (C, C).

    Example:
        >>> s, t = torch.diag(torch.tensor([1.0, 4.0])), torch.diag(torch.tensor([4.0, 1.0]))
        >>> mkl_matrix(s, t)
        tensor([[2.0000, 0.0000],
                [0.0000, 0.5000]])
    """
    root = _sym_power(source_cov, 0.5)
    inv_root = _sym_power(source_cov, -0.5)
    return inv_root @ _sym_power(root @ target_cov @ root, 0.5) @ inv_root


def _mkl_table(size, src, src_w, tgt, tgt_w) -> torch.Tensor:
    """The (3, N, N, N) table of the MKL affine map from the source's colours to the target's."""
    (mu_s, cov_s), (mu_t, cov_t) = _weighted_moments(src.double(), src_w), _weighted_moments(tgt.double(), tgt_w)
    ridge = MKL_RIDGE * torch.eye(3, dtype=torch.float64, device=src.device)
    matrix = mkl_matrix(cov_s + ridge, cov_t + ridge)
    grid = identity_table(size, torch.float64, src.device).reshape(3, -1)
    return (matrix @ (grid - mu_s) + mu_t).reshape(3, size, size, size).float()


def _weighted_quantiles(values: torch.Tensor, weight: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    order = values.argsort()
    cdf = weight[order].cumsum(0)
    return _interp(levels * cdf[-1], cdf - weight[order] / 2, values[order])


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation through (xp, fp), xp increasing, constant beyond its ends."""
    index = torch.searchsorted(xp, x).clamp(1, len(xp) - 1)
    lo, hi = xp[index - 1], xp[index]
    t = ((x - lo) / (hi - lo).clamp(min=1e-12)).clamp(0, 1)
    return torch.lerp(fp[index - 1], fp[index], t)


def _neutral_table(size, src, src_w, tgt, tgt_w) -> torch.Tensor:
    """The table for a grey target, which has no colour to give: every colour keeps its HSV hue and saturation, and
    its value (brightness) is mapped through the source's and the target's value quantiles (the target's tones)."""
    levels = torch.linspace(0, 1, 101, dtype=torch.float64, device=src.device)
    q_s = _weighted_quantiles(src.double().amax(0), src_w.double(), levels)
    q_t = _weighted_quantiles(tgt.double().amax(0), tgt_w.double(), levels)
    grid = rgb_to_hsv(identity_table(size, torch.float64, src.device).reshape(1, 3, size, size * size))[0]
    # A tiny ramp keeps the source quantiles increasing where the source has a run of equal values.
    value = _interp(grid[2].flatten(), q_s + 1e-9 * levels, q_t).reshape(grid[2].shape)
    mapped = torch.cat([grid[:2], value[None]])
    return hsv_to_rgb(mapped[None])[0].clamp(0, 1).reshape(3, size, size, size).float()


def _scaled_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(3, M) RGB -> (3, M) CIELAB with L* scaled by LIGHTNESS_SCALE."""
    lab = rgb_to_lab(rgb[None, :, None])[0, :, 0]
    return lab * lab.new_tensor([LIGHTNESS_SCALE, 1.0, 1.0])[:, None]


def _mean_saturation(rgb: torch.Tensor, weight: torch.Tensor) -> float:
    saturation = rgb_to_hsv(rgb[None, :, None])[0, 1, 0]
    return float((saturation * weight).sum() / weight.sum())


def _second_differences(delta: torch.Tensor) -> torch.Tensor:
    """Mean squared second differences of the table along each axis, scaled to a grid of unit step so that it
    means the same for every LUT size."""
    n = delta.shape[-1]
    if n < 3:
        return delta.new_zeros(())
    return sum(torch.diff(delta, n=2, dim=d).square().mean() for d in (1, 2, 3)) * (n - 1) ** 4


class _Objective:
    """The fit's loss on pooled colours; everything that depends only on the inputs is computed once."""

    def __init__(self, src, src_w, tgt, tgt_w, start, options, backend):
        self.o, self.backend = options, backend
        self.src, self.src_w = src, src_w / src_w.sum()
        tgt_w = tgt_w / tgt_w.sum()
        self.tgt_lab = _scaled_lab(tgt)
        # Two fixed sets of random directions, used on alternate steps: the target's slices are computed once.
        generator = torch.Generator(device="cpu").manual_seed(0)
        directions = F.normalize(torch.randn(2, options["directions"], 3, generator=generator), dim=-1)
        self.directions = directions.to(src)
        with torch.no_grad():
            self.tgt_slices = [self._slices(self.tgt_lab, tgt_w, d) for d in self.directions]
        # A grey source has no hue to move: at zero chroma the hue's gradient is unbounded, so only the sliced
        # EMD, smooth at grey, gives it colours.
        self.hue_on = bool(options["hue_weight"]) and _mean_saturation(src, self.src_w) >= GREY_TARGET_SATURATION
        if self.hue_on:
            with torch.no_grad():
                self.tgt_hue = self._hue_histogram(tgt, tgt_w)
        # Source colours moved by GAIN_PROBE along L*, a* and b*: the map's local gain is measured there.
        src_lab = rgb_to_lab(src[None, :, None])[0, :, 0]
        steps = GAIN_PROBE * torch.eye(3, dtype=src.dtype, device=src.device)[:, :, None]
        self.probes = lab_to_rgb((src_lab + steps).permute(1, 0, 2)[None])[0].clamp(0, 1)  # (3, 3 probes, M)
        with torch.no_grad():
            self.gain_bound = options["max_gain"] * max(
                1.0, float((self._gain(start.clamp(0, 1)) * self.src_w).sum()) / 3
            )
        self.step = 0

    def _slices(self, lab, weight, directions):
        o = self.o
        return sliced_histograms(
            lab[None], directions, SLICE_BINS, (-SLICE_RANGE, SLICE_RANGE), o["bandwidth"], weight[None], self.backend
        )

    def _hue_histogram(self, rgb, weight):
        hue = rgb_to_hsv(rgb[None, :, None])[:, :1]
        chroma = (rgb.amax(0) - rgb.amin(0)).detach()
        vote = (chroma * weight + 1e-6)[None, None, None]
        return soft_histogram(hue, self.o["bins"], (0.0, 1.0), self.o["bandwidth"], "circular", vote, self.backend)

    def _gain(self, table, out_lab=None):
        """(3, M): |Lab(T(probe_i)) - Lab(T(s))| / GAIN_PROBE for the probes along L*, a* and b*."""
        if out_lab is None:
            out_lab = rgb_to_lab(apply_lut(table, self.src[:, None])[None])[0, :, 0]
        moved = rgb_to_lab(apply_lut(table, self.probes)[None])[0]
        return (moved - out_lab[:, None]).norm(dim=0) / GAIN_PROBE

    def terms(self, table: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each term's value before its weight: "slices", "hue", "palette" and "gain"."""
        o = self.o
        out = apply_lut(table, self.src[:, None])[:, 0]
        out_lab = _scaled_lab(out)
        half, self.step = self.step % 2, self.step + 1
        slices = self._slices(out_lab, self.src_w, self.directions[half])
        # The sliced EMD (:func:`huenet.sliced_emd`) against the target's precomputed slices, in CIELAB units.
        terms = {"slices": emd(slices, self.tgt_slices[half]).mean() * (2 * SLICE_RANGE)}
        if self.hue_on:
            terms["hue"] = emd(self._hue_histogram(out, self.src_w), self.tgt_hue, cyclic=True)[0, 0]
        if o["palette_weight"]:
            nearest = torch.cdist(out_lab.T, self.tgt_lab.T).amin(1)
            terms["palette"] = (F.relu(nearest - o["palette_margin"]) * self.src_w).sum()
        if o["gain_weight"]:
            plain_lab = out_lab / out_lab.new_tensor([LIGHTNESS_SCALE, 1.0, 1.0])[:, None]
            excess = F.relu(self._gain(table, plain_lab) - self.gain_bound)
            terms["gain"] = (excess.square() * self.src_w).sum()
        return terms

    def __call__(self, table: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        o = self.o
        weights = {"slices": 1.0, "hue": o["hue_weight"], "palette": o["palette_weight"], "gain": o["gain_weight"]}
        loss = sum(weights[name] * value for name, value in self.terms(table).items())
        return loss + o["smoothness"] * 1e-3 * _second_differences(delta)


def fit(
    source,
    target,
    *,
    size: int = DEFAULTS["size"],
    steps: int = DEFAULTS["steps"],
    strength: float = 1.0,
    mask=None,
    target_mask=None,
    hue_weight: float = DEFAULTS["hue_weight"],
    palette_weight: float = DEFAULTS["palette_weight"],
    palette_margin: float = DEFAULTS["palette_margin"],
    gain_weight: float = DEFAULTS["gain_weight"],
    max_gain: float = DEFAULTS["max_gain"],
    smoothness: float = DEFAULTS["smoothness"],
    directions: int = DEFAULTS["directions"],
    bins: int = DEFAULTS["bins"],
    bandwidth: float = DEFAULTS["bandwidth"],
    lr: float = DEFAULTS["lr"],
    fit_size: int = DEFAULTS["fit_size"],
    device=None,
    backend: str = DEFAULT_BACKEND,
    callback=None,
) -> ColorLUT:
    r"""Fit a :class:`ColorLUT` that gives ``source`` the colours of ``target`` (see the module docstring).

    Args:
        source: RGB in [0, 1]: (3, H, W), (B, 3, H, W), or a list of (3, H, W) images of any sizes. All images
            are fitted together: one LUT for a whole set of frames (no flicker between them).
        target: the same forms; all target pixels form one colour distribution.
        size: LUT resolution N (N^3 entries), >= 2.
        steps: Adam steps refining the MKL start (0 gives the MKL map itself).
        strength: blend with the identity in [0, 1]; 0 = identity, 1 = the fitted LUT.
        mask, target_mask: per-pixel weights >= 0 choosing which pixels of the source / target count: (H, W),
            (1, H, W) or (B, 1, H, W) (one per image), of the image's size; for a list, a list of masks.
            Transparent pixels should have weight 0. Must not be all zero.
        hue_weight: weight of the cyclic EMD of the chroma-weighted hue histograms (the sliced EMD has weight 1).
        palette_weight, palette_margin: weight of the palette term, and the CIELAB distance to the nearest
            target colour that it tolerates.
        gain_weight, max_gain: weight of the gain term, and the local gain it allows, in multiples of the MKL
            start's mean gain (at least 1).
        smoothness: weight of the second-difference penalty on the refinement.
        directions: random directions of the sliced EMD at each step.
        bins, bandwidth: soft-histogram bins of the hue term and the kernel width (bin widths) of every histogram.
        lr: Adam's initial learning rate on the table entries; it decays linearly to ``FINAL_LR_FRACTION`` of it.
        fit_size: longest side (pixels) of the downscaled copies the fit runs on.
        device: where to fit (default: the source's device); the returned LUT lives there.
        backend: histogram backend, as in :func:`huenet.soft_histogram`.
        callback: optional ``callback(step)`` after each step (progress bars).

    Returns:
        The fitted :class:`ColorLUT`. The fit is deterministic: its random directions come from a fixed seed. On
        the CPU it runs with one intra-op thread (``torch.set_num_threads(1)`` for its duration, then restored). A
        target with (almost) no saturation -- mean below ``huenet.losses.GREY_TARGET_SATURATION`` -- has no hue to
        give: with a warning, HSV hue and saturation are left alone and the closed-form table maps the value
        through the two images' value quantiles (no steps are taken).

    Raises:
        ValueError / TypeError: an argument names what was expected and what was given, e.g. a mask of another
        size than its image, or an empty mask.
    """
    options = {name: value for name, value in locals().items() if name in DEFAULTS}
    op = "fit"
    sources, targets = as_images(op, "source", source), as_images(op, "target", target)
    source_masks = as_masks(op, "mask", mask, sources)
    target_masks = as_masks(op, "target_mask", target_mask, targets)
    for arg, value in options.items():
        low = INT_MINIMUMS.get(arg)
        if low is None:
            expected = "a finite number >= 0"
            ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
        else:
            expected = f"an int >= {low}"
            ok = isinstance(value, int) and value >= low
        if isinstance(value, bool) or not ok:
            _checks.fail(op, arg, expected, repr(value))
    check_strength(op, strength)
    _checks.check_bandwidth(op, bandwidth)
    device = torch.device(device) if device is not None else sources[0].device
    with one_cpu_thread(device):
        src, src_w = pooled_pixels(sources, source_masks, fit_size, device)
        tgt, tgt_w = pooled_pixels(targets, target_masks, fit_size, device)
        grey = _mean_saturation(tgt, tgt_w) < GREY_TARGET_SATURATION
        if grey:
            warnings.warn(
                f"fit: the target has no hue (mean saturation < {GREY_TARGET_SATURATION}); hue and saturation are left"
                " alone and only the brightness takes the target's tones",
                stacklevel=2,
            )
            start = _neutral_table(size, src, src_w, tgt, tgt_w)
        else:
            start = _mkl_table(size, src, src_w, tgt, tgt_w)
        delta = torch.zeros_like(start, requires_grad=True)
        if steps and not grey:
            objective = _Objective(src, src_w, tgt, tgt_w, start, options, backend)
            optimiser = torch.optim.Adam([delta], lr=lr)
            # Large steps first, small ones to settle: fewer steps reach the quality of a constant rate.
            fraction = lambda k: 1 - (1 - FINAL_LR_FRACTION) * k / max(1, steps - 1)  # noqa: E731
            decay = torch.optim.lr_scheduler.LambdaLR(optimiser, fraction)
            with torch.enable_grad():
                for step in range(steps):
                    optimiser.zero_grad(set_to_none=True)
                    objective(start + delta, delta).backward()
                    optimiser.step()
                    decay.step()
                    if callback is not None:
                        callback(step)
    table = start + delta.detach()
    if not bool(torch.isfinite(table).all()):
        raise RuntimeError(f"fit: the optimisation diverged (non-finite LUT entries) at lr={lr}; lower `lr`")
    return ColorLUT(table.clamp(0, 1)).blend(strength)
