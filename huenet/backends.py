"""Choosing the backend that computes a histogram op."""
from __future__ import annotations

import functools
import importlib
import logging
import os

import torch

from . import reference
from .ops import EAGER, TRITON
from ._checks import fail

BACKENDS = ("auto", "eager", "reference", "triton")
ENV_VAR = "HUENET_BACKEND"
_log = logging.getLogger("huenet")
_logged: set[tuple[str, str]] = set()


@functools.lru_cache(maxsize=None)
def _triton_unavailable(device_type: str) -> str | None:
    """Why the Triton kernels cannot run on tensors of ``device_type``, or None if they can.

    Cached: the answer cannot change within a process, and "auto" asks on every op call.
    """
    try:
        importlib.import_module("huenet.triton_backend")
    except ImportError as err:  # no triton on this platform, or a broken install
        return f"the Triton kernels could not be imported ({err})"
    from kernels import INTERPRETED
    if device_type != "cuda" and not INTERPRETED:
        return (f"the tensors are on {device_type}, and the kernels run on CPU tensors only under the Triton "
                "interpreter (TRITON_INTERPRET=1 set before importing huenet)")
    return None


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
        chosen = TRITON if device.type == "cuda" and _triton_unavailable(device.type) is None else EAGER
        if (device.type, chosen.name) not in _logged:
            _logged.add((device.type, chosen.name))
            _log.info("huenet: backend 'auto' chose %r for %s tensors", chosen.name, device.type)
        return chosen
    if backend == "triton":
        reason = _triton_unavailable(device.type)
        if reason is not None:
            raise RuntimeError(f"{op}: backend='triton' was requested, but {reason}; use backend='eager' or 'auto'.")
        return TRITON
    return EAGER if backend == "eager" else reference
