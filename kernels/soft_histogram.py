r"""Soft histogram: Triton kernels and their launchers, and the jitted helpers every histogram kernel shares.

Inputs are values in bin units, u = (z - lo)/L of shape (M, N) (circular values wrapped into [0, K)), and
optional per-pixel weights w (M, N). With S_m = sum_x w_mx,

.. math::
    p_{mk} = \frac{1}{S_m} \sum_x w_{mx}\, m_k(u_{mx}), \qquad
    \frac{\partial L}{\partial u_{mx}} = \frac{w_{mx}}{S_m} \sum_j g_{m,\mathrm{fold}(j)}\, \pi_j'(u_{mx}),\qquad
    \frac{\partial L}{\partial w_{mx}} = \frac{1}{S_m}\Big(\sum_j g_{m,\mathrm{fold}(j)}\, \pi_j(u_{mx})
        - \langle g_m, p_m \rangle\Big)

where j runs over the pixel's window of virtual bins (2R+1 of them; R from the bandwidth and dtype, see
``huenet.binning.Binning.window``).

Forward, two reductions across programs:

* atomic (default): programs over (row, pixel block); each evaluates its pixels' windows, one sigmoid pair
  per virtual bin, and adds them into the row's bins with relaxed atomics;
* deterministic (``torch.are_deterministic_algorithms_enabled()``): programs over (row, bin tile, pixel
  split) evaluate the exact dense memberships of their tile, images included only where a pixel is near a
  boundary, and write per-split partials that a fixed-order sum reduces.

Backward: programs over (row, pixel block) gather dL/dp over each pixel's window; no atomics.
"""
import inspect
import os

import torch
import triton
import triton.language as tl

# ---- Shared by every histogram kernel (the joint kernels import these): the sigmoid-difference kernel in bin
# units, pi_j(u) = sigmoid((u - j)/b) - sigmoid((u - j - 1)/b) for virtual bin j and bandwidth b in bins, and the
# fold of mirror (reflect) and periodic (circular) images onto real bins (huenet.binning.Binning.fold_table).

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

# ---- The soft histogram.



_PIXEL_CONFIGS = [
    triton.Config({"BLOCK_N": 256}, num_warps=4),
    triton.Config({"BLOCK_N": 512}, num_warps=4),
    triton.Config({"BLOCK_N": 1024}, num_warps=8),
    triton.Config({"BLOCK_N": 128}, num_warps=2),
]


_TILE_CONFIGS = [
    triton.Config({"BLOCK_N": 64, "BLOCK_K": 64}, num_warps=4),
    triton.Config({"BLOCK_N": 32, "BLOCK_K": 128}, num_warps=4),
    triton.Config({"BLOCK_N": 128, "BLOCK_K": 32}, num_warps=4),
    triton.Config({"BLOCK_N": 64, "BLOCK_K": 128}, num_warps=8),
]


@autotune(_PIXEL_CONFIGS, key=["K", "N_BUCKET", "WIN", "BOUNDARY", "HAS_W"],
                 reset_to_zero=["out_ptr"])
