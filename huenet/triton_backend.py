"""The Triton backend: huenet's backend interface over the ``kernels`` package.

Values are mapped to bin units here (a differentiable torch op, so autograd supplies the 1/L factor and the
circular wrap), and the kernels see contiguous (M, N) rows.
"""
from __future__ import annotations

import os

import torch

from kernels import DOT_PRECISIONS, JointEntropies, JointHistogram, SoftHistogram

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


def soft_histogram(z: torch.Tensor, w: torch.Tensor | None, binning: Binning) -> torch.Tensor:
    return SoftHistogram.apply(_units(z, binning), None if w is None else w.contiguous(), binning.bins,
                               binning.bandwidth, binning.boundary, binning.window(z.dtype))


def joint_histogram(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, binning: Binning) -> torch.Tensor:
    return JointHistogram.apply(_units(x, binning), _units(y, binning), None if w is None else w.contiguous(),
                                binning.bins, binning.bandwidth, binning.boundary, binning.window(x.dtype),
                                dot_precision())


def entropies(joint: torch.Tensor) -> torch.Tensor:
    return JointEntropies.apply(joint.contiguous())
