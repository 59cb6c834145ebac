"""Choosing the backend that computes a histogram op."""
from __future__ import annotations

import os

import torch

from . import eager, reference
from ._checks import fail

BACKENDS = ("auto", "eager", "reference", "triton")
ENV_VAR = "HUENET_BACKEND"


def resolve(op: str, backend: str, device: torch.device):
    """Return the module implementing ``backend`` for tensors on ``device``.

    ``HUENET_BACKEND`` replaces "auto" only, so an explicit choice in code always wins.
    """
    if backend not in BACKENDS:
        fail(op, "backend", "one of " + ", ".join(map(repr, BACKENDS)), repr(backend))
    if backend == "auto":
        backend = os.environ.get(ENV_VAR, "auto") or "auto"
        if backend not in BACKENDS:
            fail(op, f"environment variable {ENV_VAR}", "one of " + ", ".join(map(repr, BACKENDS)), repr(backend))
    if backend == "auto":
        # No Triton kernels exist yet, so every device gets the eager backend.
        return eager
    if backend == "triton":
        raise RuntimeError(f"{op}: backend='triton' was requested, but the Triton kernels are not available in "
                           "this version of huenet; use backend='eager' (or 'auto').")
    return eager if backend == "eager" else reference
