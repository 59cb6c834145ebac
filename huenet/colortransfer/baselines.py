r"""Classical colour-transfer baselines to compare a trained Hue-Net against.

- :func:`identity`: the source unchanged (the floor any method must beat on colour).
- :func:`reinhard`: Reinhard et al. (2001) mean/std transfer, here in CIE Lab (D65) rather than lαβ.
- :func:`histogram_matching`: per-RGB-channel matching of the source's CDF to the target's.

Each takes ``(source, target)`` RGB batches in [0, 1] -- (B, 3, H, W) and (B, 3, H', W') -- and returns the
output (B, 3, H, W) in [0, 1].

Example:
    >>> source, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 24, 20)
    >>> {name: fn(source, target).shape for name, fn in BASELINES.items()}["reinhard"]
    torch.Size([2, 3, 16, 16])
"""
from __future__ import annotations

import torch

# sRGB (D65) linear RGB -> XYZ, and the D65 white point.
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
_WHITE = _RGB_TO_XYZ.sum(1)
_EPS = 6 / 29


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (B, 3, H, W) -> CIE Lab (D65): L in [0, 100], a and b roughly in [-128, 127]."""
    matrix = (_RGB_TO_XYZ / _WHITE[:, None]).to(image)
    xyz = torch.einsum("ij,bjhw->bihw", matrix, _srgb_to_linear(image))
    f = torch.where(xyz > _EPS ** 3, xyz.clamp(min=_EPS ** 3) ** (1 / 3), xyz / (3 * _EPS ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_lab`; colours outside the sRGB gamut are clipped to [0, 1]."""
    big_l, a, b = lab.unbind(1)
    fy = (big_l + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], 1)
    xyz = torch.where(f > _EPS, f ** 3, 3 * _EPS ** 2 * (f - 4 / 29))
    matrix = torch.linalg.inv(_RGB_TO_XYZ / _WHITE[:, None]).to(lab)
    return _linear_to_srgb(torch.einsum("ij,bjhw->bihw", matrix, xyz))


def identity(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The source itself."""
    return source


def reinhard(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Match each Lab channel's mean and standard deviation to the target's (Reinhard et al., 2001)."""
    src, tgt = rgb_to_lab(source.float()), rgb_to_lab(target.float())
    src_mean, src_std = src.mean((2, 3), keepdim=True), src.std((2, 3), keepdim=True)
    tgt_mean, tgt_std = tgt.mean((2, 3), keepdim=True), tgt.std((2, 3), keepdim=True)
    # A flat source channel has no spread to scale: it only moves to the target's mean.
    scale = torch.where(src_std > 1e-6, tgt_std / src_std.clamp(min=1e-6), torch.zeros_like(src_std))
    return lab_to_rgb((src - src_mean) * scale + tgt_mean).to(source.dtype)


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


BASELINES = {"identity": identity, "reinhard": reinhard, "histogram_matching": histogram_matching}
