"""The Triton backend's forward and backward functions over the ``kernels`` package (see huenet.ops).

Values are mapped to bin units here, and the kernels see contiguous (M, N) rows; gradients with respect to
bin units are mapped back by the chain rule (du/dz = 1/L, the circular wrap has slope 1).
"""
from __future__ import annotations

import os

import torch

from kernels import DOT_PRECISIONS, entropy, joint_histogram, soft_histogram

from ._checks import fail
from .binning import Binning

#: Environment variable choosing the ``tl.dot`` precision of the joint histogram: "tf32x3" (default),
#: "ieee" or "tf32". See kernels/joint_histogram.py for their accuracy.
PRECISION_ENV_VAR = "HUENET_DOT_PRECISION"


def dot_precision() -> str:
    precision = os.environ.get(PRECISION_ENV_VAR, "tf32x3")
    if precision not in DOT_PRECISIONS:
        fail("joint_histogram", f"environment variable {PRECISION_ENV_VAR}",
             "one of " + ", ".join(map(repr, DOT_PRECISIONS)), repr(precision))
    return precision


def _units(z: torch.Tensor, binning: Binning) -> torch.Tensor:
    return binning.to_bin_units(z).contiguous()


def _contiguous(w):
    return None if w is None else w.contiguous()


def _args(binning: Binning, dtype: torch.dtype):
    return binning.bins, binning.bandwidth, binning.boundary, binning.window(dtype)


def _per_value(grad_u, binning: Binning):
    return None if grad_u is None else grad_u / binning.width


def soft_histogram_forward(z, w, binning: Binning):
    return soft_histogram.forward(_units(z, binning), _contiguous(w), *_args(binning, z.dtype))


def soft_histogram_backward(g, z, w, p, binning: Binning, need_z: bool, need_w: bool):
    grad_u, grad_w = soft_histogram.backward(g.contiguous(), _units(z, binning), _contiguous(w), p,
                                             *_args(binning, z.dtype), need_z, need_w)
    return _per_value(grad_u, binning), grad_w


def joint_histogram_forward(x, y, w, binning: Binning):
    return joint_histogram.forward(_units(x, binning), _units(y, binning), _contiguous(w),
                                   *_args(binning, x.dtype), dot_precision())


def joint_histogram_backward(g, x, y, w, joint, binning: Binning, need_x: bool, need_y: bool, need_w: bool):
    grad_x, grad_y, grad_w = joint_histogram.backward(g.contiguous(), _units(x, binning), _units(y, binning),
                                                      _contiguous(w), joint, *_args(binning, x.dtype),
                                                      need_x, need_y, need_w)
    return _per_value(grad_x, binning), _per_value(grad_y, binning), grad_w


def entropies_forward(joint):
    return entropy.forward(joint.contiguous())


entropies_backward = entropy.backward