@triton.jit
def _forward_atomic_kernel(u_ptr, w_ptr, out_ptr, N, K, inv_bw, FIRST, LAST, WIN, N_BUCKET,
                           RADIUS: tl.constexpr, BOUNDARY: tl.constexpr, HAS_W: tl.constexpr,
                           BLOCK_N: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    u, w, inside = load_pixels(u_ptr, w_ptr, row, offs, N, HAS_W)
    base = tl.minimum(tl.maximum(tl.floor(u).to(tl.int32) - RADIUS, FIRST), LAST)
    for r in range(WIN):
        j = base + r
        value, _ = membership(u, j.to(u.dtype), inv_bw)
        real, valid = fold(j, K, BOUNDARY)
        tl.atomic_add(out_ptr + row * K + real, value * w, mask=inside & valid, sem="relaxed")


@triton.jit
def dense_memberships(u, k, K, inv_bw, RADIUS: tl.constexpr, BOUNDARY: tl.constexpr, BLOCK_K: tl.constexpr):
    """Exact memberships (BLOCK_N, BLOCK_K) of values u in real bins k, mirror or periodic images included.

    An image adds nothing above the truncation tolerance unless some value lies within RADIUS + 1 bins of the
    boundary it mirrors and the tile holds bins that close to the matching end, so it is evaluated only then.
    """
    uu = u[:, None]
    kk = k[None, :].to(u.dtype)
    total, _ = membership(uu, kk, inv_bw)
    if BOUNDARY != NONE:
        k_first = tl.min(k, axis=0)
        near_lo = tl.min(u, axis=0) < RADIUS + 1.0
        near_hi = tl.max(u, axis=0) > K - RADIUS - 1.0
        low_tile = k_first <= RADIUS + 1
        high_tile = k_first + BLOCK_K >= K - RADIUS - 1
        if BOUNDARY == REFLECT:
            if near_lo & low_tile:
                image, _ = membership(uu, -kk - 1.0, inv_bw)
                total += image
            if near_hi & high_tile:
                image, _ = membership(uu, 2.0 * K - 1.0 - kk, inv_bw)
                total += image
        else:
            if near_lo & high_tile:
                image, _ = membership(uu, kk - K, inv_bw)
                total += image
            if near_hi & low_tile:
                image, _ = membership(uu, kk + K, inv_bw)
                total += image
    return tl.where(k[None, :] < K, total, 0.0)


@autotune(_TILE_CONFIGS, key=["K", "N_BUCKET", "BOUNDARY", "HAS_W"])
@triton.jit
def _forward_partials_kernel(u_ptr, w_ptr, partial_ptr, M, N, K, inv_bw, N_BUCKET,
                             RADIUS: tl.constexpr, BOUNDARY: tl.constexpr, HAS_W: tl.constexpr,
                             BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    row = tl.program_id(0)
    k = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    split = tl.program_id(2)
    splits = tl.num_programs(2)
    acc = tl.zeros((BLOCK_K,), dtype=tl.float32 if partial_ptr.dtype.element_ty != tl.float64 else tl.float64)
    for start in range(split * BLOCK_N, N, splits * BLOCK_N):
        u, w, _ = load_pixels(u_ptr, w_ptr, row, start + tl.arange(0, BLOCK_N), N, HAS_W)
        m = dense_memberships(u, k, K, inv_bw, RADIUS, BOUNDARY, BLOCK_K)
        acc += tl.sum(m * w[:, None], axis=0)
    tl.store(partial_ptr + (split * M + row) * K + k, acc, mask=k < K)


@autotune(_PIXEL_CONFIGS, key=["K", "N_BUCKET", "WIN", "BOUNDARY", "HAS_W"])
@triton.jit
def _backward_kernel(u_ptr, w_ptr, g_ptr, gp_ptr, grad_u_ptr, grad_w_ptr, N, K, inv_bw, FIRST, LAST, WIN,
                     N_BUCKET, RADIUS: tl.constexpr, BOUNDARY: tl.constexpr, HAS_W: tl.constexpr,
                     NEED_U: tl.constexpr, NEED_W: tl.constexpr, BLOCK_N: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    inside = offs < N
    u = sanitize(tl.load(u_ptr + row * N + offs, mask=inside, other=0.0))
    base = tl.minimum(tl.maximum(tl.floor(u).to(tl.int32) - RADIUS, FIRST), LAST)
    grad_u = tl.zeros_like(u)
    grad_w = tl.zeros_like(u)
    for r in range(WIN):
        j = base + r
        value, slope = membership(u, j.to(u.dtype), inv_bw)
        real, valid = fold(j, K, BOUNDARY)
        g = tl.load(g_ptr + row * K + real, mask=inside & valid, other=0.0)
        grad_u += g * slope
        grad_w += g * value
    if NEED_U:
        if HAS_W:
            grad_u *= tl.load(w_ptr + row * N + offs, mask=inside, other=0.0)
        tl.store(grad_u_ptr + row * N + offs, grad_u, mask=inside)
    if NEED_W:
        tl.store(grad_w_ptr + row * N + offs, grad_w - tl.load(gp_ptr + row), mask=inside)


def n_bucket(n: int) -> int:
    """Autotuning key for a pixel count: its power-of-two bucket, so sizes in one octave share a tuning."""
    return 1 << max(0, (n - 1).bit_length())


def partial_splits(rows: int, n: int, tiles: int) -> int:
    """Pixel splits for the partials kernels: enough programs to fill a large GPU, each with >= 2048 pixels."""
    return max(1, min(n // 2048, 2048 // max(1, rows * tiles)))


def forward(u, w, bins, bandwidth, boundary, window):
    """Soft histogram (M, K) of values u (M, N) in bin units with optional weights w (M, N)."""
    rows, n = u.shape
    code = BOUNDARY_CODES[boundary]
    has_w = w is not None
    w_arg = w if has_w else u
    if torch.are_deterministic_algorithms_enabled():
        splits = partial_splits(rows, n, triton.cdiv(bins, 32))
        partials = u.new_empty(splits, rows, bins)
        grid = lambda meta: (rows, triton.cdiv(bins, meta["BLOCK_K"]), splits)  # noqa: E731
        _forward_partials_kernel[grid](u, w_arg, partials, rows, n, bins, 1.0 / bandwidth, n_bucket(n),
                                       RADIUS=window.radius, BOUNDARY=code, HAS_W=has_w)
        hist = partials.sum(0)
    else:
        hist = u.new_zeros(rows, bins)
        grid = lambda meta: (rows, triton.cdiv(n, meta["BLOCK_N"]))  # noqa: E731
        _forward_atomic_kernel[grid](u, w_arg, hist, n, bins, 1.0 / bandwidth, window.first, window.last,
                                     window.size, n_bucket(n), RADIUS=window.radius, BOUNDARY=code, HAS_W=has_w)
    return hist / weight_sums(u, w)[:, None]


def backward(g, u, w, p, bins, bandwidth, boundary, window, need_u, need_w):
    """(dL/du, dL/dw), each (M, N) or None, for the output gradient g (M, K) and the forward's output p."""
    rows, n = u.shape
    total = weight_sums(u, w)[:, None]
    g_scaled = (g / total).contiguous()
    gp = ((g * p).sum(1, keepdim=True) / total).contiguous()
    grad_u = torch.empty_like(u) if need_u else None
    grad_w = torch.empty_like(u) if need_w else None
    grid = lambda meta: (rows, triton.cdiv(n, meta["BLOCK_N"]))  # noqa: E731
    _backward_kernel[grid](u, w if w is not None else u, g_scaled, gp, grad_u if need_u else u,
                           grad_w if need_w else u, n, bins, 1.0 / bandwidth, window.first, window.last,
                           window.size, n_bucket(n), RADIUS=window.radius, BOUNDARY=BOUNDARY_CODES[boundary],
                           HAS_W=w is not None, NEED_U=need_u, NEED_W=need_w)
    return grad_u, grad_w
