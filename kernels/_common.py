"""Jitted helpers shared by the histogram kernels: the sigmoid-difference kernel and the boundary fold.

Values arrive in bin units u = (z - lo) / L (circular values already wrapped into [0, K)), so bin k spans
[k, k+1) and the bare kernel of virtual bin j is pi_j(u) = sigmoid((u - j)/b) - sigmoid((u - j - 1)/b) with b
the bandwidth in bins. Mirror (reflect) and periodic (circular) images fold into real bins by ``fold``; see
``huenet.binning.Binning.fold_table`` for why one window of the bare kernel is the whole membership.
"""
import inspect
import os

import torch
import triton
import triton.language as tl

# Boundary modes as kernel constants; jitted code may only read globals that are tl.constexpr.
BOUNDARY_CODES = {"reflect": 0, "circular": 1, "none": 2}
REFLECT = tl.constexpr(BOUNDARY_CODES["reflect"])
CIRCULAR = tl.constexpr(BOUNDARY_CODES["circular"])
NONE = tl.constexpr(BOUNDARY_CODES["none"])


@triton.jit
def sanitize(u):
    """Clamp u to +-2^24 bins, where every membership of a real bin is 0 at any sane bandwidth, so that the
    int32 window maths cannot overflow; NaN becomes 0, and the caller turns such rows into NaN."""
    u = tl.minimum(tl.maximum(u, -16777216.0), 16777216.0)
    return tl.where(u == u, u, 0.0)


@triton.jit
def load_pixels(u_ptr, w_ptr, row, offs, N, HAS_W: tl.constexpr):
    """Values (sanitized) and weights of pixels ``offs`` of a row, and which of them exist; missing pixels
    and unweighted calls get weight 0 and 1."""
    inside = offs < N
    u = sanitize(tl.load(u_ptr + row * N + offs, mask=inside, other=0.0))
    if HAS_W:
        w = tl.load(w_ptr + row * N + offs, mask=inside, other=0.0)
    else:
        w = inside.to(u.dtype)
    return u, w, inside


@triton.jit
def membership(u, j, inv_bw):
    """pi_j(u) for virtual bin j (any integer, as a float of u's dtype) and its derivative d pi_j / du.

    The kernel is symmetric about the bin centre, so with d = |u - j - 1/2| / b, E = exp(-d) and
    G = exp(-1/(2b)), both in (0, 1],

        pi = sigmoid(d + 1/(2b)) - sigmoid(d - 1/(2b)) = E (1 - G^2) / ((1 + E G)(G + E)),
        d pi / dd = -E G (1 - G^2)(1 - E^2) / ((1 + E G)(G + E))^2,

    one exponential and one reciprocal per bin instead of two sigmoids (half the special-function work),
    without overflow at any bandwidth and without the cancellation of a sigmoid difference in the tails.
    The casts keep the arithmetic in u's dtype: a Python-float argument is fp64 under the interpreter but
    fp32 on a GPU.
    """
    offset = ((u - j - 0.5) * inv_bw).to(u.dtype)
    e = tl.exp(-tl.abs(offset))
    g = tl.exp(tl.zeros_like(offset) - (0.5 * inv_bw)).to(u.dtype)
    one_minus_g2 = 1.0 - g * g
    r = 1.0 / ((1.0 + e * g) * (g + e))
    value = e * one_minus_g2 * r
    slope = -e * g * one_minus_g2 * (1.0 - e * e) * r * r
    return value, (tl.where(offset < 0, -slope, slope) * inv_bw).to(u.dtype)


@triton.jit
def fold(j, K, BOUNDARY: tl.constexpr):
    """Real bin of virtual bin j (int32) and whether it has one: reflect mirrors -k-1 and 2K-1-k onto k,
    circular shifts by K, none keeps only [0, K)."""
    if BOUNDARY == REFLECT:
        real = tl.where(j < 0, -j - 1, tl.where(j >= K, 2 * K - 1 - j, j))
        valid = (j >= -K) & (j < 2 * K)
    elif BOUNDARY == CIRCULAR:
        real = tl.where(j < 0, j + K, tl.where(j >= K, j - K, j))
        valid = (j >= -K) & (j < 2 * K)
    else:
        real = j
        valid = (j >= 0) & (j < K)
    return tl.where(valid, real, 0), valid


def autotune(configs, key, **kwargs):
    """``triton.autotune`` with the tuning results cached on disk per GPU where the Triton version can
    (``cache_results``, newer than 3.6), and a single config under the interpreter, which fails on several."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        configs = configs[:1]
    if "cache_results" in inspect.signature(triton.autotune).parameters:
        kwargs["cache_results"] = True
    return triton.autotune(configs=configs, key=key, **kwargs)


def weight_sums(values: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """S_m = sum_x w_mx of each row (M,), or the pixel count N for unweighted rows."""
    if w is not None:
        return w.sum(1)
    return torch.full((values.shape[0],), float(values.shape[1]), dtype=values.dtype, device=values.device)
