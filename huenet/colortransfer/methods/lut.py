r"""Fit the 3D LUT that carries a colour mapping measured at a working resolution to an image of any size.

A network applied to a 12-megapixel photo needs gigabytes of activations; colour transfer is, however, mostly a
function of the colour. :func:`measure_lut` measures that function on a small copy -- pairs (input colour, output
colour) -- as an ``(3, n, n, n)`` lattice, splatting each pair trilinearly onto the 8 lattice points around
its input colour; lattice points no pixel reached take the mean change (a prior of weight ``prior``), so
they stay smooth. :class:`huenet.recolor.ColorLUT` then maps every pixel of the full-size image through it
(trilinear, in chunks). Spatially varying corrections of the network are averaged per colour; a LUT cannot
copy them.

Example:
    >>> from huenet.recolor import ColorLUT
    >>> image = torch.rand(1, 3, 128, 128)
    >>> lut = ColorLUT(measure_lut(image, 1 - image))
    >>> bool((lut(image) - (1 - image)).abs().mean() < 0.01)
    True
"""

from __future__ import annotations

import torch

LUT_SIZE = 33


def _corners(colors: torch.Tensor, n: int):
    """The 8 lattice points around each colour (N, 3) in [0, 1]: flat indices (8, N) and weights (8, N)."""
    position = colors.clamp(0, 1) * (n - 1)
    lo = position.floor().clamp(max=n - 2).long()
    frac = position - lo
    indices, weights = [], []
    for corner in range(8):
        bits = [(corner >> axis) & 1 for axis in range(3)]
        index = torch.zeros_like(lo[:, 0])
        weight = torch.ones_like(frac[:, 0])
        for axis, bit in enumerate(bits):
            index = index * n + lo[:, axis] + bit
            weight = weight * (frac[:, axis] if bit else 1 - frac[:, axis])
        indices.append(index)
        weights.append(weight)
    return torch.stack(indices), torch.stack(weights)


@torch.no_grad()
def measure_lut(source: torch.Tensor, output: torch.Tensor, size: int = LUT_SIZE, prior: float = 1e-3) -> torch.Tensor:
    """The 3D LUT (3, size, size, size) that best maps ``source``'s colours to ``output``'s, both (1, 3, H, W).

    Indexed ``[channel, blue, green, red]`` as
    :class:`huenet.recolor.ColorLUT`; each lattice point holds the weighted mean change of the pixels around it
    (added to its own colour), shrunk towards the image's mean change by ``prior`` pixels' worth of weight.
    """
    src = source.float().flatten(2)[0].T  # (N, 3)
    change = output.float().flatten(2)[0].T - src
    index, weight = _corners(src, size)
    total = torch.zeros(size**3, device=src.device).index_add_(0, index.flatten(), weight.flatten())
    sums = torch.zeros(size**3, 3, device=src.device).index_add_(
        0, index.flatten(), (weight[..., None] * change[None]).flatten(0, 1)
    )
    mean_change = change.mean(0)
    offset = (sums + prior * mean_change) / (total[:, None] + prior)
    axis = torch.linspace(0, 1, size, device=src.device)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    # Lattice points were laid out [r, g, b]; huenet.recolor's tables (and .cube files) are [b, g, r].
    return (grid + offset).clamp(0, 1).T.reshape(3, size, size, size).permute(0, 3, 2, 1).contiguous()
