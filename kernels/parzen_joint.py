r"""Weighted joint Parzen histograms on explicit bin centres: Triton kernels and their launchers.

For values x, y (M, N), optional weights w (M, N) and the window shapes of ``parzen_windows`` (one per axis),
each row m gets the raw, unnormalised sum

.. math::
    T_m = A_x^\top \operatorname{diag}(w) A_y,\qquad
    \frac{\partial L}{\partial x_n} = w_n \sum_{k_1} A'_{x,n k_1} (A_y G^\top)_{n k_1},\quad
    \frac{\partial L}{\partial y_n} = w_n \sum_{k_2} A'_{y,n k_2} (A_x G)_{n k_2},\quad
    \frac{\partial L}{\partial w_n} = \sum_{k_1} A_{x,n k_1} (A_y G^\top)_{n k_1}

with :math:`A` the (N, K) window weights, :math:`A'` their derivatives and G = dL/dT. Callers normalise T
(MI by the weight sum, the RGB-uv histogram by its total over channels).

Forward: programs over (row, K1 tile × K2 tile, pixel split) generate weight tiles of A_x and A_y on the fly and
accumulate A_xᵀ diag(w) A_y with ``tl.dot``; per-split partials (splits × M × K × K) are summed in a fixed
order, so the result is deterministic. For compactly supported x windows beyond one tile the launcher sorts
each row by x (T is a sum over pixels, so their order is free) and blocks that cannot reach a tile skip it.
Windows of unbounded support (Gaussian, inverse quadratic) are evaluated at every bin: nothing is truncated.

Backward: programs over (pixel block, row) rebuild the weight tiles and contract them with G tiles by
``tl.dot``, K1 tiles outer for x and w, K2 tiles outer for y; no atomics, and nothing N × K is stored.

fp64 inputs compute in fp64 with "ieee" dots; fp32 ones take the dot precision the caller passes.
"""

import torch
import triton
import triton.language as tl

from .common import autotune, launch_pixels, load_pixels, load_values, partial_splits, pixel_block
from .joint_tiles import input_precision, launch_partials, sorted_by_x, store_partial, tile_pair
from .parzen_windows import SHAPES, SUPPORT, normalizer, reaches, tile, weights

# Tiles of at least 16 (tl.dot's minimum) on every side; K is usually 16-64 for these losses, so 32-wide bin tiles
# cover it in one or two.
_FORWARD_CONFIGS = [
    triton.Config({"BLOCK_N": 32, "BLOCK_K1": 32, "BLOCK_K2": 32}, num_warps=4),
    triton.Config({"BLOCK_N": 64, "BLOCK_K1": 64, "BLOCK_K2": 64}, num_warps=8),
    triton.Config({"BLOCK_N": 16, "BLOCK_K1": 16, "BLOCK_K2": 64}, num_warps=4),
]

_BACKWARD_CONFIGS = [
    triton.Config({"BLOCK_N": 32, "BLOCK_K": 32}, num_warps=4),
    triton.Config({"BLOCK_N": 64, "BLOCK_K": 64}, num_warps=8),
    triton.Config({"BLOCK_N": 16, "BLOCK_K": 16}, num_warps=2),
]

#: Above this many bins (more than one K1 tile of the smallest config) a compactly supported x is sorted.
SORT_ABOVE_BINS = 32


@autotune(
    _FORWARD_CONFIGS,
    key=["K", "N_BUCKET", "SHAPE_X", "NORM_X", "SHAPE_Y", "NORM_Y", "PRECISION"],
)
@triton.jit
def _forward_kernel(
    x_ptr,
    y_ptr,
    w_ptr,
    cx_ptr,
    cy_ptr,
    scales_ptr,
    partial_ptr,
    M,
    N,
    K,
    N_BUCKET,
    SHAPE_X: tl.constexpr,
    NORM_X: tl.constexpr,
    SHAPE_Y: tl.constexpr,
    NORM_Y: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K1: tl.constexpr,
    BLOCK_K2: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    k1_first, k2_first = tile_pair(K, BLOCK_K1, BLOCK_K2)
    k1 = k1_first + tl.arange(0, BLOCK_K1)
    k2 = k2_first + tl.arange(0, BLOCK_K2)
    sx = tl.load(scales_ptr)
    sy = tl.load(scales_ptr + 1)
    acc_type: tl.constexpr = tl.float64 if partial_ptr.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_K1, BLOCK_K2), dtype=acc_type)
    for start in range(tl.program_id(2) * BLOCK_N, N, tl.num_programs(2) * BLOCK_N):
        offs = start + tl.arange(0, BLOCK_N)
        x, w, _ = load_pixels(x_ptr, w_ptr, row, offs, N)
        if reaches(x, cx_ptr, k1_first, BLOCK_K1, K, sx, SHAPE_X):
            y = load_values(y_ptr, row, offs, N)
            if reaches(y, cy_ptr, k2_first, BLOCK_K2, K, sy, SHAPE_Y):
                a = weights(x, k1, cx_ptr, K, sx, SHAPE_X, NORM_X)
                b = weights(y, k2, cy_ptr, K, sy, SHAPE_Y, NORM_Y)
                # w is 0 for missing pixels, which therefore add nothing.
                a = (a * w[:, None]).to(acc_type)
                acc = tl.dot(tl.trans(a), b.to(acc_type), acc, input_precision=PRECISION, out_dtype=acc_type)
    store_partial(partial_ptr, acc, row, k1, k2, M, K)


