"""Float64 NumPy oracle for the neighbours' losses, written from the formulas of HistoGAN's RGB-uv histogram
(Afifi et al., CVPR 2021) and of the Parzen window shapes; dense and naive on purpose. (MONAI's mutual
information has MONAI itself as its reference.)"""

from __future__ import annotations

import numpy as np

from oracle import to_numpy

__all__ = ["window", "parzen_joint", "rgb_uv_histogram", "hellinger"]


def window(d, shape, scale):
    """Weight of offset d = x - centre under a window shape of scale s."""
    d = np.asarray(d, dtype=np.float64)
    if shape == "gaussian":
        return np.exp(-scale * d**2)
    if shape == "inverse-quadratic":
        return 1.0 / (1.0 + scale * d**2)
    a = np.abs(d) * scale
    if shape == "b-spline":
        return np.where(a < 1, (4 - 6 * a**2 + 3 * a**3) / 6, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))
    assert shape == "box"
    return np.where(a < 0.5, 1.0, np.where(a == 0.5, 0.5, 0.0))


def _weights(x, centres, shape, scale, normalized):
    v = window(to_numpy(x)[..., None] - to_numpy(centres), shape, scale)
    return v / v.sum(-1, keepdims=True) if normalized else v


def parzen_joint(x, y, w, centres, windows):
    """T[m] = sum_n w_mn a(x_mn) b(y_mn)^T for x, y, w (M, N); windows are (shape, scale, normalized)."""
    a = _weights(x, centres[0], *windows[0])
    b = _weights(y, centres[1], *windows[1])
    if w is not None:
        a = a * to_numpy(w)[..., None]
    return np.einsum("mnk,mnl->mkl", a, b)


def rgb_uv_histogram(
    images, bins=64, sigma=0.02, boundary=3.0, intensity_scale=True, kernel="inverse-quadratic", eps=1e-6
):
    """(B, 3, bins, bins): per channel, u and v the log-ratios of that channel to the other two (R: G, B; G: R, B;
    B: R, G), kernel 1/(1 + (d/σ)²) or exp(-(d/σ)²) at centres linspace(-boundary, boundary, bins), pixels
    weighted by sqrt(R² + G² + B² + eps), H_c = (I K_u)^T K_v, all channels normalised by their total + eps."""
    x = np.clip(to_numpy(images), 0.0, 1.0).reshape(images.shape[0], 3, -1)
    centres = np.linspace(-boundary, boundary, bins)
    intensity = np.sqrt((x**2).sum(1) + eps) if intensity_scale else np.ones_like(x[:, 0])
    out = np.zeros((x.shape[0], 3, bins, bins))
    for c, (p, q) in enumerate(((1, 2), (0, 2), (0, 1))):
        u = np.log(x[:, c] + eps) - np.log(x[:, p] + eps)
        v = np.log(x[:, c] + eps) - np.log(x[:, q] + eps)
        du = np.abs(u[..., None] - centres) ** 2 / sigma**2
        dv = np.abs(v[..., None] - centres) ** 2 / sigma**2
        ku, kv = (1 / (1 + du), 1 / (1 + dv)) if kernel == "inverse-quadratic" else (np.exp(-du), np.exp(-dv))
        out[:, c] = np.einsum("bn,bnk,bnl->bkl", intensity, ku, kv)
    return out / (out.sum((1, 2, 3), keepdims=True) + eps)


def hellinger(h_out, h_target):
    """Per-sample (1/sqrt 2) ||sqrt(H_target) - sqrt(H_out)||_2."""
    diff = np.sqrt(to_numpy(h_target)) - np.sqrt(to_numpy(h_out))
    return np.sqrt((diff.reshape(diff.shape[0], -1) ** 2).sum(1)) / np.sqrt(2.0)
