"""Triton kernels for differentiable histograms, with their autograd wrappers.

This package knows nothing of training or of huenet's public API: it works on values already in bin units,
(M, N) rows of pixels, and returns histograms. ``huenet`` chooses it at run time for CUDA tensors.

``TRITON_INTERPRET=1`` must be set before this package is imported to run the kernels on CPU tensors (slow;
for tests): Triton reads it when the kernels are decorated.
"""
import os

from . import entropy, joint_histogram, soft_histogram
from .entropy import JointEntropies
from .joint_histogram import DOT_PRECISIONS, JointHistogram
from .soft_histogram import SoftHistogram

#: Whether the kernels were decorated under the Triton interpreter, so that they run on CPU tensors.
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"

__all__ = ["SoftHistogram", "JointHistogram", "JointEntropies", "DOT_PRECISIONS", "INTERPRETED", "entropy",
           "joint_histogram", "soft_histogram"]
