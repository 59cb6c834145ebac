r"""Training-free colour transfer: fit a smooth 3D colour LUT that minimises the histogram losses.

:func:`fit` learns a :class:`ColorLUT` -- an ``N x N x N`` table of RGB colours applied by trilinear interpolation
-- so that the source, mapped through it, takes the target's colours while keeping its own structure. The
objective is built from this library's ops:

.. math::
    w_h\,EMD_{cyc}(h_{out}, h_{tgt}) + w_s\,EMD(s_{out}, s_{tgt}) + w_v\,EMD(v_{out}, v_{tgt})
    + w_{mi}\,D_{MI}(L_{out}, L_{src}) + w_{sm}\,R(\Delta)

with saturation-weighted soft hue histograms (cyclic EMD), soft S and V histograms, the mutual-information
distance between the CIELAB lightness of output and source (so the mapping stays a function of the source's
lightness: structure is kept), and a smoothness penalty :math:`R` on the table's departure :math:`\Delta` from
the identity (mean squared difference of neighbouring entries), which keeps the mapping free of banding and
colour noise. The table starts at the identity and is fitted on a copy downscaled to ``fit_size`` pixels on its
longest side, then applies to any size. The defaults were chosen by measurement (docs/recolor.md).

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> source, target = torch.rand(3, 32, 32, generator=g), torch.rand(3, 24, 40, generator=g) * 0.5
    >>> lut = fit(source, target, steps=5)
    >>> lut(source).shape, lut.size
    (torch.Size([3, 32, 32]), 17)
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from . import _checks
from .backends import resolve
from .color import rgb_to_hsv, rgb_to_lab
from .emd import emd
from .histogram import make_binning, run_backend
from .information import mi_distance_from_entropies
from .losses import GREY_TARGET_SATURATION

__all__ = ["ColorLUT", "apply_lut", "fit"]

# Pixels per chunk when applying a table: 2^18 pixels keep every temporary (a few MB) in the cache, which
# measured faster than 2^20 or 2^22, and bound the extra memory far below the 1 GB a 12-megapixel photo may use.
APPLY_CHUNK = 2**17


def apply_lut(table: torch.Tensor, image: torch.Tensor, chunk: int = APPLY_CHUNK) -> torch.Tensor:
    r"""Map the colours of ``image`` through a 3D LUT by trilinear interpolation.

    For a colour :math:`(r, g, b)` with :math:`u = r (N - 1)` and so on, the output is
    :math:`\sum_{i,j,k \in \{0,1\}} w_i(u) w_j(v) w_k(w)\, T[\lfloor w \rfloor + k, \lfloor v \rfloor + j,
    \lfloor u \rfloor + i]` with :math:`w_1(u) = u - \lfloor u \rfloor`, :math:`w_0 = 1 - w_1`. Values are
    clamped to [0, 1] first. Differentiable with respect to the table (and the image).

    Computed as a linear blend along blue of two bilinear lookups in the (green, red) planes of the blue
    slices :math:`\lfloor w \rfloor` and :math:`\lfloor w \rfloor + 1`: the slices lie side by side in one 2D
    image, read by one 2D ``grid_sample`` (whose CPU kernel is vectorised; the 3D one took twice as long).

    Args:
        table: (3, N, N, N) indexed ``[channel, blue, green, red]`` (the .cube order: red varies fastest).
        image: (*, 3, H, W) RGB in [0, 1], any float dtype and device.
        chunk: pixels mapped at a time, which bounds the extra memory.

    Returns:
        (*, 3, H, W) in the image's dtype, on its device.
    """
    _checks.check_float_tensor("apply_lut", "image", image)
    if image.ndim < 3 or image.shape[-3] != 3:
        _checks.fail("apply_lut", "image", "of shape (*, 3, H, W)", f"shape {tuple(image.shape)}")
    dtype = image.dtype if image.dtype == torch.float64 else torch.float32
    planes = _slice_planes(table.to(image.device, dtype))
    lead, (h, w) = image.shape[:-3], image.shape[-2:]
    flat = image.reshape(-1, 3, h * w)
    grad = _needs_grad(table, image)
    out = None if grad else torch.empty(flat.shape, device=image.device, dtype=dtype)
    pieces = []
    for b in range(flat.shape[0]):
        for start in range(0, h * w, chunk):
            colours = flat[b, :, start : start + chunk].to(dtype)
            if grad:
                pieces.append(_lookup(planes, colours))
            else:
                _lookup(planes, colours, out=out[b, :, start : start + chunk])
    if grad:
        out = torch.cat(pieces, 1).reshape(flat.shape)
    return out.to(image.dtype).reshape(*lead, 3, h, w)


def _slice_planes(table: torch.Tensor) -> torch.Tensor:
    """(1, 6, N, N·N): for each blue slice k, channels 0-2 hold slice k and 3-5 slice k+1 (the last repeated),
    as an image of rows = green and columns = k·N + red."""
    n = table.shape[-1]
    upper = torch.cat([table[:, 1:], table[:, -1:]], 1)
    return torch.cat([table, upper]).permute(0, 2, 1, 3).reshape(1, 6, n, n * n)


def _lookup(planes: torch.Tensor, colours: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Trilinear lookup of colours (3, P) in the planes of :func:`_slice_planes`; (3, P), written to ``out``."""
    n = planes.shape[-2]
    u = colours.clamp(0, 1) * (n - 1)
    blue = u[2].floor().clamp_(max=n - 2)
    # grid_sample's (x, y) = (column, row), with -1 and 1 the first and last entries (align_corners). At red =
    # N - 1 the column's right neighbour is the next slice's first entry, but with weight exactly 0.
    grid = torch.stack([(blue * n + u[0]) * (2 / (n * n - 1)) - 1, u[1] * (2 / (n - 1)) - 1], -1)
    both = F.grid_sample(planes, grid.view(1, 1, -1, 2), mode="bilinear", padding_mode="border", align_corners=True)
    both, weight = both.view(6, -1), u[2] - blue
    if out is None:
        return torch.lerp(both[:3], both[3:], weight)
    return torch.lerp(both[:3], both[3:], weight, out=out)


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def identity_table(size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """The (3, N, N, N) table that maps every colour to itself."""
    ramp = torch.linspace(0, 1, size, dtype=dtype, device=device)
    b, g, r = torch.meshgrid(ramp, ramp, ramp, indexing="ij")
    return torch.stack([r, g, b])


class ColorLUT:
    r"""A 3D colour lookup table, applied by trilinear interpolation (:func:`apply_lut`).

    Args:
        table: (3, N, N, N) float tensor indexed ``[channel, blue, green, red]``, N >= 2.
        title: the name written to a .cube file.

    Example:
        >>> lut = ColorLUT.identity(9)
        >>> x = torch.rand(2, 3, 5, 7)
        >>> torch.allclose(lut(x), x, atol=1e-6)
        True
    """

    def __init__(self, table: torch.Tensor, title: str = "huenet"):
        _checks.check_float_tensor("ColorLUT", "table", table)
        n = table.shape[-1]
        if table.ndim != 4 or table.shape != (3, n, n, n) or n < 2:
            _checks.fail("ColorLUT", "table", "of shape (3, N, N, N) with N >= 2", f"shape {tuple(table.shape)}")
        self.table, self.title = table.detach(), title

    @property
    def size(self) -> int:
        return self.table.shape[-1]

    @classmethod
    def identity(cls, size: int = 17) -> ColorLUT:
        """The LUT that leaves every colour as it is."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            _checks.fail("ColorLUT.identity", "size", "an int >= 2", repr(size))
        return cls(identity_table(size))

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Apply to ``image`` (*, 3, H, W) in [0, 1], on its device, in chunks (see :func:`apply_lut`)."""
        return apply_lut(self.table, image)

    def blend(self, strength: float) -> ColorLUT:
        """The LUT ``(1 - strength) * identity + strength * self``: 0 changes nothing, 1 is this LUT.

        Trilinear interpolation is linear in the table, so this equals blending the two outputs.
        """
        _check_strength("ColorLUT.blend", strength)
        ident = identity_table(self.size, self.table.dtype, self.table.device)
        return ColorLUT(torch.lerp(ident, self.table, float(strength)), self.title)

    def save_cube(self, path: str | os.PathLike) -> None:
        """Write an Adobe/Resolve ``.cube`` file (TITLE, LUT_3D_SIZE, DOMAIN_MIN/MAX, N^3 rows "r g b" with red
        varying fastest), atomically: the file appears complete or not at all."""
        path = Path(path)
        rows = self.table.detach().double().cpu().permute(1, 2, 3, 0).reshape(-1, 3).clamp(0, 1).tolist()
        lines = [
            f'TITLE "{self.title}"',
            f"LUT_3D_SIZE {self.size}",
            "DOMAIN_MIN 0.0 0.0 0.0",
            "DOMAIN_MAX 1.0 1.0 1.0",
        ]
        lines += [f"{r:.{CUBE_DIGITS}f} {g:.{CUBE_DIGITS}f} {b:.{CUBE_DIGITS}f}" for r, g, b in rows]
        tmp = path.with_name(f".{path.name}.partial")
        try:
            tmp.write_text("\n".join(lines) + "\n")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load_cube(cls, path: str | os.PathLike) -> ColorLUT:
        """Read a 3D ``.cube`` file; a malformed one raises a ValueError naming the file and the line."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not a text .cube file ({err.reason})") from None
        size, title, rows = None, "huenet", []
        last = 0
        for number, raw in enumerate(text.splitlines(), 1):
            last = number
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"{path}: line {number}"
            key, _, rest = line.partition(" ")
            if key == "TITLE":
                title = rest.strip().strip('"')
            elif key == "LUT_3D_SIZE":
                if size is not None or rows:
                    raise ValueError(f"{where}: LUT_3D_SIZE must come once, before the table")
                if not re.fullmatch(r"\d+", rest.strip()) or not 2 <= int(rest) <= 256:
                    raise ValueError(f"{where}: LUT_3D_SIZE must be an integer in [2, 256]; got {rest.strip()!r}")
                size = int(rest)
            elif key in ("DOMAIN_MIN", "DOMAIN_MAX"):
                expected = 0.0 if key == "DOMAIN_MIN" else 1.0
                values = _floats(rest, 3, where, key)
                if any(v != expected for v in values):
                    raise ValueError(f"{where}: only {key} {expected} {expected} {expected} is supported; got {rest}")
            elif key == "LUT_1D_SIZE":
                raise ValueError(f"{where}: a 1D LUT; only 3D .cube files (LUT_3D_SIZE) are supported")
            elif re.match(r"[-+.\d]", key):
                if size is None:
                    raise ValueError(f"{where}: a table row before LUT_3D_SIZE")
                rows.append(_floats(line, 3, where, "a table row"))
                if len(rows) > size**3:
                    raise ValueError(f"{where}: more than LUT_3D_SIZE^3 = {size**3} table rows")
            else:
                raise ValueError(f"{where}: unknown keyword {key!r}")
        if size is None:
            raise ValueError(f"{path}: line {last}: no LUT_3D_SIZE in the file")
        if len(rows) != size**3:
            raise ValueError(
                f"{path}: line {last}: the table ends after {len(rows)} rows; LUT_3D_SIZE {size} needs {size**3}"
            )
        table = torch.tensor(rows, dtype=torch.float64).reshape(size, size, size, 3).permute(3, 0, 1, 2)
        return cls(table.float().contiguous(), title)


# Decimal places of a .cube row: 1e-6 is 1/65 of a 16-bit level.
CUBE_DIGITS = 6


def _floats(text: str, count: int, where: str, what: str) -> list[float]:
    parts = text.split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{where}: {what} must be {count} finite numbers; got {text.strip()!r}")
    return values


def _check_strength(op: str, strength: object) -> None:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        _checks.fail(op, "strength", "a number in [0, 1]", repr(strength))


# ------------------------------------------------------------------------------------------------ fitting

#: Defaults of :func:`fit`, measured on photo pairs (docs/recolor.md).
DEFAULTS = dict(
    size=17,
    steps=25,
    lr=0.06,
    fit_size=192,
    bins=64,
    bandwidth=0.8,
    hue_weight=2.0,
    saturation_weight=0.0,
    value_weight=0.2,
    mi_weight=0.2,
    chroma_weight=2.0,
    smoothness=30.0,
)


# The learning rate decays linearly from ``lr`` to this fraction of it over the steps.
FINAL_LR_FRACTION = 0.3

# Pooling grids, finest first: 32 levels (cells of 8/255) give a photo at the fit size 500-2300 occupied cells
# (docs/recolor.md). A fit step's cost grows with the cells, so an image that occupies more than MAX_CELLS (noise,
# dithering: up to one cell per pixel) is pooled on the next coarser grid, until it fits the budget.
COMPRESS_LEVELS = (32, 24, 16, 12, 8)
MAX_CELLS = 2500


def _as_images(op: str, arg: str, images) -> list[torch.Tensor]:
    """A tensor (3, H, W) / (B, 3, H, W), or a sequence of (3, H, W) tensors -> list of (3, H, W)."""
    if isinstance(images, torch.Tensor):
        _checks.check_float_tensor(op, arg, images)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1] != 3:
            _checks.fail(op, arg, "an RGB image (3, H, W) or batch (B, 3, H, W)", f"shape {tuple(images.shape)}")
        return list(images)
    if isinstance(images, Sequence) and images and all(isinstance(t, torch.Tensor) for t in images):
        out = []
        for t in images:
            _checks.check_float_tensor(op, arg, t)
            if t.ndim != 3 or t.shape[0] != 3:
                _checks.fail(op, arg, "a sequence of RGB images (3, H, W)", f"an element of shape {tuple(t.shape)}")
            out.append(t)
        return out
    _checks.fail(
        op,
        arg,
        "a float tensor (3, H, W) or (B, 3, H, W), or a list of (3, H, W) tensors",
        type(images).__name__,
        TypeError,
    )


def _as_masks(op: str, arg: str, masks, images: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """Per-image (1, H, W) weights matching ``images``, or Nones."""
    if masks is None:
        return [None] * len(images)
    if isinstance(masks, torch.Tensor):
        masks = [masks] * len(images) if masks.ndim <= 3 else list(masks)
    if len(masks) != len(images):
        _checks.fail(op, arg, f"one mask per image ({len(images)})", f"{len(masks)} masks")
    out = []
    for m, image in zip(masks, images):
        _checks.check_float_tensor(op, arg, m)
        m = m.reshape(1, *m.shape[-2:]) if m.ndim in (2, 3) and (m.ndim == 2 or m.shape[0] == 1) else m
        if m.ndim != 3 or m.shape[0] != 1 or m.shape[1:] != image.shape[1:]:
            _checks.fail(op, arg, f"of its image's size (H, W) = {tuple(image.shape[1:])}", f"shape {tuple(m.shape)}")
        if bool((m < 0).any()) or not bool(torch.isfinite(m).all()):
            _checks.fail(op, arg, "finite and non-negative", "negative or non-finite values")
        out.append(m)
    if sum(float(m.sum()) for m in out) <= 0:
        _checks.fail(op, arg, "non-empty (some pixel with a positive weight)", "an all-zero mask")
    return out


def _pixels(images, masks, fit_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Downscale each image (and mask) to at most ``fit_size`` on its longest side (area averaging) and pool
    all pixels into weighted colours (:func:`_compress`) on the finest grid of ``COMPRESS_LEVELS`` that leaves
    at most ``MAX_CELLS`` cells (the coarsest grid, 512 cells at most, otherwise)."""
    colours, weights = [], []
    for image, mask in zip(images, masks):
        h, w = image.shape[1:]
        scale = min(1.0, fit_size / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        stack = image.to(device, torch.float32).clamp(0, 1)
        if mask is not None:
            stack = torch.cat([stack, mask.to(device, torch.float32)])
        if size != (h, w):
            stack = F.interpolate(stack[None], size=size, mode="area")[0]
        colours.append(stack[:3].flatten(1))
        weights.append(stack[3:].flatten(1) if mask is not None else torch.ones_like(stack[:1].flatten(1)))
    colours, weights = torch.cat(colours, 1), torch.cat(weights, 1)[0]
    for level in COMPRESS_LEVELS:
        pooled = _compress(colours, weights, level)
        if pooled[0].shape[-1] <= MAX_CELLS:
            break
    return pooled


def _compress(colours: torch.Tensor, weights: torch.Tensor, levels: int):
    """Pool pixels (3, N) of weights (N,) into the occupied cells of a ``levels``^3 colour grid: each cell's
    weighted mean colour and total weight, (1, 3, 1, M) and (1, 1, 1, M).

    Every term of the objective is a weighted sum over pixels of a function of the pixel's colour alone, so a
    cell of near-equal colours can stand for its pixels: a photo's tens of thousands of pixels become a few
    thousand colours, which is what makes a fit take about a second.
    """
    index = (colours * levels).long().clamp_(0, levels - 1)
    key = (index[0] * levels + index[1]) * levels + index[2]
    cells, inverse = torch.unique(key, return_inverse=True)
    total = torch.zeros(len(cells), dtype=colours.dtype, device=colours.device).index_add_(0, inverse, weights)
    summed = torch.zeros(3, len(cells), dtype=colours.dtype, device=colours.device)
    summed.index_add_(1, inverse, colours * weights)
    occupied = total > 0
    mean = summed[:, occupied] / total[occupied]
    return mean[None, :, None], total[occupied][None, None, None]


def _smoothness(delta: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring table entries along each axis, scaled to a grid of unit step
    so that it means the same for every LUT size (a linear ramp of the offset costs the same at N=9 and 33)."""
    n = delta.shape[-1]
    total = sum(torch.diff(delta, dim=d).square().mean() for d in (1, 2, 3))
    return total * (n - 1) ** 2


def _mean_saturation(hsv: torch.Tensor, weight: torch.Tensor) -> float:
    """Weighted mean HSV saturation of pooled colours (1, 3, 1, M) with weights (1, 1, 1, M)."""
    return float((hsv[:, 1:2] * weight).sum() / weight.sum())


class _Objective:
    """The fit's loss on pooled pixels; the target's histograms are computed once.

    The loop calls the histogram backend directly (:func:`huenet.histogram.run_backend`), once per step for all
    reflect-boundary channels (S, V, a*, b* share the binning and the weights), once for the hue and once for
    the joint histogram: the pooled inputs are a few thousand points, so each call's fixed cost (argument
    checks, NaN-row masks, dispatch) would dominate. The inputs are known to be finite -- colours of a finite
    table -- and their weights positive, which is what those checks establish; ``fit`` checks the result.
    """

    def __init__(self, source, source_weight, target, target_weight, options, backend):
        self.o = o = options
        self.impl = resolve("fit", backend, source.device)
        self.linear = make_binning("fit", o["bins"], (0.0, 1.0), o["bandwidth"], "reflect")
        self.circular = make_binning("fit", o["bins"], (0.0, 1.0), o["bandwidth"], "circular")
        self.source, self.weight = source, source_weight
        self.src_l = rgb_to_lab(source)[:, :1] / 100
        tgt_hsv = rgb_to_hsv(target)
        mean_sat = _mean_saturation(tgt_hsv, target_weight)
        self.hue_on = mean_sat >= GREY_TARGET_SATURATION
        if not self.hue_on:
            warnings.warn(
                f"fit: the target has no hue (mean saturation {mean_sat:.3f} < {GREY_TARGET_SATURATION});"
                " hue is left alone (no hue or a*b* term) and only saturation and value are matched",
                stacklevel=3,
            )
        # A grey source has no hue to move: at zero chroma the hue's gradient is unbounded (it grew the fit's
        # gradients 10^6-fold on grey photos and threw their colours far from the target's), so the hue term is
        # dropped and the a*b* EMDs, smooth at grey, give the colours.
        self.hue_term = self.hue_on and _mean_saturation(rgb_to_hsv(source), source_weight) >= GREY_TARGET_SATURATION
        # The reflect-boundary channels that carry weight, name -> loss weight, in the order of their histograms.
        wanted = {"s": o["saturation_weight"], "v": o["value_weight"]}
        if self.hue_on:
            wanted.update(a=o["chroma_weight"] / 2, b=o["chroma_weight"] / 2)
        self.channels = {name: w for name, w in wanted.items() if w}
        with torch.no_grad():
            self.target = self._hists(tgt_hsv, rgb_to_lab(target), target_weight)

    def _soft(self, x, weight, binning):
        return run_backend(self.impl, "soft_histogram", [x], weight.expand_as(x), binning)[0]

    def _hists(self, hsv, lab, weight):
        """Soft histograms (C, bins) of the reflect channels in use (or None), and (1, bins) of the hue (or None)."""
        linear = hue = None
        if self.channels:
            # CIELAB a* and b* mapped from [-128, 128] to [0, 1].
            ab = lab[:, 1:] / 256 + 0.5
            values = {"s": hsv[:, 1:2], "v": hsv[:, 2:3], "a": ab[:, :1], "b": ab[:, 1:]}
            linear = self._soft(torch.cat([values[name] for name in self.channels], 1), weight, self.linear)
        if self.hue_term and self.o["hue_weight"]:
            # The saturation only selects which pixels vote for a hue (detached): lowering a wrongly hued
            # pixel's saturation must not be a way to lower the hue term.
            hue = self._soft(hsv[:, :1], hsv[:, 1:2].detach() * weight + 1e-6, self.circular)
        return linear, hue

    def terms(self, table: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each term's value before its weight: the EMD of each channel in use ("s", "v", "a", "b", "h") and the
        D_MI ("mi"). One EMD call for all reflect channels: the loop's cost is the number of ops, not their size."""
        out = apply_lut(table, self.source)
        lab = rgb_to_lab(out)
        (linear, hue), (target_linear, target_hue) = self._hists(rgb_to_hsv(out), lab, self.weight), self.target
        terms = {}
        if linear is not None:
            terms.update(zip(self.channels, emd(linear, target_linear)))
        if hue is not None:
            terms["h"] = emd(hue, target_hue, cyclic=True)[0]
        if self.o["mi_weight"]:
            joint = run_backend(self.impl, "joint_histogram", [lab[:, :1] / 100, self.src_l], self.weight, self.linear)
            terms["mi"] = mi_distance_from_entropies(self.impl.entropies(joint[0]))[0]
        return terms

    def __call__(self, table: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        o, t = self.o, self.terms(table)
        weights = dict(self.channels, h=o["hue_weight"], mi=o["mi_weight"])
        loss = sum(weights[name] * value for name, value in t.items())
        return loss + o["smoothness"] * 1e-3 * _smoothness(delta)


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
    saturation_weight: float = DEFAULTS["saturation_weight"],
    value_weight: float = DEFAULTS["value_weight"],
    mi_weight: float = DEFAULTS["mi_weight"],
    chroma_weight: float = DEFAULTS["chroma_weight"],
    smoothness: float = DEFAULTS["smoothness"],
    bins: int = DEFAULTS["bins"],
    bandwidth: float = DEFAULTS["bandwidth"],
    lr: float = DEFAULTS["lr"],
    fit_size: int = DEFAULTS["fit_size"],
    device=None,
    backend: str = "auto",
    callback=None,
) -> ColorLUT:
    r"""Fit a :class:`ColorLUT` that gives ``source`` the colours of ``target`` (see the module docstring).

    Args:
        source: RGB in [0, 1]: (3, H, W), (B, 3, H, W), or a list of (3, H, W) images of any sizes. All images
            are fitted together: one LUT for a whole set of frames (no flicker between them).
        target: the same forms; all target pixels form one colour distribution.
        size: LUT resolution N (N^3 entries), >= 2.
        steps: Adam steps (0 gives the identity).
        strength: blend with the identity in [0, 1]; 0 = identity, 1 = the fitted LUT.
        mask, target_mask: per-pixel weights >= 0 choosing which pixels of the source / target count: (H, W),
            (1, H, W) or (B, 1, H, W) (one per image), of the image's size; for a list, a list of masks.
            Transparent pixels should have weight 0. Must not be all zero.
        hue_weight, saturation_weight, value_weight, mi_weight, chroma_weight: weights of the hue EMD, S EMD,
            V EMD, the D_MI to the source's lightness and the EMDs of CIELAB a* and b* (the chroma's two axes).
        smoothness: weight of the smoothness penalty on the departure from the identity.
        bins, bandwidth: soft-histogram bins and kernel width (bin widths) of every term.
        lr: Adam's initial learning rate on the table entries; it decays linearly to ``FINAL_LR_FRACTION`` of it.
        fit_size: longest side (pixels) of the downscaled copies the fit runs on.
        device: where to fit (default: the source's device); the returned LUT lives there.
        backend: histogram backend, as in :func:`huenet.soft_histogram`.
        callback: optional ``callback(step)`` after each step (progress bars).

    Returns:
        The fitted :class:`ColorLUT`. A target with (almost) no saturation -- mean below
        ``huenet.losses.GREY_TARGET_SATURATION`` -- has no hue to take: the hue term is dropped, with a warning.

    Raises:
        ValueError / TypeError: an argument names what was expected and what was given, e.g. a mask of another
        size than its image, or an empty mask.
    """
    op = "fit"
    sources, targets = _as_images(op, "source", source), _as_images(op, "target", target)
    source_masks = _as_masks(op, "mask", mask, sources)
    target_masks = _as_masks(op, "target_mask", target_mask, targets)
    for arg, value, low in (("size", size, 2), ("steps", steps, 0), ("bins", bins, 2), ("fit_size", fit_size, 8)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            _checks.fail(op, arg, f"an int >= {low}", repr(value))
    _check_strength(op, strength)
    for arg, value in (
        ("hue_weight", hue_weight),
        ("saturation_weight", saturation_weight),
        ("value_weight", value_weight),
        ("mi_weight", mi_weight),
        ("chroma_weight", chroma_weight),
        ("smoothness", smoothness),
        ("lr", lr),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            _checks.fail(op, arg, "a finite number >= 0", repr(value))
    _checks.check_bandwidth(op, bandwidth)
    device = torch.device(device) if device is not None else sources[0].device
    options = dict(
        bins=bins,
        bandwidth=bandwidth,
        hue_weight=hue_weight,
        saturation_weight=saturation_weight,
        value_weight=value_weight,
        mi_weight=mi_weight,
        chroma_weight=chroma_weight,
        smoothness=smoothness,
    )
    src, src_w = _pixels(sources, source_masks, fit_size, device)
    tgt, tgt_w = _pixels(targets, target_masks, fit_size, device)
    objective = _Objective(src, src_w, tgt, tgt_w, options, backend)

    identity = identity_table(size, device=device)
    delta = torch.zeros_like(identity, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=lr)
    # Large steps first, small ones to settle: fewer steps reach the quality of a constant rate (docs/recolor.md).
    fraction = lambda k: 1 - (1 - FINAL_LR_FRACTION) * k / max(1, steps - 1)  # noqa: E731
    decay = torch.optim.lr_scheduler.LambdaLR(optimiser, fraction)
    with torch.enable_grad():
        for step in range(steps):
            optimiser.zero_grad(set_to_none=True)
            objective(identity + delta, delta).backward()
            optimiser.step()
            decay.step()
            if callback is not None:
                callback(step)
    table = identity + delta.detach()
    if not bool(torch.isfinite(table).all()):
        raise RuntimeError(f"fit: the optimisation diverged (non-finite LUT entries) at lr={lr}; lower `lr`")
    return ColorLUT(table.clamp(0, 1)).blend(strength)
