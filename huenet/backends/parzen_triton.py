"""Weighted joint Parzen histograms on the Triton kernels (``huenet.kernels.parzen_joint``), with autograd.

Imported by the Triton backend (huenet/backends/triton.py) only, so ``import huenet`` stays free of Triton. The
same raw sums as ``parzen_dense``; the forward keeps nothing but its inputs, and the backward kernel
rebuilds the window weights of each pixel block.
"""

from __future__ import annotations

import functools

import torch

import huenet.kernels as kernels


@functools.lru_cache(maxsize=64)
def _scales(sx: float, sy: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # A tensor, not Python floats: a float argument reaches a compiled kernel as fp32 whatever the input dtype.
    return torch.tensor([sx, sy], dtype=dtype, device=device)


class _TritonJoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, w, cx, cy, wx, wy, precision):
        x, y = x.contiguous(), y.contiguous()
        w = None if w is None else w.contiguous()
        centres = (cx.contiguous(), cy.contiguous())
        args = (
            centres,
            _scales(wx.scale, wy.scale, x.dtype, x.device),
            (wx.shape, wy.shape),
            (wx.normalized, wy.normalized),
            precision,
        )
        ctx.save_for_backward(x, y, w)
        ctx.args = args
        return kernels.parzen_joint.forward(x, y, w, *args)

    @staticmethod
    def backward(ctx, g):
        x, y, w = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        grads = kernels.parzen_joint.backward(g.to(x.dtype), x, y, w, *ctx.args, *needs)
        return (*grads, None, None, None, None, None)


def triton_joint(x, y, w, centres, windows, precision: str):
    """T (M, K, K) on the Triton kernels, fp32 dots in ``precision`` (one of ``huenet.kernels.DOT_PRECISIONS``)."""
    return _TritonJoint.apply(x, y, w, *centres, *windows, precision)
