r"""Soft histogram: Triton kernels and their autograd wrapper.

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
import torch
import triton
import triton.language as tl

from ._common import (BOUNDARY_CODES, NONE, REFLECT, autotune, fold, load_pixels, membership, sanitize,
                      weight_sums)


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


class SoftHistogram(torch.autograd.Function):
    """Autograd wrapper: ``SoftHistogram.apply(u, w, bins, bandwidth, boundary, window)`` -> (M, K).

    ``u`` (M, N) in bin units, contiguous, on a CUDA device (or CPU under TRITON_INTERPRET=1); ``w`` (M, N) or
    None; ``window`` an object with ``radius``, ``size``, ``first``, ``last`` (``huenet.binning.Window``).
    """

    @staticmethod
    def forward(ctx, u, w, bins, bandwidth, boundary, window):
        p = forward(u, w, bins, bandwidth, boundary, window)
        ctx.save_for_backward(u, w, p)
        ctx.args = (bins, bandwidth, boundary, window)
        return p

    @staticmethod
    def backward(ctx, g):
        u, w, p = ctx.saved_tensors
        grad_u, grad_w = backward(g, u, w, p, *ctx.args, *ctx.needs_input_grad[:2])
        return grad_u, grad_w, None, None, None, None
