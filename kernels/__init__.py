"""Triton kernels for differentiable histograms, installed as ``huenet.kernels``.

This package knows nothing of huenet's public API: its launchers take values already in bin units as (M, N)
rows of pixels and return histograms, entropies and their gradients. huenet's backends choose it at run time
for CUDA tensors.

``TRITON_INTERPRET=1`` must be set before this package is imported to run the kernels on CPU tensors (slow;
for tests): Triton reads it when the kernels are decorated.
"""

from . import entropy, joint_histogram, soft_histogram
from .joint_histogram import DOT_PRECISIONS
from .soft_histogram import INTERPRETED, pinned

__all__ = ["DOT_PRECISIONS", "INTERPRETED", "entropy", "joint_histogram", "pinned", "soft_histogram"]
