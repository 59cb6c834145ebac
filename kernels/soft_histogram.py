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

* atomic (default): programs over (pixel block, row); each evaluates its pixels' windows and adds them into
  the row's bins with relaxed atomics, in float64 (an fp32 word per bin loses about 1e-3 relative on a flat
  512² image, where every pixel lands in the same few bins);
* deterministic (``torch.are_deterministic_algorithms_enabled()``): programs over (row, bin tile, pixel
  split) evaluate the exact dense memberships of their tile, images included only where a pixel is near a
  boundary, and write per-split partials that a fixed-order sum reduces.

Backward: programs over (pixel block, row) gather dL/dp over each pixel's window; no atomics.

Grids, launches and pixel loading are ``common``'s.
"""

import functools
import math

import torch
import triton
import triton.language as tl

from .common import (
    autotune,
    check_grid,
    launch,
    launch_pixels,
    load_pixels,
    load_values,
    partial_splits,
    pixel_block,
    weight_sums,
)

# ---- Shared by every histogram kernel (the joint kernels import these): the sigmoid-difference kernel in bin
# units, pi_j(u) = sigmoid((u - j)/b) - sigmoid((u - j - 1)/b) for virtual bin j and bandwidth b in bins, and the
# fold of mirror (reflect) and periodic (circular) images onto real bins (huenet.binning.Binning.fold_table).

# Boundary modes as kernel constants; jitted code may only read globals that are tl.constexpr.
BOUNDARY_CODES = {"reflect": 0, "circular": 1, "none": 2}
REFLECT = tl.constexpr(BOUNDARY_CODES["reflect"])
CIRCULAR = tl.constexpr(BOUNDARY_CODES["circular"])
NONE = tl.constexpr(BOUNDARY_CODES["none"])


def bandwidth_constants(bandwidth: float, like: torch.Tensor) -> torch.Tensor:
    """(1/b, 1 - exp(-1/b)) for bandwidth b, computed in float64 and stored in ``like``'s dtype and device.

    They reach the kernels as a tensor because a Python float argument reaches a compiled kernel as fp32
    whatever the input dtype (the interpreter keeps fp64, so only a GPU would show the loss).
    """
    return _constants(float(bandwidth), like.dtype, like.device)


@functools.lru_cache(maxsize=64)
def _constants(bandwidth: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # Cached: one host-to-device copy per bandwidth, and a fixed address that CUDA graphs can capture.
    inv_bw = 1.0 / bandwidth
    return torch.tensor([inv_bw, -math.expm1(-inv_bw)], dtype=dtype, device=device)


@triton.jit
def load_constants(consts_ptr):
    """(1/b, 1 - exp(-1/b)) from ``bandwidth_constants``."""
    return tl.load(consts_ptr), tl.load(consts_ptr + 1)


@triton.jit
def membership(u, j, inv_bw, one_minus_g2):
    """pi_j(u) for virtual bin j (any integer, as a float of u's dtype) and its derivative d pi_j / du.

    The kernel is symmetric about the bin centre. With d = |u - j - 1/2| / b, c = 1/(2b), A = exp(-|d - c|),
    Q = exp(-(d + c)) and G2 = exp(-2c), all in (0, 1],

        pi = sigmoid(c - d) - sigmoid(-c - d) = (1 - G2) [A if d >= c else 1] / ((1 + A)(1 + Q)),
        d pi / dd = Q / (1 + Q)^2 - A / (1 + A)^2,

    two exponentials and one reciprocal per bin, no cancellation of a sigmoid difference in the tails, and no
    0/0 or 0·inf at any bandwidth: both exponentials may underflow (tiny bandwidths) without a NaN, and a
    pixel inside its bin keeps pi = 1 - G2 even when A underflows.
    """
    d = tl.abs(u - j - 0.5) * inv_bw
    c = 0.5 * inv_bw
    a = tl.exp(-tl.abs(d - c))
    q = tl.exp(-(d + c))
    a1 = 1.0 + a
    q1 = 1.0 + q
    r = 1.0 / (a1 * q1)
    value = one_minus_g2 * tl.where(d >= c, a, 1.0) * r
    slope = q * (a1 * r) * (a1 * r) - a * (q1 * r) * (q1 * r)
    return value, tl.where(u - j < 0.5, -slope, slope) * inv_bw


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


@triton.jit
def window_start(u, FIRST, LAST, RADIUS: tl.constexpr):
    """First virtual bin (int32) of each value's window: floor(u) - RADIUS clamped to [FIRST, LAST]
    (``huenet.binning.Window``)."""
    return tl.minimum(tl.maximum(tl.floor(u).to(tl.int32) - RADIUS, FIRST), LAST)


def window_args(like: torch.Tensor, bins: int, bandwidth: float, boundary: str, window, placement: bool = True) -> dict:
    """The launch arguments every histogram kernel takes after its tensors, by keyword: the bandwidth constants
    (in ``like``'s dtype and on its device), K, the radius and the boundary, and with ``placement`` the window
    placement FIRST, LAST, WIN of the kernels that walk each pixel's window."""
    args = {
        "consts_ptr": bandwidth_constants(bandwidth, like),
        "K": bins,
        "RADIUS": window.radius,
        "BOUNDARY": BOUNDARY_CODES[boundary],
    }
    if placement:
        args.update(FIRST=window.first, LAST=window.last, WIN=window.size)
    return args


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


@autotune(_PIXEL_CONFIGS, key=["K", "N_BUCKET", "WIN", "BOUNDARY"], reset_to_zero=["out_ptr"])
@triton.jit
def _forward_atomic_kernel(
    u_ptr,
    w_ptr,
    out_ptr,
    consts_ptr,
    N,
    K,
    FIRST,
    LAST,
    WIN,
    N_BUCKET,
    RADIUS: tl.constexpr,
    BOUNDARY: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    row, offs = pixel_block(BLOCK_N)
    inv_bw, one_minus_g2 = load_constants(consts_ptr)
    u, w, inside = load_pixels(u_ptr, w_ptr, row, offs, N)
    base = window_start(u, FIRST, LAST, RADIUS)
    for r in range(WIN):
        j = base + r
        value, _ = membership(u, j.to(u.dtype), inv_bw, one_minus_g2)
        real, valid = fold(j, K, BOUNDARY)
        tl.atomic_add(out_ptr + row * K + real, (value * w).to(tl.float64), mask=inside & valid, sem="relaxed")


@triton.jit
def image_flags(lo, hi, k_first, K, RADIUS: tl.constexpr, BOUNDARY: tl.constexpr, BLOCK_K: tl.constexpr):
    """Whether the bin tile [k_first, k_first + BLOCK_K) can receive the low-end and the high-end images of
    values spanning [lo, hi]: only if some value lies within RADIUS + 1 bins of that boundary and the tile
    holds bins that close to the end the image lands at (the same end under reflect, the other one under
    circular); beyond that every image membership is below the truncation tolerance."""
    near_lo = lo < RADIUS + 1.0
    near_hi = hi > K - RADIUS - 1.0
    low_tile = k_first <= RADIUS + 1
    high_tile = k_first + BLOCK_K >= K - RADIUS - 1
    if BOUNDARY == REFLECT:
        return near_lo & low_tile, near_hi & high_tile
    elif BOUNDARY == CIRCULAR:
        return near_lo & high_tile, near_hi & low_tile
    else:
        tl.static_assert(False, "no images without a boundary")


@triton.jit
def dense_memberships(
    u, k, K, inv_bw, one_minus_g2, RADIUS: tl.constexpr, BOUNDARY: tl.constexpr, BLOCK_K: tl.constexpr
):
    """Exact memberships (BLOCK_N, BLOCK_K) of values u in real bins k, mirror or periodic images included
    where ``image_flags`` says they can reach the tile."""
    uu = u[:, None]
    kk = k[None, :].to(u.dtype)
    total, _ = membership(uu, kk, inv_bw, one_minus_g2)
    if BOUNDARY != NONE:
        low_image, high_image = image_flags(
            tl.min(u, axis=0), tl.max(u, axis=0), tl.min(k, axis=0), K, RADIUS, BOUNDARY, BLOCK_K
        )
        if low_image:
            # reflect: bin k receives virtual bin -k-1; circular: k - K.
            image, _ = membership(uu, -kk - 1.0 if BOUNDARY == REFLECT else kk - K, inv_bw, one_minus_g2)
            total += image
        if high_image:
            # reflect: bin k receives virtual bin 2K-1-k; circular: k + K.
            image, _ = membership(uu, 2.0 * K - 1.0 - kk if BOUNDARY == REFLECT else kk + K, inv_bw, one_minus_g2)
            total += image
    return tl.where(k[None, :] < K, total, 0.0)


# Launched in deterministic mode only, so always with a fixed config (``launch``): nothing is tuned on the key.
@autotune(_TILE_CONFIGS, key=["K", "BOUNDARY"])
@triton.jit
def _forward_partials_kernel(
    u_ptr,
    w_ptr,
    partial_ptr,
    consts_ptr,
    M,
    N,
    K,
    RADIUS: tl.constexpr,
    BOUNDARY: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    k = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    split = tl.program_id(2)
    splits = tl.num_programs(2)
    inv_bw, one_minus_g2 = load_constants(consts_ptr)
    # float64 partials: a split's blocks add up sequentially, as the atomics do.
    acc = tl.zeros((BLOCK_K,), dtype=tl.float64)
    for start in range(split * BLOCK_N, N, splits * BLOCK_N):
        u, w, _ = load_pixels(u_ptr, w_ptr, row, start + tl.arange(0, BLOCK_N), N)
        m = dense_memberships(u, k, K, inv_bw, one_minus_g2, RADIUS, BOUNDARY, BLOCK_K)
        acc += tl.sum(m * w[:, None], axis=0).to(tl.float64)
    tl.store(partial_ptr + (split * M + row) * K + k, acc, mask=k < K)


@autotune(_PIXEL_CONFIGS, key=["K", "N_BUCKET", "WIN", "BOUNDARY"])
@triton.jit
def _backward_kernel(
    u_ptr,
    w_ptr,
    g_ptr,
    gp_ptr,
    grad_u_ptr,
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
    NEED_U: tl.constexpr,
    NEED_W: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    row, offs = pixel_block(BLOCK_N)
    inside = offs < N
    inv_bw, one_minus_g2 = load_constants(consts_ptr)
    u = load_values(u_ptr, row, offs, N)
    base = window_start(u, FIRST, LAST, RADIUS)
    grad_u = tl.zeros_like(u)
    grad_w = tl.zeros_like(u)
    for r in range(WIN):
        j = base + r
        value, slope = membership(u, j.to(u.dtype), inv_bw, one_minus_g2)
        real, valid = fold(j, K, BOUNDARY)
        g = tl.load(g_ptr + row * K + real, mask=inside & valid, other=0.0)
        grad_u += g * slope
        grad_w += g * value
    if NEED_U:
        if w_ptr is not None:
            grad_u *= tl.load(w_ptr + row * N + offs, mask=inside, other=0.0)
        tl.store(grad_u_ptr + row * N + offs, grad_u, mask=inside)
    if NEED_W:
        tl.store(grad_w_ptr + row * N + offs, grad_w - tl.load(gp_ptr + row), mask=inside)


def partials_grid(op: str, rows: int, bins: int, splits: int):
    """Grid of the soft-histogram partials kernel: rows, bin tiles, pixel splits."""
    return lambda meta: check_grid(op, (rows, triton.cdiv(bins, meta["BLOCK_K"]), splits))


def forward(u, w, bins, bandwidth, boundary, window):
    """Soft histogram (M, K) of values u (M, N) in bin units with optional weights w (M, N)."""
    rows, n = u.shape
    if torch.are_deterministic_algorithms_enabled():
        splits = partial_splits(rows, n, triton.cdiv(bins, 32))
        partials = u.new_empty(splits, rows, bins, dtype=torch.float64)
        launch(
            _forward_partials_kernel,
            partials_grid("soft_histogram", rows, bins, splits),
            u.device,
            u,
            w,
            partials,
            M=rows,
            N=n,
            **window_args(u, bins, bandwidth, boundary, window, placement=False),
            fixed=True,
        )
        hist = partials.sum(0)
    else:
        hist = u.new_zeros(rows, bins, dtype=torch.float64)
        launch_pixels(
            _forward_atomic_kernel, "soft_histogram", u, w, hist, **window_args(u, bins, bandwidth, boundary, window)
        )
    return (hist / weight_sums(u, w)).to(u.dtype)  # float64 / fp32 sums: float64


def backward(g, u, w, p, bins, bandwidth, boundary, window, need_u, need_w):
    """(dL/du, dL/dw), each (M, N) or None, for the output gradient g (M, K) and the forward's output p."""
    total = weight_sums(u, w)
    g_scaled = (g / total).contiguous()
    gp = ((g * p).sum(1, keepdim=True) / total).contiguous()
    grad_u = torch.empty_like(u) if need_u else None
    grad_w = torch.empty_like(u) if need_w else None
    launch_pixels(
        _backward_kernel,
        "soft_histogram backward",
        u,
        w,
        g_scaled,
        gp,
        grad_u if need_u else u,
        grad_w if need_w else u,
        **window_args(u, bins, bandwidth, boundary, window),
        NEED_U=need_u,
        NEED_W=need_w,
    )
    return grad_u, grad_w