@autotune(_BACKWARD_CONFIGS, key=["K", "N_BUCKET", "SHAPE_X", "NORM_X", "SHAPE_Y", "NORM_Y", "PRECISION"])
@triton.jit
def _backward_kernel(
    x_ptr,
    y_ptr,
    w_ptr,
    cx_ptr,
    cy_ptr,
    scales_ptr,
    g_ptr,
    grad_x_ptr,
    grad_y_ptr,
    grad_w_ptr,
    N,
    K,
    N_BUCKET,
    SHAPE_X: tl.constexpr,
    NORM_X: tl.constexpr,
    SHAPE_Y: tl.constexpr,
    NORM_Y: tl.constexpr,
    NEED_X: tl.constexpr,
    NEED_Y: tl.constexpr,
    NEED_W: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    row, offs = pixel_block(BLOCK_N)
    x, w, inside = load_pixels(x_ptr, w_ptr, row, offs, N)
    y = load_values(y_ptr, row, offs, N)
    sx = tl.load(scales_ptr)
    sy = tl.load(scales_ptr + 1)
    nx = normalizer(x, cx_ptr, K, sx, SHAPE_X, NORM_X)
    ny = normalizer(y, cy_ptr, K, sy, SHAPE_Y, NORM_Y)
    g_row = g_ptr + row * K * K
    kt = tl.arange(0, BLOCK_K)
    grad_x = tl.zeros_like(x)
    grad_y = tl.zeros_like(x)
    grad_w = tl.zeros_like(x)
    if NEED_X or NEED_W:
        for k1_first in range(0, K, BLOCK_K):
            k1 = k1_first + kt
            gb = tl.zeros((BLOCK_N, BLOCK_K), dtype=x.dtype)  # (A_y Gᵀ)[n, k1]
            for k2_first in range(0, K, BLOCK_K):
                k2 = k2_first + kt
                b, _ = tile(y, k2, cy_ptr, K, sy, ny[0], ny[1], ny[2], SHAPE_Y, NORM_Y)
                g_t = tl.load(
                    g_row + k1[None, :] * K + k2[:, None], mask=(k1[None, :] < K) & (k2[:, None] < K), other=0.0
                )
                gb = tl.dot(b, g_t, gb, input_precision=PRECISION, out_dtype=x.dtype)
            a, da = tile(x, k1, cx_ptr, K, sx, nx[0], nx[1], nx[2], SHAPE_X, NORM_X)
            grad_x += tl.sum(da * gb, axis=1)
            grad_w += tl.sum(a * gb, axis=1)
    if NEED_Y:
        for k2_first in range(0, K, BLOCK_K):
            k2 = k2_first + kt
            ag = tl.zeros((BLOCK_N, BLOCK_K), dtype=x.dtype)  # (A_x G)[n, k2]
            for k1_first in range(0, K, BLOCK_K):
                k1 = k1_first + kt
                a, _ = tile(x, k1, cx_ptr, K, sx, nx[0], nx[1], nx[2], SHAPE_X, NORM_X)
                g = tl.load(
                    g_row + k1[:, None] * K + k2[None, :], mask=(k1[:, None] < K) & (k2[None, :] < K), other=0.0
                )
                ag = tl.dot(a, g, ag, input_precision=PRECISION, out_dtype=x.dtype)
            _, db = tile(y, k2, cy_ptr, K, sy, ny[0], ny[1], ny[2], SHAPE_Y, NORM_Y)
            grad_y += tl.sum(db * ag, axis=1)
    if NEED_X:
        tl.store(grad_x_ptr + row * N + offs, grad_x * w, mask=inside)
    if NEED_Y:
        tl.store(grad_y_ptr + row * N + offs, grad_y * w, mask=inside)
    if NEED_W:
        tl.store(grad_w_ptr + row * N + offs, grad_w, mask=inside)


def _shape_args(shapes, norms):
    return {
        "SHAPE_X": SHAPES[shapes[0]],
        "NORM_X": bool(norms[0]),
        "SHAPE_Y": SHAPES[shapes[1]],
        "NORM_Y": bool(norms[1]),
    }


def forward(x, y, w, centres, scales, shapes, norms, precision):
    """Raw joint sums T (M, K, K) of values x, y (M, N) with optional weights w (M, N).

    ``centres`` are the (K,) increasing bin centres of x and of y, ``scales`` a (2,) tensor of the two windows'
    scales, ``shapes`` their names (keys of ``parzen_windows.SHAPES``), ``norms`` whether each is normalised; all
    tensors contiguous, of x's dtype and device.
    """
    bins = centres[0].shape[0]
    if shapes[0] in SUPPORT and bins > SORT_ABOVE_BINS:
        x, y, w = sorted_by_x(x, y, w)
    rows, n = x.shape
    splits = partial_splits(rows, n, triton.cdiv(bins, 32) ** 2)
    return launch_partials(
        _forward_kernel,
        "parzen_joint",
        splits,
        x,
        y,
        w,
        *centres,
        scales,
        K=bins,
        **_shape_args(shapes, norms),
        PRECISION=input_precision(precision, x),
    )


def backward(g, x, y, w, centres, scales, shapes, norms, precision, need_x, need_y, need_w):
    """(dL/dx, dL/dy, dL/dw), each (M, N) or None, for the output gradient g (M, K, K) of ``forward``."""
    grads = [torch.empty_like(x) if need else None for need in (need_x, need_y, need_w)]
    launch_pixels(
        _backward_kernel,
        "parzen_joint backward",
        x,
        y,
        w,
        *centres,
        scales,
        g.contiguous(),
        *[t if t is not None else x for t in grads],
        K=centres[0].shape[0],
        **_shape_args(shapes, norms),
        NEED_X=need_x,
        NEED_Y=need_y,
        NEED_W=need_w,
        PRECISION=input_precision(precision, x),
    )
    return tuple(grads)
