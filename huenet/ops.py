"""torch.library custom ops around the eager and Triton backends.

Each histogram op is one opaque operator to torch.compile (no graph breaks inside, and no tracing of the
chunk loops or kernel launches), with its backward registered as a second custom op that recomputes. The
reference backend is plain differentiable torch and needs none of this.
"""
from __future__ import annotations

import importlib
from typing import Optional

import torch
from torch import Tensor
from torch.library import custom_op

from . import eager
from .binning import Binning
from .entropy import entropies as torch_entropies


def _impl(backend: str):
    return eager if backend == "eager" else importlib.import_module("huenet.triton_backend")


def _empty_if_none(t: Optional[Tensor], like: Tensor) -> Tensor:
    # Custom ops cannot return None; an unrequested gradient comes back empty and is dropped by the caller.
    return like.new_empty(0) if t is None else t


@custom_op("huenet::soft_histogram", mutates_args=())
def _soft_histogram(z: Tensor, w: Optional[Tensor], bins: int, lo: float, hi: float, bandwidth: float,
                    boundary: str, backend: str) -> Tensor:
    return _impl(backend).soft_histogram_forward(z, w, Binning(bins, lo, hi, bandwidth, boundary))


@_soft_histogram.register_fake
def _(z, w, bins, lo, hi, bandwidth, boundary, backend):
    return z.new_empty(z.shape[0], bins)


@custom_op("huenet::soft_histogram_backward", mutates_args=())
def _soft_histogram_backward(g: Tensor, z: Tensor, w: Optional[Tensor], p: Tensor, bins: int, lo: float, hi: float,
                             bandwidth: float, boundary: str, backend: str, need_z: bool,
                             need_w: bool) -> tuple[Tensor, Tensor]:
    grad_z, grad_w = _impl(backend).soft_histogram_backward(g, z, w, p, Binning(bins, lo, hi, bandwidth, boundary),
                                                            need_z, need_w)
    return _empty_if_none(grad_z, z), _empty_if_none(grad_w, z)


@_soft_histogram_backward.register_fake
def _(g, z, w, p, bins, lo, hi, bandwidth, boundary, backend, need_z, need_w):
    return (torch.empty_like(z) if need_z else z.new_empty(0)), (torch.empty_like(z) if need_w else z.new_empty(0))


def _soft_setup(ctx, inputs, output):
    z, w, *args = inputs
    ctx.save_for_backward(z, w, output)
    ctx.args = args


def _soft_backward(ctx, g):
    z, w, p = ctx.saved_tensors
    need_z, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1] and w is not None
    grad_z, grad_w = _soft_histogram_backward(g.contiguous(), z, w, p, *ctx.args, need_z, need_w)
    return (grad_z if need_z else None, grad_w if need_w else None) + (None,) * 6


_soft_histogram.register_autograd(_soft_backward, setup_context=_soft_setup)


@custom_op("huenet::joint_histogram", mutates_args=())
def _joint_histogram(x: Tensor, y: Tensor, w: Optional[Tensor], bins: int, lo: float, hi: float, bandwidth: float,
                     boundary: str, backend: str) -> Tensor:
    return _impl(backend).joint_histogram_forward(x, y, w, Binning(bins, lo, hi, bandwidth, boundary))


@_joint_histogram.register_fake
def _(x, y, w, bins, lo, hi, bandwidth, boundary, backend):
    return x.new_empty(x.shape[0], bins, bins)


@custom_op("huenet::joint_histogram_backward", mutates_args=())
def _joint_histogram_backward(g: Tensor, x: Tensor, y: Tensor, w: Optional[Tensor], joint: Tensor, bins: int,
                              lo: float, hi: float, bandwidth: float, boundary: str, backend: str, need_x: bool,
                              need_y: bool, need_w: bool) -> tuple[Tensor, Tensor, Tensor]:
    grads = _impl(backend).joint_histogram_backward(g, x, y, w, joint, Binning(bins, lo, hi, bandwidth, boundary),
                                                    need_x, need_y, need_w)
    return tuple(_empty_if_none(t, x) for t in grads)


@_joint_histogram_backward.register_fake
def _(g, x, y, w, joint, bins, lo, hi, bandwidth, boundary, backend, need_x, need_y, need_w):
    return tuple(torch.empty_like(x) if need else x.new_empty(0) for need in (need_x, need_y, need_w))


def _joint_setup(ctx, inputs, output):
    x, y, w, *args = inputs
    ctx.save_for_backward(x, y, w, output)
    ctx.args = args


def _joint_backward(ctx, g):
    x, y, w, joint = ctx.saved_tensors
    needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2] and w is not None)
    grads = _joint_histogram_backward(g.contiguous(), x, y, w, joint, *ctx.args, *needs)
    return tuple(t if need else None for t, need in zip(grads, needs)) + (None,) * 6


_joint_histogram.register_autograd(_joint_backward, setup_context=_joint_setup)


@custom_op("huenet::joint_entropies", mutates_args=())
def _joint_entropies(joint: Tensor) -> Tensor:
    return _impl("triton").entropies_forward(joint)


@_joint_entropies.register_fake
def _(joint):
    return joint.new_empty(joint.shape[0], 3)


def _entropies_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _entropies_backward(ctx, g):
    return _impl("triton").entropies_backward(g, ctx.saved_tensors[0])


_joint_entropies.register_autograd(_entropies_backward, setup_context=_entropies_setup)


class Backend:
    """A backend as the public ops see it: soft and joint histograms of (M, N) rows, and entropies of (M, K, K)."""

    def __init__(self, name: str):
        self.name = name

    def soft_histogram(self, z: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        return _soft_histogram(z, w, binning.bins, binning.lo, binning.hi, binning.bandwidth, binning.boundary,
                               self.name)

    def joint_histogram(self, x: Tensor, y: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        return _joint_histogram(x, y, w, binning.bins, binning.lo, binning.hi, binning.bandwidth, binning.boundary,
                                self.name)

    def entropies(self, joint: Tensor) -> Tensor:
        return _joint_entropies(joint) if self.name == "triton" else torch_entropies(joint)


EAGER = Backend("eager")
TRITON = Backend("triton")
