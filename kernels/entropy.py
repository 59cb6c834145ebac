r"""Fused entropy reductions of joint histograms: a Triton kernel and its launchers.

For each row m of J (M, K, K), one program computes

.. math::
    H(X,Y) = -\sum J \log J,\qquad H(X) = -\sum_a p_a \log p_a,\ p = J 1,\qquad
    H(Y) = -\sum_b q_b \log q_b,\ q = 1^\top J

with 0 log 0 = 0, reading J in tiles twice (rows, then columns). MI and D_MI follow elementwise from the three.
Backward: dH(X,Y)/dJ = -(log J + 1), dH(X)/dJ_ab = -(log p_a + 1), dH(Y)/dJ_ab = -(log q_b + 1), each taken as
0 where its argument is 0 (no mass, no gradient).
"""

import contextlib

import torch
import triton
import triton.language as tl


@triton.jit
def _neg_xlogx(t):
    return tl.where(t > 0, -t * tl.log(tl.where(t > 0, t, 1.0)), 0.0)


@triton.jit
def _load_tile(base, i, j, K, BLOCK: tl.constexpr):
    """The (BLOCK, BLOCK) tile of a K × K matrix at ``base`` from row i and column j; 0 outside the matrix."""
    rows = i + tl.arange(0, BLOCK)
    cols = j + tl.arange(0, BLOCK)
    return tl.load(base + rows[:, None] * K + cols[None, :], mask=(rows[:, None] < K) & (cols[None, :] < K), other=0.0)


@triton.jit
def _entropies_kernel(j_ptr, out_ptr, K, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = j_ptr + row * K * K
    dtype: tl.constexpr = j_ptr.dtype.element_ty
    h_xy = tl.zeros((BLOCK,), dtype=dtype)
    h_x = tl.zeros((BLOCK,), dtype=dtype)
    h_y = tl.zeros((BLOCK,), dtype=dtype)
    for i in range(0, K, BLOCK):
        row_sum = tl.zeros((BLOCK,), dtype=dtype)
        for j in range(0, K, BLOCK):
            t = _load_tile(base, i, j, K, BLOCK)
            h_xy += tl.sum(_neg_xlogx(t), axis=1)
            row_sum += tl.sum(t, axis=1)
        h_x += _neg_xlogx(row_sum)
    for j in range(0, K, BLOCK):
        col_sum = tl.zeros((BLOCK,), dtype=dtype)
        for i in range(0, K, BLOCK):
            col_sum += tl.sum(_load_tile(base, i, j, K, BLOCK), axis=0)
        h_y += _neg_xlogx(col_sum)
    tl.store(out_ptr + row * 3 + 0, tl.sum(h_xy, axis=0))
    tl.store(out_ptr + row * 3 + 1, tl.sum(h_x, axis=0))
    tl.store(out_ptr + row * 3 + 2, tl.sum(h_y, axis=0))


def forward(joint):
    """(M, 3) entropies H(X,Y), H(X), H(Y) of joint histograms (M, K, K), contiguous."""
    rows, k, _ = joint.shape
    out = joint.new_empty(rows, 3)
    with torch.cuda.device(joint.device) if joint.is_cuda else contextlib.nullcontext():
        _entropies_kernel[(rows,)](joint, out, k, BLOCK=min(32, triton.next_power_of_2(k)))
    return out


def _log_or_zero(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0, torch.log(torch.where(t > 0, t, 1.0)) + 1.0, 0.0)


def backward(g, joint):
    """dL/dJ (M, K, K) for the gradient g (M, 3) of the three entropies."""
    d_xy = _log_or_zero(joint)
    d_x = _log_or_zero(joint.sum(2))[:, :, None]
    d_y = _log_or_zero(joint.sum(1))[:, None, :]
    return -(g[:, 0, None, None] * d_xy + g[:, 1, None, None] * d_x + g[:, 2, None, None] * d_y)
