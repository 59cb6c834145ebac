r"""Weighted joint Parzen histograms in torch: the dense reference and the chunked eager backend.

Both compute the raw sums :math:`T_m = A_x^\top \operatorname{diag}(w) A_y` of ``huenet.dropin.parzen.parzen_joint``
for values x, y (M, N) with weights w (M, N) or None, bin centres (K,) per axis and a ``ParzenWindow`` per
axis (the formulas are in ``huenet/kernels/parzen_windows.py``).

* ``reference_joint`` materialises the (M, N, K) weights and lets autograd keep them, as MONAI and HistoGAN do:
  the readable statement of the maths and the test oracle on the torch side.
* ``eager_joint`` evaluates the weights in chunks of pixels so that no temporary exceeds
  the eager backend's chunk budget of elements, accumulates T in float64, and its backward recomputes the weights of each
  chunk instead of saving any: O(N + K²) memory per row.
"""

from __future__ import annotations

import torch

from .._threads import one_cpu_thread


def window_weights(x: torch.Tensor, centres: torch.Tensor, window, slopes: bool = False):
    """Weights (..., K) of values x (...) in the bins with ``centres`` under ``window``, and their derivatives
    in x when ``slopes`` (else None)."""
    d = x.unsqueeze(-1) - centres
    s = window.scale
    slope = None
    if window.shape == "gaussian" and window.normalized:
        # A softmax over bins of -s d²: one fused pass, shifted by the row max (no 0/0 at any width), and
        # d m_k/dx = m_k (a_k - sum_j m_j a_j) with a_k = -2 s (x - c_k) reduces to 2 s m_k (c_k - sum_j m_j c_j).
        v = torch.softmax((d * d).mul_(-s), -1)
        if slopes:
            slope = v * (centres - (v @ centres).unsqueeze(-1)) * (2.0 * s)
        return v, slope
    if window.shape == "gaussian":
        q = s * d * d
        v = torch.exp(-q)
        if slopes:
            slope = -2.0 * s * d * v
    elif window.shape == "inverse-quadratic":
        v = 1.0 / (1.0 + s * d * d)
        if slopes:
            slope = -2.0 * s * d * v * v
    elif window.shape == "b-spline":
        a = d.abs() * s
        outer = (2.0 - a).clamp_min(0.0)
        v = torch.where(a < 1.0, (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0, outer * outer * outer / 6.0)
        if slopes:
            slope = torch.where(a < 1.0, 1.5 * a * a - 2.0 * a, -0.5 * outer * outer) * d.sign() * s
    else:  # box
        a = d.abs() * s
        v = (a < 0.5).to(x.dtype) + (a == 0.5).to(x.dtype) * 0.5
        if slopes:
            slope = torch.zeros_like(v)
    if window.normalized:
        inv_z = 1.0 / v.sum(-1, keepdim=True)
        v = v * inv_z
        if slopes:
            slope = slope * inv_z - v * (slope.sum(-1, keepdim=True) * inv_z)
    return v, slope


def reference_joint(x, y, w, centres, windows):
    """T (M, K, K) with plain autograd through dense (M, N, K) weights."""
    a, _ = window_weights(x, centres[0], windows[0])
    b, _ = window_weights(y, centres[1], windows[1])
    if w is not None:
        a = a * w.unsqueeze(-1)
    return a.transpose(1, 2) @ b


def _chunks(budget: int, rows: int, n: int, bins: int, temporaries: int):
    step = max(1, budget // max(1, rows * bins * temporaries))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


class _EagerJoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, w, cx, cy, wx, wy, budget):
        rows, n = x.shape
        bins = cx.shape[0]
        # float64 sums across chunks: a flat image puts every pixel in the same few bins.
        total = x.new_zeros(rows, bins, bins, dtype=torch.float64)
        with one_cpu_thread(x.device):
            for sl in _chunks(budget, rows, n, bins, 8):
                a, _ = window_weights(x[:, sl], cx, wx)
                b, _ = window_weights(y[:, sl], cy, wy)
                if w is not None:
                    a = a * w[:, sl].unsqueeze(-1)
                total += torch.bmm(a.transpose(1, 2), b)
        ctx.save_for_backward(x, y, w, cx, cy)
        ctx.windows, ctx.budget = (wx, wy), budget
        return total.to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        x, y, w, cx, cy = ctx.saved_tensors
        wx, wy = ctx.windows
        need_x, need_y, need_w = ctx.needs_input_grad[:3]
        rows, n = x.shape
        grads = [torch.empty_like(x) if need else None for need in (need_x, need_y, need_w)]
        g = g.to(x.dtype)
        with one_cpu_thread(x.device):
            for sl in _chunks(ctx.budget, rows, n, cx.shape[0], 12):
                a, da = window_weights(x[:, sl], cx, wx, slopes=need_x)
                b, db = window_weights(y[:, sl], cy, wy, slopes=need_y)
                ws = None if w is None else w[:, sl]
                if need_x or need_w:
                    gb = torch.bmm(b, g.transpose(1, 2))  # (A_y Gᵀ)[n, k1]
                    if need_x:
                        gx = (da * gb).sum(-1)
                        grads[0][:, sl] = gx if ws is None else gx * ws
                    if need_w:
                        grads[2][:, sl] = (a * gb).sum(-1)
                if need_y:
                    gy = (db * torch.bmm(a, g)).sum(-1)  # (A_x G)[n, k2]
                    grads[1][:, sl] = gy if ws is None else gy * ws
        return (*grads, None, None, None, None, None)


def eager_joint(x, y, w, centres, windows, budget: int):
    """T (M, K, K) in chunks whose temporaries stay within ``budget`` elements, with a backward that
    recomputes the weights."""
    return _EagerJoint.apply(x, y, w, *centres, *windows, budget)
