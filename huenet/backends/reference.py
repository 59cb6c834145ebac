"""The reference backend: the dense, paper-style O(N·K) formulas with plain autograd.

It materialises every (pixel, bin) membership, two sigmoids per bin and image, exactly as the official
Hue-Net code and its ports do. It is the readable statement of the math, the torch-side test oracle and the
benchmark baseline; use "eager" or "triton" for real work. Its entropy reduction is plain torch, and the
eager backend shares it.

Like every backend it takes values in bin units (M, N) and the bin-unit ``Binning`` (lo = 0, width 1), where
the formulas below read exactly as in value units.
"""

from __future__ import annotations

import torch

from ..binning import Binning
from . import parzen_dense


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


def _neg_xlogx_sum(p: torch.Tensor, dims) -> torch.Tensor:
    # log(1) = 0 where p == 0 gives both 0·log 0 = 0 and a zero (not -inf) gradient there; such entries carry
    # no membership mass, so the gradient that reaches the images through them is zero either way.
    safe = torch.where(p > 0, p, torch.ones((), dtype=p.dtype, device=p.device))
    return -(p * torch.log(safe)).sum(dims)


def entropies(joint: torch.Tensor) -> torch.Tensor:
    """(H(X,Y), H(X), H(Y)) of joint histograms (M, K, K) whose rows index X, stacked as (M, 3)."""
    return torch.stack(
        [_neg_xlogx_sum(joint, (-2, -1)), _neg_xlogx_sum(joint.sum(-1), -1), _neg_xlogx_sum(joint.sum(-2), -1)], -1
    )


class ReferenceBackend:
    """The functions of this module as a :class:`~huenet.backends.contract.Backend`, with plain autograd."""

    name = "reference"

    def soft_histogram(self, u, w, binning):
        return soft_histogram(u, w, binning)

    def joint_histogram(self, x, y, w, binning):
        return joint_histogram(x, y, w, binning)

    def entropies(self, joint):
        return entropies(joint)

    def parzen_joint(self, x, y, w, centres, windows):
        return parzen_dense.reference_joint(x, y, w, centres, windows)


BACKEND = ReferenceBackend()
