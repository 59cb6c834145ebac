"""Float64 NumPy oracle for huenet, written directly from the formulas in the core spec.

Everything here is dense and deliberately naive: it is the independent ground truth the
test suite compares the huenet backends against.  NumPy only (no SciPy, no torch maths).

Conventions (spec):
  values z in [lo, hi], K bins, L = (hi - lo) / K, edges e_k = lo + k L (k = 0..K),
  kernel width W = b * L (b = bandwidth, in bin widths),
  pi_k(z) = sigmoid((z - e_k) / W) - sigmoid((z - e_{k+1}) / W).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "sigmoid",
    "kernel",
    "memberships",
    "soft_histogram",
    "joint_histogram",
    "emd",
    "entropy",
    "joint_entropy_from_joint",
    "marginals",
    "mutual_information_from_joint",
    "mutual_information",
    "joint_entropy",
    "mi_distance",
    "conditional_entropy",
    "to_numpy",
    "rgb_to_hsv",
    "rgb_to_yuv",
    "CHANNELS",
    "convert",
    "ssim",
]


def to_numpy(a):
    """torch tensor / array-like -> float64 ndarray (torch imported lazily, only if needed)."""
    if a is None:
        return None
    if hasattr(a, "detach"):
        a = a.detach().cpu()
        if a.dtype.is_floating_point:
            a = a.double()
        a = a.numpy()
    return np.asarray(a, dtype=np.float64)


def sigmoid(t):
    """Numerically stable logistic function, float64, never overflows."""
    t = np.asarray(t, dtype=np.float64)
    e = np.exp(-np.abs(t))  # in (0, 1], no overflow
    pos = 1.0 / (1.0 + e)  # sigmoid(|t|)
    neg = e / (1.0 + e)  # sigmoid(-|t|)
    return np.where(t >= 0, pos, neg)


def _edges(bins, rng):
    lo, hi = float(rng[0]), float(rng[1])
    L = (hi - lo) / bins
    return lo + L * np.arange(bins + 1, dtype=np.float64), L


def kernel(z, bins, rng=(0.0, 1.0), bandwidth=0.4):
    """pi_k(z) for every k: returns z.shape + (bins,)."""
    z = np.asarray(z, dtype=np.float64)
    e, L = _edges(bins, rng)
    W = bandwidth * L
    zz = z[..., None]
    return sigmoid((zz - e[:-1]) / W) - sigmoid((zz - e[1:]) / W)


def memberships(z, bins, rng=(0.0, 1.0), bandwidth=0.4, boundary="reflect"):
    """m_k(z) for every k: returns z.shape + (bins,)."""
    z = np.asarray(z, dtype=np.float64)
    lo, hi = float(rng[0]), float(rng[1])
    span = hi - lo
    pi = lambda u: kernel(u, bins, rng, bandwidth)  # noqa: E731
    if boundary == "reflect":
        return pi(z) + pi(2.0 * lo - z) + pi(2.0 * hi - z)
    if boundary == "circular":
        zw = lo + np.mod(z - lo, span)  # np.mod has the sign of the divisor -> [0, span)
        zw = np.where(zw >= hi, lo, zw)  # guard the rounding case mod == span
        return pi(zw) + pi(zw + span) + pi(zw - span)
    if boundary == "none":
        return pi(z)
    raise ValueError(f"unknown boundary {boundary!r}")


def _flat(a):
    """(B, C, *sp) -> (B, C, N)."""
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _weights(x, weight):
    """Broadcast weight ((B,C,*sp) or (B,1,*sp) or None) to (B, C, N)."""
    xf = _flat(x)
    if weight is None:
        return np.ones_like(xf)
    w = _flat(weight)
    return np.broadcast_to(w, xf.shape).astype(np.float64)


def soft_histogram(x, bins, rng=(0.0, 1.0), bandwidth=0.4, boundary="reflect", weight=None):
    """p[b, c, k] = sum_x w m_k(z) / sum_x w.  Returns (B, C, bins)."""
    x = to_numpy(x)
    weight = to_numpy(weight)
    xf = _flat(x)
    w = _weights(x, weight)
    m = memberships(xf, bins, rng, bandwidth, boundary)  # (B, C, N, K)
    num = np.einsum("bcnk,bcn->bck", m, w)
    return num / w.sum(-1)[..., None]


def joint_histogram(x, y, bins, rng=(0.0, 1.0), bandwidth=0.4, boundary="reflect", weight=None):
    """J[b, c, k1, k2] = sum_x w m_k1(x) m_k2(y) / sum_x w.  Returns (B, C, bins, bins)."""
    x = to_numpy(x)
    y = to_numpy(y)
    weight = to_numpy(weight)
    xf, yf = _flat(x), _flat(y)
    w = _weights(x, weight)
    mx = memberships(xf, bins, rng, bandwidth, boundary)
    my = memberships(yf, bins, rng, bandwidth, boundary)
    num = np.einsum("bcnk,bcnl,bcn->bckl", mx, my, w)
    return num / w.sum(-1)[..., None, None]


def emd(p, q, order=1, cyclic=False):
    """EMD over the last dim.  Returns p.shape[:-1]."""
    p = to_numpy(p)
    q = to_numpy(q)
    D = np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1)
    if order == 1:
        if cyclic:
            D = D - np.median(D, axis=-1, keepdims=True)
        return np.mean(np.abs(D), axis=-1)
    if order == 2:
        if cyclic:
            D = D - np.mean(D, axis=-1, keepdims=True)
        return np.sqrt(np.mean(D * D, axis=-1))
    raise ValueError(f"unknown order {order!r}")


def _xlogx(a):
    a = np.asarray(a, dtype=np.float64)
    safe = np.where(a > 0, a, 1.0)
    return np.where(a > 0, a * np.log(safe), 0.0)


def entropy(p, axes=(-1,)):
    """-sum p log p over the given axes (0 log 0 = 0)."""
    return -np.sum(_xlogx(p), axis=tuple(axes))


def marginals(J):
    """p1 = marginal of x (sum over k2), p2 = marginal of y (sum over k1)."""
    J = np.asarray(J, dtype=np.float64)
    return J.sum(-1), J.sum(-2)


def joint_entropy_from_joint(J):
    return entropy(J, axes=(-2, -1))


def mutual_information_from_joint(J):
    """I = sum J log(J / (p1 p2)), terms with J == 0 contribute 0 (direct definition)."""
    J = np.asarray(J, dtype=np.float64)
    p1, p2 = marginals(J)
    outer = p1[..., :, None] * p2[..., None, :]
    ok = (J > 0) & (outer > 0)
    ratio = np.where(ok, J / np.where(ok, outer, 1.0), 1.0)
    return np.sum(np.where(ok, J * np.log(ratio), 0.0), axis=(-2, -1))


def _J(x, y, bins, rng, bandwidth, boundary, weight):
    return joint_histogram(x, y, bins, rng, bandwidth, boundary, weight)


def mutual_information(x, y, bins, rng=(0.0, 1.0), bandwidth=0.4, boundary="reflect", weight=None):
    return mutual_information_from_joint(_J(x, y, bins, rng, bandwidth, boundary, weight))


def joint_entropy(x, y, bins, rng=(0.0, 1.0), bandwidth=0.4, boundary="reflect", weight=None):
    return joint_entropy_from_joint(_J(x, y, bins, rng, bandwidth, boundary, weight))


def mi_distance(x, y, bins, rng=(0.0, 1.0), bandwidth=0.4, boundary="reflect", weight=None):
    """D_MI = 1 - I / H(X,Y), and 1 where H(X,Y) == 0."""
    J = _J(x, y, bins, rng, bandwidth, boundary, weight)
    H = joint_entropy_from_joint(J)
    p1, p2 = marginals(J)
    I = entropy(p1) + entropy(p2) - H  # noqa: E741
    return np.where(H == 0, 1.0, 1.0 - I / np.where(H == 0, 1.0, H))


def conditional_entropy(x, y, bins, rng=(0.0, 1.0), bandwidth=0.4, boundary="reflect", weight=None):
    """H(X|Y) = H(X,Y) - H(Y), Y = marginal of y = J.sum(-2)."""
    J = _J(x, y, bins, rng, bandwidth, boundary, weight)
    _, p2 = marginals(J)
    return joint_entropy_from_joint(J) - entropy(p2)


# ----------------------------------------------------------------------------------------------------------
# Colour spaces, written from their definitions (not from huenet.color), for images (B, 3, *sp) in [0, 1].
# ----------------------------------------------------------------------------------------------------------

# BT.601 analogue YUV, the matrix of tf.image.rgb_to_yuv: rows give Y, U, V from (R, G, B).
_YUV = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14714119, -0.28886916, 0.43601035],
        [0.61497538, -0.51496512, -0.10001026],
    ]
)

# (channel letter, (lo, hi), periodic) per colour space. Hue is in turns and periodic; S and V of HSV are in
# [0, 1]. The YUV ranges are the extremes over the RGB cube: Y is a convex combination (0 at black, 1 at
# white), U peaks at blue (0.43601035) and bottoms at yellow (-0.14714119 - 0.28886916), V peaks at red
# (0.61497538) and bottoms at cyan (-0.51496512 - 0.10001026).
CHANNELS = {
    "rgb": (("r", (0.0, 1.0), False), ("g", (0.0, 1.0), False), ("b", (0.0, 1.0), False)),
    "hsv": (("h", (0.0, 1.0), True), ("s", (0.0, 1.0), False), ("v", (0.0, 1.0), False)),
    "yuv": (
        ("y", (0.0, 1.0), False),
        ("u", (-0.14714119 - 0.28886916, 0.43601035), False),
        ("v", (-0.51496512 - 0.10001026, 0.61497538), False),
    ),
}


def rgb_to_hsv(rgb):
    """Hexagonal HSV of colorsys, hue in turns in [0, 1) (red 0, green 1/3, blue 2/3); grey has h = s = 0."""
    rgb = to_numpy(rgb)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    v = rgb.max(1)
    c = v - rgb.min(1)
    safe_c = np.where(c > 0, c, 1.0)
    sector = np.where(r == v, (g - b) / safe_c, np.where(g == v, 2.0 + (b - r) / safe_c, 4.0 + (r - g) / safe_c))
    h = np.mod(sector / 6.0, 1.0)
    h = np.where((c > 0) & (h < 1.0), h, 0.0)  # grey has no hue; a hue that rounds up to 1 turn is 0
    s = np.where(v > 0, c / np.where(v > 0, v, 1.0), 0.0)
    return np.stack([h, s, v], 1)


def rgb_to_yuv(rgb):
    """(Y, U, V) = M (R, G, B) with the BT.601 matrix of tf.image.rgb_to_yuv."""
    return np.einsum("ij,bj...->bi...", _YUV, to_numpy(rgb))


def convert(rgb, space):
    """The image in colour space ``space`` ("rgb", "hsv" or "yuv")."""
    return {"rgb": to_numpy, "hsv": rgb_to_hsv, "yuv": rgb_to_yuv}[space](rgb)


def ssim(x, y):
    """SSIM of two (H, W) float64 arrays from its definition: Gaussian-weighted statistics of each valid
    11x11 window (sigma 1.5, weights summing to 1), C1 = 0.01^2, C2 = 0.03^2, averaged over windows."""
    k = np.arange(11) - 5.0
    w = np.exp(-(k**2) / (2 * 1.5**2))
    w = np.outer(w, w) / np.outer(w, w).sum()
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + 1e-4) * (2 * cov + 9e-4) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4)))
    return float(np.mean(values))
