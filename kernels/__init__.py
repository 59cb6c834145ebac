"""Triton kernels for differentiable histograms, installed as ``huenet.kernels``.

This package knows nothing of huenet's public API: its launchers take values already in bin units as (M, N)
rows of pixels and return histograms, entropies and their gradients; the Parzen kernels take values and bin
centres in any unit. huenet's backends choose it at run time
for CUDA tensors.

``TRITON_INTERPRET=1`` must be set before this package is imported to run the kernels on CPU tensors (slow;
for tests): Triton reads it when the kernels are decorated.
"""

from . import common, entropy, joint_histogram, joint_tiles, parzen_joint, parzen_windows, soft_histogram
from .common import INTERPRETED, pinned
from .joint_histogram import DOT_PRECISIONS

__all__ = [
    "DOT_PRECISIONS",
    "INTERPRETED",
    "common",
    "entropy",
    "joint_histogram",
    "joint_tiles",
    "parzen_joint",
    "parzen_windows",
    "pinned",
    "soft_histogram",
]
