"""Backends built from forward and backward functions, registered as torch custom ops with autograd.

The eager and Triton backends compute histograms with hand-written forward and backward passes that
recompute memberships instead of saving any (M, N, K) tensor. :class:`CustomOpBackend` turns such a pair of
passes into the :class:`~huenet.backends.contract.Backend` functions: it registers them as the custom ops
``torch.ops.huenet.<name>_*`` (opaque to torch.compile), wires their autograd, and leaves the passes to the
subclass. The values reach the ops in bin units, so autograd maps dL/du back to the caller's values through
``to_bin_units`` (du/dz = 1/L; the circular wrap has slope 1).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

import torch
from torch import Tensor
from torch.library import custom_op

from ..binning import Binning


def _empty_if_none(t: Optional[Tensor], like: Tensor) -> Tensor:
    # Custom ops cannot return None; an unrequested gradient comes back empty and is dropped by the caller.
    return like.new_empty(0) if t is None else t


def _binning(bins: int, bandwidth: float, boundary: str) -> Binning:
    # Custom ops take plain arguments: the bin-unit Binning travels as the fields that are not fixed by it.
    return Binning(bins, 0.0, float(bins), bandwidth, boundary)


class CustomOpBackend(ABC):
    """A :class:`~huenet.backends.contract.Backend` from forward and backward passes (M = rows, N = pixels).

    Subclasses set ``name`` and implement the five methods below; the backward passes return None for the
    gradients that are not needed. Constructing the backend registers its custom ops, so make one per name.
    """

    name: str

    @abstractmethod
    def soft_histogram_forward(self, u: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        """Soft histogram (M, K) of u (M, N) with weights w (M, N) or None."""

    @abstractmethod
    def soft_histogram_backward(self, g, u, w, p, binning: Binning, need_u: bool, need_w: bool):
        """(dL/du, dL/dw), each (M, N) or None, from g = dL/dp (M, K) and the forward's output p."""

    @abstractmethod
    def joint_histogram_forward(self, x: Tensor, y: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        """Joint histogram (M, K, K) of x, y (M, N) with weights w (M, N) or None."""

    @abstractmethod
    def joint_histogram_backward(self, g, x, y, w, joint, binning: Binning, need_x: bool, need_y: bool, need_w: bool):
        """(dL/dx, dL/dy, dL/dw), each (M, N) or None, from g = dL/dJ (M, K, K) and the forward's output."""

    @abstractmethod
    def entropies(self, joint: Tensor) -> Tensor:
        """(H(X,Y), H(X), H(Y)) of joint histograms (M, K, K) as (M, 3), differentiable."""

    def __init__(self):
        self._soft = self._register_soft()
        self._joint = self._register_joint()

    def soft_histogram(self, u: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        return self._soft(u, w, binning.bins, binning.bandwidth, binning.boundary)

    def joint_histogram(self, x: Tensor, y: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        return self._joint(x, y, w, binning.bins, binning.bandwidth, binning.boundary)

    def _register_soft(self):
        @custom_op(f"huenet::{self.name}_soft_histogram", mutates_args=())
        def soft(u: Tensor, w: Optional[Tensor], bins: int, bandwidth: float, boundary: str) -> Tensor:
            return self.soft_histogram_forward(u, w, _binning(bins, bandwidth, boundary))

        @soft.register_fake
        def _(u, w, bins, bandwidth, boundary):
            return u.new_empty(u.shape[0], bins)

        @custom_op(f"huenet::{self.name}_soft_histogram_backward", mutates_args=())
        def soft_backward(
            g: Tensor,
            u: Tensor,
            w: Optional[Tensor],
            p: Tensor,
            bins: int,
            bandwidth: float,
            boundary: str,
            need_u: bool,
            need_w: bool,
        ) -> tuple[Tensor, Tensor]:
            grads = self.soft_histogram_backward(g, u, w, p, _binning(bins, bandwidth, boundary), need_u, need_w)
            return tuple(_empty_if_none(t, u) for t in grads)

        @soft_backward.register_fake
        def _(g, u, w, p, bins, bandwidth, boundary, need_u, need_w):
            return tuple(torch.empty_like(u) if need else u.new_empty(0) for need in (need_u, need_w))

        def setup(ctx, inputs, output):
            u, w, *args = inputs
            ctx.save_for_backward(u, w, output)
            ctx.args = args

        def grad(ctx, g):
            u, w, p = ctx.saved_tensors
            needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1] and w is not None)
            grads = soft_backward(g.contiguous(), u, w, p, *ctx.args, *needs)
            return tuple(t if need else None for t, need in zip(grads, needs)) + (None,) * 3

        soft.register_autograd(grad, setup_context=setup)
        return soft

    def _register_joint(self):
        @custom_op(f"huenet::{self.name}_joint_histogram", mutates_args=())
        def joint(x: Tensor, y: Tensor, w: Optional[Tensor], bins: int, bandwidth: float, boundary: str) -> Tensor:
            return self.joint_histogram_forward(x, y, w, _binning(bins, bandwidth, boundary))

        @joint.register_fake
        def _(x, y, w, bins, bandwidth, boundary):
            return x.new_empty(x.shape[0], bins, bins)

        @custom_op(f"huenet::{self.name}_joint_histogram_backward", mutates_args=())
        def joint_backward(
            g: Tensor,
            x: Tensor,
            y: Tensor,
            w: Optional[Tensor],
            j: Tensor,
            bins: int,
            bandwidth: float,
            boundary: str,
            need_x: bool,
            need_y: bool,
            need_w: bool,
        ) -> tuple[Tensor, Tensor, Tensor]:
            grads = self.joint_histogram_backward(
                g, x, y, w, j, _binning(bins, bandwidth, boundary), need_x, need_y, need_w
            )
            return tuple(_empty_if_none(t, x) for t in grads)

        @joint_backward.register_fake
        def _(g, x, y, w, j, bins, bandwidth, boundary, need_x, need_y, need_w):
            return tuple(torch.empty_like(x) if need else x.new_empty(0) for need in (need_x, need_y, need_w))

        def setup(ctx, inputs, output):
            x, y, w, *args = inputs
            ctx.save_for_backward(x, y, w, output)
            ctx.args = args

        def grad(ctx, g):
            x, y, w, j = ctx.saved_tensors
            needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2] and w is not None)
            grads = joint_backward(g.contiguous(), x, y, w, j, *ctx.args, *needs)
            return tuple(t if need else None for t, need in zip(grads, needs)) + (None,) * 3

        joint.register_autograd(grad, setup_context=setup)
        return joint
