"""Choosing the backend that computes a histogram op."""
from __future__ import annotations

import importlib
import logging
import os

import torch

from . import eager, reference
from ._checks import fail

BACKENDS = ("auto", "eager", "reference", "triton")
ENV_VAR = "HUENET_BACKEND"
_log = logging.getLogger("huenet")
_logged: set[tuple[str, str]] = set()


def _triton_backend():
    """The Triton backend module, or the reason it cannot be used."""
    try:
        return importlib.import_module("huenet.triton_backend"), None
    except ImportError as err:  # no triton on this platform, or a broken install
        return None, f"the Triton kernels could not be imported ({err})"


def _triton_for(op: str, device: torch.device, required: bool):
    module, reason = _triton_backend()
    if module is not None and device.type != "cuda":
        from kernels import INTERPRETED
        if not INTERPRETED:
            module, reason = None, (f"the tensors are on {device.type}, and the kernels run on CPU tensors only "
                                    "under the Triton interpreter (TRITON_INTERPRET=1 set before importing huenet)")
    if module is None and required:
        raise RuntimeError(f"{op}: backend='triton' was requested, but {reason}; use backend='eager' or 'auto'.")
    return module


def resolve(op: str, backend: str, device: torch.device):
    """Return the module implementing ``backend`` for tensors on ``device``.

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
        module = _triton_for(op, device, required=False) if device.type == "cuda" else None
        module, backend = (module, "triton") if module is not None else (eager, "eager")
        if (device.type, backend) not in _logged:
            _logged.add((device.type, backend))
            _log.info("huenet: backend 'auto' chose %r for %s tensors", backend, device.type)
        return module
    if backend == "triton":
        return _triton_for(op, device, required=True)
    return eager if backend == "eager" else reference
