"""The fit's inputs: images and masks checked and pooled into a few thousand weighted colours.

Every term of the fit's objective is a weighted sum over pixels of a function of the pixel's colour alone, so a
cell of near-equal colours can stand for its pixels: a photo's tens of thousands of pixels become a few thousand
colours, which is what makes a fit take well under a second.

Example:
    >>> colours, weights = pooled_pixels([torch.rand(3, 20, 30)], [None], 192, "cpu")
    >>> colours.shape[0], float(weights.sum())
    (3, 600.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .. import _checks

# Pooling grids, finest first: 32 levels (cells of 8/255) give a photo at the fit size 500-2300 occupied cells
# (docs/recolor.md). A fit step's cost grows with the cells, so an image that occupies more than MAX_CELLS (noise,
# dithering: up to one cell per pixel) is pooled on the next coarser grid, until it fits the budget.
COMPRESS_LEVELS = (32, 24, 16, 12, 8)
MAX_CELLS = 2500


def as_images(op: str, arg: str, images) -> list[torch.Tensor]:
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


def as_masks(op: str, arg: str, masks, images: list[torch.Tensor]) -> list[torch.Tensor | None]:
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


def pooled_pixels(images, masks, fit_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Downscale each image (and mask) to at most ``fit_size`` on its longest side (area averaging) and pool
    all pixels into weighted colours (:func:`pool_cells`) on the finest grid of ``COMPRESS_LEVELS`` that leaves
    at most ``MAX_CELLS`` cells (the coarsest grid, 512 cells at most, otherwise): colours (3, M) and weights
    (M,)."""
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
        pooled, pooled_weights = pool_cells(colours, weights, level)
        if pooled.shape[-1] <= MAX_CELLS:
            break
    return pooled, pooled_weights


def pool_cells(colours: torch.Tensor, weights: torch.Tensor, levels: int):
    """Pool pixels (3, N) of weights (N,) into the occupied cells of a ``levels``^3 colour grid: each cell's
    weighted mean colour and total weight, (3, M) and (M,)."""
    index = (colours * levels).long().clamp_(0, levels - 1)
    key = (index[0] * levels + index[1]) * levels + index[2]
    cells, inverse = torch.unique(key, return_inverse=True)
    total = torch.zeros(len(cells), dtype=colours.dtype, device=colours.device).index_add_(0, inverse, weights)
    summed = torch.zeros(3, len(cells), dtype=colours.dtype, device=colours.device)
    summed.index_add_(1, inverse, colours * weights)
    occupied = total > 0
    mean = summed[:, occupied] / total[occupied]
    return mean, total[occupied]
