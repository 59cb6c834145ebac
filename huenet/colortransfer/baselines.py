r"""Classical colour-transfer baselines to compare a trained Hue-Net against.

- :func:`identity`: the source unchanged (the floor any method must beat on colour).
- :func:`reinhard`: Reinhard et al. (2001) mean/std transfer, here in CIE Lab (D65) rather than lαβ.
- :func:`histogram_matching`: per-RGB-channel matching of the source's CDF to the target's.
- :func:`mkl`: Pitié and Kokaram's (2007) linear Monge-Kantorovitch mapping of the RGB distribution.

Each takes ``(source, target)`` RGB batches in [0, 1] -- (B, 3, H, W) and (B, 3, H', W') -- and returns the
output (B, 3, H, W) in [0, 1]. :mod:`huenet.colortransfer.methods.registry` names them, with the network and
the training-free fit, for the commands.

Example:
    >>> source, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 24, 20)
    >>> reinhard(source, target).shape
    torch.Size([2, 3, 16, 16])
"""

from __future__ import annotations

import torch

from ..color import lab_to_rgb, rgb_to_lab


def identity(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The source itself."""
    return source


def lab_moments(lab: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation of Lab images: (B, 3, H, W) -> (B, 6) (means, then stds)."""
    return torch.cat([lab.mean((2, 3)), lab.std((2, 3))], 1)


def match_moments(lab: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Move each Lab channel from the ``source`` moments to the ``target`` ones (both (B, 6), :func:`lab_moments`)."""
    src_mean, src_std = source[:, :3, None, None], source[:, 3:, None, None]
    tgt_mean, tgt_std = target[:, :3, None, None], target[:, 3:, None, None]
    # A flat source channel has no spread to scale: it only moves to the target's mean.
    scale = torch.where(src_std > 1e-6, tgt_std / src_std.clamp(min=1e-6), torch.zeros_like(src_std))
    return (lab - src_mean) * scale + tgt_mean


def reinhard(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Match each Lab channel's mean and standard deviation to the target's (Reinhard et al., 2001)."""
    src, tgt = rgb_to_lab(source.float()), rgb_to_lab(target.float())
    return lab_to_rgb(match_moments(src, lab_moments(src), lab_moments(tgt))).to(source.dtype)


def histogram_matching(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Map each RGB channel of the source through its CDF and the target's inverse CDF.

    A source value with empirical CDF ``u`` becomes the target's ``u``-quantile (linear interpolation between
    sorted target values); equal source values get equal outputs.
    """
    b, c = source.shape[:2]
    src = source.float().reshape(b * c, -1)
    tgt = target.float().reshape(b * c, -1)
    src_sorted = src.sort(1).values
    tgt_sorted = tgt.sort(1).values
    # Mid-rank CDF of each value in (0, 1): ties share one position, so a flat region stays flat.
    below = torch.searchsorted(src_sorted, src, right=False)
    upto = torch.searchsorted(src_sorted, src, right=True)
    position = (below + upto - 1).float() / 2 / max(src.shape[1] - 1, 1) * (tgt.shape[1] - 1)
    lo = position.floor().long().clamp(0, tgt.shape[1] - 1)
    hi = (lo + 1).clamp(max=tgt.shape[1] - 1)
    frac = position - lo.float()
    out = torch.gather(tgt_sorted, 1, lo) * (1 - frac) + torch.gather(tgt_sorted, 1, hi) * frac
    return out.reshape(source.shape).to(source.dtype)


# Variance floor of the MKL covariances, in (RGB units)^2: far below any real image's spread (1/255^2 ~ 1.5e-5).
_MKL_EPS = 1e-8


def _sqrtm(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Square root and inverse square root of symmetric positive semi-definite (B, 3, 3) matrices."""
    values, vectors = torch.linalg.eigh(matrix)
    # A flat image has a singular covariance; the floor keeps the inverse root finite (and the mapping then
    # leaves the flat direction where the mean puts it).
    values = values.clamp(min=_MKL_EPS)
    root = (vectors * values.sqrt()[:, None]) @ vectors.mT
    inv_root = (vectors * values.rsqrt()[:, None]) @ vectors.mT
    return root, inv_root


def mkl(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""The linear Monge-Kantorovitch colour mapping of Pitié and Kokaram (2007), in RGB.

    With :math:`\Sigma_u, \mu_u` the covariance and mean of the source's colours and :math:`\Sigma_v, \mu_v`
    the target's, each colour becomes :math:`T (x - \mu_u) + \mu_v` with the closed form

    .. math:: T = \Sigma_u^{-1/2} \left(\Sigma_u^{1/2} \Sigma_v \Sigma_u^{1/2}\right)^{1/2} \Sigma_u^{-1/2},

    the linear map that gives the output the target's covariance (:math:`T \Sigma_u T = \Sigma_v`) while moving
    colours as little as possible in the L2 (Monge-Kantorovitch) sense. Computed in float64; clipped to [0, 1].
    """
    b = source.shape[0]
    src = source.double().reshape(b, 3, -1)
    tgt = target.double().reshape(b, 3, -1)
    mean_u, mean_v = src.mean(2, keepdim=True), tgt.mean(2, keepdim=True)
    cov_u = (src - mean_u) @ (src - mean_u).mT / src.shape[2]
    cov_v = (tgt - mean_v) @ (tgt - mean_v).mT / tgt.shape[2]
    root_u, inv_root_u = _sqrtm(cov_u)
    middle, _ = _sqrtm(root_u @ cov_v @ root_u)
    transform = inv_root_u @ middle @ inv_root_u
    out = transform @ (src - mean_u) + mean_v
    return out.clamp(0, 1).reshape(source.shape).to(source.dtype)
