"""The backends that compute histograms, and the choice between them.

Every backend takes the same inputs: values already in bin units as (M, N) rows (``Binning.to_bin_units``),
optional weights (M, N) and the bin-unit ``Binning`` (``Binning.in_bin_units``). It computes

* ``soft_histogram(u, w, binning)`` -> (M, K),
* ``joint_histogram(ux, uy, w, binning)`` -> (M, K, K),
* ``entropies(joint)`` -> (M, 3), the (H(X,Y), H(X), H(Y)) of joint histograms (M, K, K).

``reference`` is plain differentiable torch. ``eager`` and ``triton`` are torch custom ops
(``torch.ops.huenet.*``), opaque to torch.compile, whose backward ops recompute memberships instead of
saving any (M, N, K) tensor. The values reach them in bin units, so autograd maps dL/du back to the caller's
values through ``to_bin_units`` (du/dz = 1/L; the circular wrap has slope 1).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from types import SimpleNamespace
from typing import Optional

import torch
from torch import Tensor
from torch.library import custom_op

from .._checks import fail
from ..binning import Binning
from . import eager, reference

BACKENDS = ("auto", "eager", "reference", "triton")
ENV_VAR = "HUENET_BACKEND"
#: Environment variable choosing the ``tl.dot`` precision of the Triton joint histogram: "tf32x3" (default),
#: "ieee" or "tf32". See kernels/joint_histogram.py for their accuracy.
PRECISION_ENV_VAR = "HUENET_DOT_PRECISION"
_log = logging.getLogger("huenet")
_logged: set[tuple[str, str]] = set()


def _empty_if_none(t: Optional[Tensor], like: Tensor) -> Tensor:
    # Custom ops cannot return None; an unrequested gradient comes back empty and is dropped by the caller.
    return like.new_empty(0) if t is None else t


def _binning(bins: int, bandwidth: float, boundary: str) -> Binning:
    return Binning(bins, 0.0, float(bins), bandwidth, boundary)


def _custom_ops(name: str, impl) -> SimpleNamespace:
    """Register ``impl``'s histogram functions as the custom ops ``huenet::<name>_*`` with autograd.

    ``impl`` has ``soft_histogram_forward(u, w, binning)``, ``soft_histogram_backward(g, u, w, p, binning,
    need_u, need_w)``, ``joint_histogram_forward(x, y, w, binning)``, ``joint_histogram_backward(g, x, y, w,
    joint, binning, need_x, need_y, need_w)`` and ``entropies(joint)``; backward functions return None for
    gradients that are not needed.
    """

    @custom_op(f"huenet::{name}_soft_histogram", mutates_args=())
    def soft(u: Tensor, w: Optional[Tensor], bins: int, bandwidth: float, boundary: str) -> Tensor:
        return impl.soft_histogram_forward(u, w, _binning(bins, bandwidth, boundary))

    @soft.register_fake
    def _(u, w, bins, bandwidth, boundary):
        return u.new_empty(u.shape[0], bins)

    @custom_op(f"huenet::{name}_soft_histogram_backward", mutates_args=())
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
        grads = impl.soft_histogram_backward(g, u, w, p, _binning(bins, bandwidth, boundary), need_u, need_w)
        return tuple(_empty_if_none(t, u) for t in grads)

    @soft_backward.register_fake
    def _(g, u, w, p, bins, bandwidth, boundary, need_u, need_w):
        return tuple(torch.empty_like(u) if need else u.new_empty(0) for need in (need_u, need_w))

    def soft_setup(ctx, inputs, output):
        u, w, *args = inputs
        ctx.save_for_backward(u, w, output)
        ctx.args = args

    def soft_grad(ctx, g):
        u, w, p = ctx.saved_tensors
        needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1] and w is not None)
        grads = soft_backward(g.contiguous(), u, w, p, *ctx.args, *needs)
        return tuple(t if need else None for t, need in zip(grads, needs)) + (None,) * 3

    soft.register_autograd(soft_grad, setup_context=soft_setup)

    @custom_op(f"huenet::{name}_joint_histogram", mutates_args=())
    def joint(x: Tensor, y: Tensor, w: Optional[Tensor], bins: int, bandwidth: float, boundary: str) -> Tensor:
        return impl.joint_histogram_forward(x, y, w, _binning(bins, bandwidth, boundary))

    @joint.register_fake
    def _(x, y, w, bins, bandwidth, boundary):
        return x.new_empty(x.shape[0], bins, bins)

    @custom_op(f"huenet::{name}_joint_histogram_backward", mutates_args=())
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
        grads = impl.joint_histogram_backward(
            g, x, y, w, j, _binning(bins, bandwidth, boundary), need_x, need_y, need_w
        )
        return tuple(_empty_if_none(t, x) for t in grads)

    @joint_backward.register_fake
    def _(g, x, y, w, j, bins, bandwidth, boundary, need_x, need_y, need_w):
        return tuple(torch.empty_like(x) if need else x.new_empty(0) for need in (need_x, need_y, need_w))

    def joint_setup(ctx, inputs, output):
        x, y, w, *args = inputs
        ctx.save_for_backward(x, y, w, output)
        ctx.args = args

    def joint_grad(ctx, g):
        x, y, w, j = ctx.saved_tensors
        needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2] and w is not None)
        grads = joint_backward(g.contiguous(), x, y, w, j, *ctx.args, *needs)
        return tuple(t if need else None for t, need in zip(grads, needs)) + (None,) * 3

    joint.register_autograd(joint_grad, setup_context=joint_setup)

    def soft_histogram(u: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        return soft(u, w, binning.bins, binning.bandwidth, binning.boundary)

    def joint_histogram(x: Tensor, y: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        return joint(x, y, w, binning.bins, binning.bandwidth, binning.boundary)

    return SimpleNamespace(
        name=name, soft_histogram=soft_histogram, joint_histogram=joint_histogram, entropies=impl.entropies
    )


class _Triton:
    """The Triton kernels (``huenet.kernels``) in the shape ``_custom_ops`` takes; imported on first use."""

    def __init__(self):
        self.kernels = importlib.import_module("huenet.kernels")

    def dot_precision(self) -> str:
        precision = os.environ.get(PRECISION_ENV_VAR, "tf32x3")
        if precision not in self.kernels.DOT_PRECISIONS:
            fail(
                "joint_histogram",
                f"environment variable {PRECISION_ENV_VAR}",
                "one of " + ", ".join(map(repr, self.kernels.DOT_PRECISIONS)),
                repr(precision),
            )
        return precision

    @staticmethod
    def _args(binning: Binning, dtype: torch.dtype):
        return binning.bins, binning.bandwidth, binning.boundary, binning.window(dtype)

    @staticmethod
    def _contiguous(w):
        return None if w is None else w.contiguous()

    def soft_histogram_forward(self, u, w, binning):
        return self.kernels.soft_histogram.forward(u.contiguous(), self._contiguous(w), *self._args(binning, u.dtype))

    def soft_histogram_backward(self, g, u, w, p, binning, need_u, need_w):
        return self.kernels.soft_histogram.backward(
            g.contiguous(), u.contiguous(), self._contiguous(w), p, *self._args(binning, u.dtype), need_u, need_w
        )

    def joint_histogram_forward(self, x, y, w, binning):
        return self.kernels.joint_histogram.forward(
            x.contiguous(), y.contiguous(), self._contiguous(w), *self._args(binning, x.dtype), self.dot_precision()
        )

    def joint_histogram_backward(self, g, x, y, w, joint, binning, need_x, need_y, need_w):
        return self.kernels.joint_histogram.backward(
            g.contiguous(),
            x.contiguous(),
            y.contiguous(),
            self._contiguous(w),
            joint,
            *self._args(binning, x.dtype),
            need_x,
            need_y,
            need_w,
        )

    def entropies(self, joint):
        return _triton_entropies(joint.contiguous())


@custom_op("huenet::triton_entropies", mutates_args=())
def _triton_entropies(joint: Tensor) -> Tensor:
    return importlib.import_module("huenet.kernels").entropy.forward(joint)


@_triton_entropies.register_fake
def _(joint):
    return joint.new_empty(joint.shape[0], 3)


_triton_entropies.register_autograd(
    lambda ctx, g: importlib.import_module("huenet.kernels").entropy.backward(g, ctx.saved_tensors[0]),
    setup_context=lambda ctx, inputs, output: ctx.save_for_backward(inputs[0]),
)

EAGER = _custom_ops("eager", eager)
REFERENCE = SimpleNamespace(
    name="reference",
    soft_histogram=reference.soft_histogram,
    joint_histogram=reference.joint_histogram,
    entropies=reference.entropies,
)


@functools.lru_cache(maxsize=None)
def _triton() -> SimpleNamespace | str:
    """The Triton backend, or why its kernels cannot be imported; registered once, on first use."""
    try:
        return _custom_ops("triton", _Triton())
    except ImportError as err:  # no triton on this platform, or a broken install
        return f"the Triton kernels could not be imported ({err})"


def _triton_unavailable(device_type: str) -> str | None:
    """Why the Triton kernels cannot run on tensors of ``device_type``, or None if they can."""
    backend = _triton()
    if isinstance(backend, str):
        return backend
    if device_type != "cuda" and not importlib.import_module("huenet.kernels").INTERPRETED:
        return (
            f"the tensors are on {device_type}, and the kernels run on CPU tensors only under the Triton "
            "interpreter (TRITON_INTERPRET=1 set before importing huenet)"
        )
    return None


def resolve(op: str, backend: str, device: torch.device) -> SimpleNamespace:
    """The backend called ``backend`` for tensors on ``device``; the public ops call this once per call.

    "auto" picks Triton for CUDA tensors when the kernels import, eager otherwise; ``HUENET_BACKEND`` replaces
    "auto" only, so an explicit choice in code always wins. An explicit "triton" never falls back silently.
    """
    if backend not in BACKENDS:
        fail(op, "backend", "one of " + ", ".join(map(repr, BACKENDS)), repr(backend))
    if backend == "auto":
        backend = os.environ.get(ENV_VAR, "auto") or "auto"
        if backend not in BACKENDS:
            fail(op, f"environment variable {ENV_VAR}", "one of " + ", ".join(map(repr, BACKENDS)), repr(backend))
    if backend == "auto":
        chosen = _triton() if device.type == "cuda" and _triton_unavailable(device.type) is None else EAGER
        if (device.type, chosen.name) not in _logged:
            _logged.add((device.type, chosen.name))
            _log.info("huenet: backend 'auto' chose %r for %s tensors", chosen.name, device.type)
        return chosen
    if backend == "triton":
        reason = _triton_unavailable(device.type)
        if reason is not None:
            raise RuntimeError(f"{op}: backend='triton' was requested, but {reason}; use backend='eager' or 'auto'.")
        return _triton()
    return EAGER if backend == "eager" else REFERENCE
