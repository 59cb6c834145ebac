"""The reference backend: the dense, paper-style O(N·K) formulas with plain autograd.

It materialises every (pixel, bin) membership, two sigmoids per bin and image, exactly as the official
Hue-Net code and its ports do. It is the readable statement of the math, the torch-side test oracle and the
benchmark baseline; use "eager" or "triton" for real work.
"""
from __future__ import annotations

import torch

from .binning import Binning
from .entropy import entropies  # noqa: F401  (the reduction the public ops call on this backend)


def memberships(z: torch.Tensor, binning: Binning) -> torch.Tensor:
    """Memberships m_k(z) of every value in every bin: z (M, N) -> (M, N, K)."""
    k = torch.arange(binning.bins, dtype=z.dtype, device=z.device)
    left = binning.lo + k * binning.width
    right = binning.lo + (k + 1) * binning.width
    w = binning.bandwidth * binning.width
    span = binning.hi - binning.lo
    if binning.boundary == "reflect":
        images = (z, 2 * binning.lo - z, 2 * binning.hi - z)
    elif binning.boundary == "circular":
        z = binning.lo + torch.remainder(z - binning.lo, span)
        images = (z, z + span, z - span)
    else:
        images = (z,)
    total = 0
    for image in images:
        t = image.unsqueeze(-1)
        total = total + torch.sigmoid((t - left) / w) - torch.sigmoid((t - right) / w)
    return total


def soft_histogram(z: torch.Tensor, w: torch.Tensor | None, binning: Binning) -> torch.Tensor:
    """p = sum_x w m(z_x) / sum_x w: z (M, N), w (M, N) or None -> (M, K)."""
    m = memberships(z, binning)
    if w is None:
        return m.mean(1)
    return (w.unsqueeze(-1) * m).sum(1) / w.sum(1, keepdim=True)


def joint_histogram(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, binning: Binning) -> torch.Tensor:
    """J = P1ᵀ diag(w) P2 / sum w with P the (N, K) membership matrices: x, y (M, N) -> (M, K, K)."""
    p1, p2 = memberships(x, binning), memberships(y, binning)
    if w is None:
        return p1.transpose(1, 2) @ p2 / x.shape[1]
    return p1.transpose(1, 2) @ (w.unsqueeze(-1) * p2) / w.sum(1)[:, None, None]
