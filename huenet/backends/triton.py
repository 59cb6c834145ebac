"""The Triton backend: the kernels of ``huenet.kernels`` (the top-level kernels/ folder) as custom ops.

Importing this module imports Triton and the kernels, so :func:`huenet.backends.resolve` imports it on first
use only: ``import huenet`` stays free of Triton. The kernels run on CUDA tensors, and on CPU tensors only
under the Triton interpreter (``TRITON_INTERPRET=1`` set before the kernels are imported).
"""

from __future__ import annotations

import os
from typing import Optional

import torch
from torch import Tensor
from torch.library import custom_op

import huenet.kernels as kernels

from .._checks import fail
from ..binning import Binning
from . import parzen_triton
from .custom_ops import CustomOpBackend

#: Environment variable choosing the ``tl.dot`` precision of the Triton joint histogram: "tf32x3" (default),
#: "ieee" or "tf32". See kernels/joint_histogram.py for their accuracy.
PRECISION_ENV_VAR = "HUENET_DOT_PRECISION"


def dot_precision() -> str:
    """The ``tl.dot`` precision of the joint histogram, from ``HUENET_DOT_PRECISION``."""
    precision = os.environ.get(PRECISION_ENV_VAR, "tf32x3")
    if precision not in kernels.DOT_PRECISIONS:
        fail(
            "joint_histogram",
            f"environment variable {PRECISION_ENV_VAR}",
            "one of " + ", ".join(map(repr, kernels.DOT_PRECISIONS)),
            repr(precision),
        )
    return precision


def unavailable(device_type: str) -> Optional[str]:
    """Why the kernels cannot run on tensors of ``device_type``, or None if they can."""
    if device_type != "cuda" and not kernels.INTERPRETED:
        return (
            f"the tensors are on {device_type}, and the kernels run on CPU tensors only under the Triton "
            "interpreter (TRITON_INTERPRET=1 set before importing huenet)"
        )
    return None


def _args(binning: Binning, dtype: torch.dtype):
    return binning.bins, binning.bandwidth, binning.boundary, binning.window(dtype)


def _contiguous(w: Optional[Tensor]) -> Optional[Tensor]:
    return None if w is None else w.contiguous()


@custom_op("huenet::triton_entropies", mutates_args=())
def _entropies(joint: Tensor) -> Tensor:
    return kernels.entropy.forward(joint)


@_entropies.register_fake
def _(joint):
    return joint.new_empty(joint.shape[0], 3)


_entropies.register_autograd(
    lambda ctx, g: kernels.entropy.backward(g, ctx.saved_tensors[0]),
    setup_context=lambda ctx, inputs, output: ctx.save_for_backward(inputs[0]),
)


class TritonBackend(CustomOpBackend):
    """The kernels' launchers in the :class:`CustomOpBackend` shape: contiguous inputs, the window placement
    and the dot precision added."""

    name = "triton"

    def soft_histogram_forward(self, u, w, binning):
        return kernels.soft_histogram.forward(u.contiguous(), _contiguous(w), *_args(binning, u.dtype))

    def soft_histogram_backward(self, g, u, w, p, binning, need_u, need_w):
        return kernels.soft_histogram.backward(
            g.contiguous(), u.contiguous(), _contiguous(w), p, *_args(binning, u.dtype), need_u, need_w
        )

    def joint_histogram_forward(self, x, y, w, binning):
        return kernels.joint_histogram.forward(
            x.contiguous(), y.contiguous(), _contiguous(w), *_args(binning, x.dtype), dot_precision()
        )

    def joint_histogram_backward(self, g, x, y, w, joint, binning, need_x, need_y, need_w):
        return kernels.joint_histogram.backward(
            g.contiguous(),
            x.contiguous(),
            y.contiguous(),
            _contiguous(w),
            joint,
            *_args(binning, x.dtype),
            need_x,
            need_y,
            need_w,
        )

    def entropies(self, joint):
        return _entropies(joint.contiguous())

    def parzen_joint(self, x, y, w, centres, windows):
        return parzen_triton.triton_joint(x, y, w, centres, windows, dot_precision())


BACKEND = TritonBackend()
