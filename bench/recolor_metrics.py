r"""The recolouring metrics, written from their definitions in NumPy (float64), independently of huenet.

Every function takes RGB images as (H, W, 3) float arrays in [0, 1] and returns a float.

- :func:`hue_emd_chroma`: circular W1 between 256-bin HSV hue histograms weighted by chroma max(R,G,B) - min(R,G,B)
  (the mean of :math:`|d - \mathrm{median}(d)|` over bins, d the difference of the CDFs); in units of a full turn.
- :func:`ab_swd`: sliced W1 between the CIELAB (a*, b*) distributions: 64 directions evenly spaced over [0, pi),
  200 quantiles from 0.005 to 0.995.
- :func:`lightness_ssim`: SSIM of CIELAB L* between output and source, data range 100 (Gaussian window 11 x 11,
  sigma 1.5, K1 = 0.01, K2 = 0.03, averaged over the positions where the window fits).
- :func:`invented_percent`: the share of output pixels whose CIELAB colour lies further than 15 (Delta E 76) from
  every one of 8000 target pixels sampled with a fixed seed.
- :func:`artefact_percent`: each CIELAB channel of output and source smoothed with a Gaussian (sigma 1 px), Sobel
  gradient magnitudes summed over channels as sqrt(sum gx^2 + gy^2) / 8 (g_out, g_src); the contrast gain
  G = max(1, median of g_out / g_src over the pixels whose g_src is above its median); artefacts are the pixels with
  g_out > 3 G g_src + 5.

Example:
    >>> rng = np.random.default_rng(0)
    >>> image = rng.random((32, 40, 3))
    >>> round(hue_emd_chroma(image, image), 6), round(lightness_ssim(image, image), 6)
    (0.0, 1.0)
"""

from __future__ import annotations

import numpy as np
import torch

INVENTED_DELTA_E = 15.0
INVENTED_SAMPLES = 8000
SWD_DIRECTIONS = 64
SWD_QUANTILES = np.linspace(0.005, 0.995, 200)
HUE_BINS = 256

