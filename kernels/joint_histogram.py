r"""Joint soft histogram: Triton kernels and their launchers.

For values in bin units x, y (M, N) and optional weights w (M, N), with S_m = sum_x w_mx,

.. math::
    J_m = \frac{1}{S_m} A_x^\top \operatorname{diag}(w) A_y,\qquad
    \frac{\partial L}{\partial x_n} = w_n \sum_{j_1} \pi'_{j_1}(x_n) \sum_{j_2} G_{j_1 j_2}\, \pi_{j_2}(y_n),\quad
    \frac{\partial L}{\partial w_n} = \sum_{j_1 j_2} \pi_{j_1}(x_n) G_{j_1 j_2} \pi_{j_2}(y_n) - \langle g, J\rangle/S

with A the (N, K) membership matrices, G = g/S gathered at the folded bins of each pixel's two windows, and
dL/dy symmetric to dL/dx.

Forward: programs over (row, K1 tile × K2 span, pixel split) generate membership tiles of A_x and A_y on the
fly, images included only near a boundary, and accumulate A_xᵀ diag(w) A_y with ``tl.dot``. The launcher sorts
each row by x (J is a sum over pixels, so their order is free), so a pixel block spans few bins of x and reaches
about one K1 tile; a block that cannot reach the program's tiles is skipped after a min/max of x (then y).
Nothing of size N × K reaches global memory; per-split partials (splits × M × K × K) are summed in a fixed
order, so the result is deterministic.

Backward: programs over (pixel block, row) gather G over each pixel's (2R+1)² window pair; no atomics.

``tl.dot`` precision is an argument: "ieee" (exact fp32 FMA), "tf32x3" (default: three TF32 products, within
about 2× of fp32's error) or "tf32" (fastest; J about 1e-3 off, MI up to 2e-3 nats, emulated in
``bench/dot_precision.py``). fp64 inputs use fp64 throughout.
"""

import torch
import triton
import triton.language as tl

from .common import (
    autotune,
    launch_pixels,
    load_pixels,
    load_values,
    load_weights,
    partial_splits,
    pixel_block,
    weight_sums,
)
from .joint_tiles import input_precision, launch_partials, sorted_by_x, store_partial, tile_pair
from .soft_histogram import (
    NONE,
    dense_memberships,
    fold,
    image_flags,
    load_constants,
    membership,
    window_args,
    window_start,
)

DOT_PRECISIONS = ("ieee", "tf32x3", "tf32")


# A program covers a K1 tile × a K2 span: each pixel's y memberships are generated cdiv(K, BLOCK_K1) times and
# its x memberships cdiv(K, BLOCK_K2) times, K²(1/BLOCK_K1 + 1/BLOCK_K2) evaluations per pixel when nothing is
# skipped (2,048 at 64 × 64 tiles and K = 256, 1,536 at 64 × 128), and with x sorted (the launcher) a block reaches
# about one K1 tile: 64 + 2 · 128 = 320. Larger tiles spill (64 × 256 at 8 warps: 1 KB in ieee, 255 registers in
# tf32x3): the membership tiles are generated in registers next to the accumulator (bench/kernel_report.py).
_DOT_CONFIGS = [
    triton.Config({"BLOCK_N": 16, "BLOCK_K1": 64, "BLOCK_K2": 128}, num_warps=8),
    triton.Config({"BLOCK_N": 32, "BLOCK_K1": 64, "BLOCK_K2": 64}, num_warps=8),
    triton.Config({"BLOCK_N": 32, "BLOCK_K1": 32, "BLOCK_K2": 32}, num_warps=4),
]

#: The launcher sorts each row by x above this many bins (more than one K1 tile of every config), so that a
#: pixel block spans few bins of x and reaches one K1 tile instead of every one (the tile skip does the rest).
SORT_ABOVE_BINS = 32


_WINDOW_CONFIGS = [
    triton.Config({"BLOCK_N": 64}, num_warps=4),
    triton.Config({"BLOCK_N": 128}, num_warps=4),
    triton.Config({"BLOCK_N": 32}, num_warps=2),
]


@triton.jit
def _reaches(u, k_first, BLOCK_K: tl.constexpr, K, RADIUS: tl.constexpr, BOUNDARY: tl.constexpr):
    """Whether any value of the block has a membership above tolerance in bins [k_first, k_first+BLOCK_K),
    directly or through the one image (``image_flags``) that lands in the tile: a value near one end forces
    only the tiles at the end its image reaches, not every tile."""
    lo = tl.min(u, axis=0)
    hi = tl.max(u, axis=0)
    reach = (hi + RADIUS + 1.0 >= k_first) & (lo - RADIUS - 1.0 <= k_first + BLOCK_K)
    if BOUNDARY != NONE:
        low_image, high_image = image_flags(lo, hi, k_first, K, RADIUS, BOUNDARY, BLOCK_K)
        reach = reach | low_image | high_image
    return reach


