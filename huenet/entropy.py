"""Entropies of joint histograms in plain torch, shared by the eager and reference backends."""
from __future__ import annotations

import torch


def _neg_xlogx_sum(p: torch.Tensor, dims) -> torch.Tensor:
    # log(1) = 0 where p == 0 gives both 0·log 0 = 0 and a zero (not -inf) gradient there; such entries carry
    # no membership mass, so the gradient that reaches the images through them is zero either way.
    safe = torch.where(p > 0, p, torch.ones((), dtype=p.dtype, device=p.device))
    return -(p * torch.log(safe)).sum(dims)


def entropies(joint: torch.Tensor) -> torch.Tensor:
    """(H(X,Y), H(X), H(Y)) of joint histograms (M, K, K) whose rows index X, stacked as (M, 3)."""
    return torch.stack([_neg_xlogx_sum(joint, (-2, -1)), _neg_xlogx_sum(joint.sum(-1), -1),
                        _neg_xlogx_sum(joint.sum(-2), -1)], -1)