# sRGB (D65) -> XYZ, and the D65 white point.
_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in [0, 1] -> CIELAB (D65): L* in [0, 100], a* and b* about [-128, 128]."""
    rgb = np.clip(np.asarray(rgb, np.float64), 0, 1)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _hue_histogram(rgb: np.ndarray) -> np.ndarray:
    rgb = np.clip(np.asarray(rgb, np.float64), 0, 1).reshape(-1, 3)
    r, g, b = rgb.T
    top, chroma = rgb.max(1), rgb.max(1) - rgb.min(1)
    safe = np.where(chroma > 0, chroma, 1)
    hue = np.where(top == r, ((g - b) / safe) % 6, np.where(top == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    index = np.minimum((hue * HUE_BINS).astype(int), HUE_BINS - 1)
    hist = np.bincount(index, weights=chroma, minlength=HUE_BINS)
    total = hist.sum()
    return hist / total if total > 0 else np.full(HUE_BINS, 1 / HUE_BINS)


def hue_emd_chroma(output: np.ndarray, target: np.ndarray) -> float:
    """Circular W1 between the chroma-weighted 256-bin hue histograms of output and target (a full turn is 1)."""
    d = np.cumsum(_hue_histogram(output)) - np.cumsum(_hue_histogram(target))
    return float(np.mean(np.abs(d - np.median(d))))


def ab_swd(output: np.ndarray, target: np.ndarray) -> float:
    """Sliced W1 between the (a*, b*) distributions of output and target, in CIELAB units."""
    angles = np.arange(SWD_DIRECTIONS) * np.pi / SWD_DIRECTIONS
    directions = np.stack([np.cos(angles), np.sin(angles)])
    q_out = _quantiles(srgb_to_lab(output).reshape(-1, 3)[:, 1:] @ directions)
    q_tgt = _quantiles(srgb_to_lab(target).reshape(-1, 3)[:, 1:] @ directions)
    return float(np.mean(np.abs(q_out - q_tgt)))


def _quantiles(values: np.ndarray) -> np.ndarray:
    """SWD_QUANTILES of each column of (N, D), interpolating linearly between order statistics (NumPy's
    default 'linear' quantile), from one sort per column."""
    ordered = np.sort(values.T, axis=1).T
    position = SWD_QUANTILES * (len(ordered) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(ordered) - 1)
    frac = (position - low)[:, None]
    return ordered[low] * (1 - frac) + ordered[high] * frac


def _gaussian_kernel(sigma: float, radius: int) -> np.ndarray:
    x = np.arange(-radius, radius + 1)
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _filter(image: np.ndarray, kx: np.ndarray, ky: np.ndarray, mode: str) -> np.ndarray:
    """Separable correlation of (H, W[, C]) with kx along W and ky along H; 'reflect' keeps the size, 'valid'
    keeps the positions where the kernel fits."""
    rx, ry = len(kx) // 2, len(ky) // 2
    if mode == "reflect":
        pad = [(ry, ry), (rx, rx)] + [(0, 0)] * (image.ndim - 2)
        image = np.pad(image, pad, mode="symmetric")
    h, w = image.shape[:2]
    rows = sum(kx[i] * image[:, i : w - 2 * rx + i] for i in range(len(kx)))
    return sum(ky[i] * rows[i : h - 2 * ry + i] for i in range(len(ky)))


def lightness_ssim(output: np.ndarray, source: np.ndarray) -> float:
    """SSIM of CIELAB L* (data range 100) between output and source."""
    x, y = srgb_to_lab(output)[..., 0], srgb_to_lab(source)[..., 0]
    if min(x.shape) < 11:
        return float("nan")
    k = _gaussian_kernel(1.5, 5)
    mx, my = _filter(x, k, k, "valid"), _filter(y, k, k, "valid")
    sxx = _filter(x * x, k, k, "valid") - mx * mx
    syy = _filter(y * y, k, k, "valid") - my * my
    sxy = _filter(x * y, k, k, "valid") - mx * my
    c1, c2 = (0.01 * 100) ** 2, (0.03 * 100) ** 2
    ssim = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(ssim.mean())


def invented_percent(output: np.ndarray, target: np.ndarray, seed: int = 0) -> float:
    """Percent of output pixels further than Delta E 15 from every one of 8000 sampled target pixels."""
    out = torch.from_numpy(srgb_to_lab(output).reshape(-1, 3))
    tgt = srgb_to_lab(target).reshape(-1, 3)
    picked = np.random.default_rng(seed).choice(len(tgt), min(INVENTED_SAMPLES, len(tgt)), replace=False)
    tgt = tgt[picked]
    try:
        from scipy.spatial import cKDTree
    except ImportError:  # exact either way; the k-d tree is some 50x faster than all pairs
        nearest = torch.cat([torch.cdist(chunk, torch.from_numpy(tgt)).amin(1) for chunk in out.split(4096)])
    else:
        nearest = torch.from_numpy(cKDTree(tgt).query(out.numpy(), distance_upper_bound=2 * INVENTED_DELTA_E)[0])
    return 100.0 * float((nearest > INVENTED_DELTA_E).double().mean())


def _gradient_magnitude(rgb: np.ndarray) -> np.ndarray:
    lab = _filter(srgb_to_lab(rgb), _gaussian_kernel(1.0, 4), _gaussian_kernel(1.0, 4), "reflect")
    smooth, diff = np.array([1.0, 2.0, 1.0]), np.array([-1.0, 0.0, 1.0])
    gx = _filter(lab, diff, smooth, "reflect")
    gy = _filter(lab, smooth, diff, "reflect")
    return np.sqrt((gx**2 + gy**2).sum(-1)) / 8


def artefact_percent(output: np.ndarray, source: np.ndarray) -> float:
    """Percent of pixels whose output gradient exceeds 3 x the overall contrast gain x the source's, plus 5."""
    g_out, g_src = _gradient_magnitude(output), _gradient_magnitude(source)
    textured = g_src > np.median(g_src)
    gain = max(1.0, float(np.median(g_out[textured] / g_src[textured]))) if textured.any() else 1.0
    return 100.0 * float(np.mean(g_out > 3 * gain * g_src + 5))


METRICS = {
    "hue EMD": (hue_emd_chroma, "target"),
    "a*b* SWD": (ab_swd, "target"),
    "L-SSIM": (lightness_ssim, "source"),
    "invented %": (invented_percent, "target"),
    "artefacts %": (artefact_percent, "source"),
}


def score(output: np.ndarray, source: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Every metric of one output: name -> value (against the target or the source, as :data:`METRICS` says)."""
    refs = {"source": source, "target": target}
    return {name: fn(output, refs[ref]) for name, (fn, ref) in METRICS.items()}
