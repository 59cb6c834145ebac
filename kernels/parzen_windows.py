r"""Parzen window shapes on explicit bin centres: the jitted window functions the Parzen kernels share.

A value x lands in bin k with weight :math:`v(d)`, :math:`d = x - c_k`, for bin centres :math:`c_k` (increasing,
from a table in memory, so that the caller reproduces another library's rounding of them) and a scale s:

* ``gaussian``: :math:`v = e^{-s d^2}`;
* ``inverse-quadratic``: :math:`v = 1 / (1 + s d^2)`, unbounded support: every bin is evaluated, no tail is
  truncated;
* ``b-spline`` (cubic), with :math:`a = s|d|`: :math:`(4 - 6a^2 + 3a^3)/6` for :math:`a < 1`,
  :math:`(2 - a)^3/6` for :math:`1 \le a < 2`, 0 beyond;
* ``box`` (order-0 B-spline): 1 for :math:`s|d| < 1/2`, 1/2 at :math:`s|d| = 1/2`, 0 beyond; zero derivative.

A *normalised* window divides by :math:`Z(x) = \sum_{k<K} v(x - c_k)`, so each value's weights sum to one:

.. math::
    m_k = v_k / Z,\qquad \frac{\partial m_k}{\partial x} = \frac{v'_k}{Z} - m_k \frac{\sum_j v'_j}{Z}.

For the Gaussian the exponent is shifted by :math:`\min_k s d_k^2` before the exponential, which cancels in
:math:`v_k / Z` and keeps the nearest bin at weight 1: no 0/0 at any width.
"""

import triton
import triton.language as tl

#: Shape codes, as kernel constants (jitted code may only read globals that are tl.constexpr).
SHAPES = {"gaussian": 0, "inverse-quadratic": 1, "b-spline": 2, "box": 3}
GAUSSIAN = tl.constexpr(SHAPES["gaussian"])
INVERSE_QUADRATIC = tl.constexpr(SHAPES["inverse-quadratic"])
BSPLINE = tl.constexpr(SHAPES["b-spline"])
BOX = tl.constexpr(SHAPES["box"])
#: Support half-widths, in units of 1/s, of the shapes that vanish exactly beyond them.
SUPPORT = {"b-spline": 2.0, "box": 0.5}


@triton.jit
def window(d, s, shift, SHAPE: tl.constexpr):
    """(v, dv/dd) of shape SHAPE at offsets d with scale s; ``shift`` (0 unless normalised) is subtracted from
    the Gaussian's exponent."""
    if SHAPE == GAUSSIAN:
        v = tl.exp(shift - s * d * d)
        slope = -2.0 * s * d * v
    elif SHAPE == INVERSE_QUADRATIC:
        v = 1.0 / (1.0 + s * d * d)
        slope = -2.0 * s * d * v * v
    elif SHAPE == BSPLINE:
        a = tl.abs(d) * s
        outer = tl.maximum(2.0 - a, 0.0)
        v = tl.where(a < 1.0, (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0, outer * outer * outer / 6.0)
        da = tl.where(a < 1.0, 1.5 * a * a - 2.0 * a, -0.5 * outer * outer)
        slope = tl.where(d < 0, -da, da) * s
    else:
        tl.static_assert(SHAPE == BOX, "unknown Parzen window shape")
        a = tl.abs(d) * s
        v = tl.where(a < 0.5, 1.0, tl.where(a == 0.5, 0.5, 0.0)).to(d.dtype)
        slope = tl.zeros_like(d)
    return v, slope


@triton.jit
def support(s, SHAPE: tl.constexpr):
    """Half-width beyond which the window is exactly 0, or -1 for the shapes of unbounded support."""
    if SHAPE == BSPLINE:
        return 2.0 / s
    elif SHAPE == BOX:
        return 0.5 / s
    else:
        return -1.0


@triton.jit
def normalizer(x, centres_ptr, K, s, SHAPE: tl.constexpr, NORM: tl.constexpr):
    """Per-value (shift, 1/Z, sum_j v'_j / Z) of a normalised window, from every one of the K bins; (0, 1, 0)
    when not normalised."""
    shift = tl.zeros_like(x)
    inv_z = tl.full(x.shape, 1.0, x.dtype)
    mean_slope = tl.zeros_like(x)
    if NORM:
        if SHAPE == GAUSSIAN:
            nearest = tl.full(x.shape, float("inf"), x.dtype)
            for k in range(K):
                d = x - tl.load(centres_ptr + k)
                nearest = tl.minimum(nearest, s * d * d)
            shift = nearest
        z = tl.zeros_like(x)
        for k in range(K):
            v, slope = window(x - tl.load(centres_ptr + k), s, shift, SHAPE)
            z += v
            mean_slope += slope
        inv_z = 1.0 / z
        mean_slope = mean_slope * inv_z
    return shift, inv_z, mean_slope


@triton.jit
def tile(x, k, centres_ptr, K, s, shift, inv_z, mean_slope, SHAPE: tl.constexpr, NORM: tl.constexpr):
    """Weights (BLOCK_N, BLOCK_K) of values x in bins k and their derivatives in x; 0 for bins k >= K."""
    inside = k < K
    centre = tl.load(centres_ptr + k, mask=inside, other=0.0)
    v, slope = window(x[:, None] - centre[None, :], s, shift[:, None], SHAPE)
    if NORM:
        v = v * inv_z[:, None]
        slope = slope * inv_z[:, None] - v * mean_slope[:, None]
    return tl.where(inside[None, :], v, 0.0), tl.where(inside[None, :], slope, 0.0)


@triton.jit
def weights(x, k, centres_ptr, K, s, SHAPE: tl.constexpr, NORM: tl.constexpr):
    """Weights (BLOCK_N, BLOCK_K) of values x in bins k, as ``tile`` gives them, for a pass that needs no
    derivatives."""
    shift, inv_z, mean_slope = normalizer(x, centres_ptr, K, s, SHAPE, NORM)
    v, _ = tile(x, k, centres_ptr, K, s, shift, inv_z, mean_slope, SHAPE, NORM)
    return v


@triton.jit
def reaches(x, centres_ptr, k_first, BLOCK_K: tl.constexpr, K, s, SHAPE: tl.constexpr):
    """Whether any value of the block has a nonzero weight in bins [k_first, k_first + BLOCK_K): always for
    shapes of unbounded support, else from the block's min and max and the tile's first and last centres."""
    half = support(s, SHAPE)
    lo = tl.load(centres_ptr + k_first)
    hi = tl.load(centres_ptr + tl.minimum(k_first + BLOCK_K, K) - 1)
    return (half < 0) | ((tl.max(x, axis=0) + half >= lo) & (tl.min(x, axis=0) - half <= hi))