@autotune(_DOT_CONFIGS, key=["K", "N_BUCKET", "BOUNDARY", "PRECISION"])
@triton.jit
def _forward_kernel(
    x_ptr,
    y_ptr,
    w_ptr,
    partial_ptr,
    consts_ptr,
    M,
    N,
    K,
    N_BUCKET,
    RADIUS: tl.constexpr,
    BOUNDARY: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K1: tl.constexpr,
    BLOCK_K2: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    inv_bw, one_minus_g2 = load_constants(consts_ptr)
    k1_first, k2_first = tile_pair(K, BLOCK_K1, BLOCK_K2)
    k1 = k1_first + tl.arange(0, BLOCK_K1)
    k2 = k2_first + tl.arange(0, BLOCK_K2)
    acc_type: tl.constexpr = tl.float64 if partial_ptr.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_K1, BLOCK_K2), dtype=acc_type)
    for start in range(tl.program_id(2) * BLOCK_N, N, tl.num_programs(2) * BLOCK_N):
        offs = start + tl.arange(0, BLOCK_N)
        x, w, _ = load_pixels(x_ptr, w_ptr, row, offs, N)
        # x first: with x sorted (the launcher), most blocks miss this K1 tile and never load y.
        if _reaches(x, k1_first, BLOCK_K1, K, RADIUS, BOUNDARY):
            y = load_values(y_ptr, row, offs, N)
            if _reaches(y, k2_first, BLOCK_K2, K, RADIUS, BOUNDARY):
                a = dense_memberships(x, k1, K, inv_bw, one_minus_g2, RADIUS, BOUNDARY, BLOCK_K1) * w[:, None]
                b = dense_memberships(y, k2, K, inv_bw, one_minus_g2, RADIUS, BOUNDARY, BLOCK_K2)
                acc = tl.dot(tl.trans(a), b, acc, input_precision=PRECISION, out_dtype=acc_type)
    store_partial(partial_ptr, acc, row, k1, k2, M, K)


@autotune(_WINDOW_CONFIGS, key=["K", "N_BUCKET", "WIN", "BOUNDARY"])
@triton.jit
def _backward_kernel(
    x_ptr,
    y_ptr,
    w_ptr,
    g_ptr,
    gj_ptr,
    grad_x_ptr,
    grad_y_ptr,
    grad_w_ptr,
    consts_ptr,
    N,
    K,
    FIRST,
    LAST,
    WIN,
    N_BUCKET,
    RADIUS: tl.constexpr,
    BOUNDARY: tl.constexpr,
    NEED_X: tl.constexpr,
    NEED_Y: tl.constexpr,
    NEED_W: tl.constexpr,
    WIN_TILE: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    row, offs = pixel_block(BLOCK_N)
    inv_bw, one_minus_g2 = load_constants(consts_ptr)
    inside = offs < N
    x = load_values(x_ptr, row, offs, N)
    y = load_values(y_ptr, row, offs, N)
    base_x = window_start(x, FIRST, LAST, RADIUS)
    base_y = window_start(y, FIRST, LAST, RADIUS)
    g_row = g_ptr + row * K * K
    grad_x = tl.zeros_like(x)
    grad_y = tl.zeros_like(x)
    grad_w = tl.zeros_like(x)
    # The y window is walked in tiles of WIN_TILE bins (one tile at bandwidth 0.4), the x window bin by bin.
    for c in range(0, WIN, WIN_TILE):
        r2 = c + tl.arange(0, WIN_TILE)
        j2 = base_y[:, None] + r2[None, :]
        real2, valid2 = fold(j2, K, BOUNDARY)
        valid2 = valid2 & (r2[None, :] < WIN) & inside[:, None]
        b, db = membership(y[:, None], j2.to(y.dtype), inv_bw, one_minus_g2)
        b = tl.where(valid2, b, 0.0)
        g_dot_a = tl.zeros_like(b)  # sum_j1 a_j1 G[j1, j2] for this tile's j2
        for r1 in range(WIN):
            j1 = base_x + r1
            real1, valid1 = fold(j1, K, BOUNDARY)
            a, da = membership(x, j1.to(x.dtype), inv_bw, one_minus_g2)
            a = tl.where(valid1, a, 0.0)
            g = tl.load(g_row + real1[:, None] * K + real2, mask=valid1[:, None] & valid2, other=0.0)
            g_dot_b = tl.sum(g * b, axis=1)
            grad_x += da * g_dot_b
            grad_w += a * g_dot_b
            g_dot_a += a[:, None] * g
        grad_y += tl.sum(g_dot_a * db, axis=1)
    w = load_weights(w_ptr, row, offs, N, x)
    if NEED_X:
        tl.store(grad_x_ptr + row * N + offs, grad_x * w, mask=inside)
    if NEED_Y:
        tl.store(grad_y_ptr + row * N + offs, grad_y * w, mask=inside)
    if NEED_W:
        tl.store(grad_w_ptr + row * N + offs, grad_w - tl.load(gj_ptr + row), mask=inside)


def forward(x, y, w, bins, bandwidth, boundary, window, precision):
    """Joint histogram J (M, K, K) of values x, y (M, N) in bin units with optional weights w (M, N)."""
    if bins > SORT_ABOVE_BINS:
        x, y, w = sorted_by_x(x, y, w)
    rows, n = x.shape
    splits = partial_splits(rows, n, triton.cdiv(bins, 64) ** 2)
    joint = launch_partials(
        _forward_kernel,
        "joint_histogram",
        splits,
        x,
        y,
        w,
        **window_args(x, bins, bandwidth, boundary, window, placement=False),
        PRECISION=input_precision(precision, x),
    )
    return joint / weight_sums(x, w, 2)


def backward(g, x, y, w, joint, bins, bandwidth, boundary, window, need_x, need_y, need_w):
    """(dL/dx, dL/dy, dL/dw), each (M, N) or None, for the output gradient g (M, K, K) and the output J."""
    g_scaled = (g / weight_sums(x, w, 2)).contiguous()
    gj = ((g * joint).sum((1, 2)) / weight_sums(x, w, 0)).contiguous()
    grads = [torch.empty_like(x) if need else None for need in (need_x, need_y, need_w)]
    launch_pixels(
        _backward_kernel,
        "joint_histogram backward",
        x,
        y,
        w,
        g_scaled,
        gj,
        *[t if t is not None else x for t in grads],
        **window_args(x, bins, bandwidth, boundary, window),
        NEED_X=need_x,
        NEED_Y=need_y,
        NEED_W=need_w,
        WIN_TILE=min(16, triton.next_power_of_2(window.size)),
    )
    return tuple(grads)
