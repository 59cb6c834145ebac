"""The histogram backends and the choice between them.

Every backend implements the :class:`~huenet.backends.contract.Backend` protocol (contract.py), each in its
own module:

* :mod:`~huenet.backends.reference`: the dense, paper-style formulas in plain differentiable torch;
* :mod:`~huenet.backends.eager`: windowed, chunked torch passes as custom ops (custom_ops.py);
* :mod:`~huenet.backends.triton`: the Triton kernels of ``huenet.kernels`` as custom ops, imported on first use.

:func:`resolve` picks one for the public ops (huenet/histogram.py), once per call.
"""

from __future__ import annotations

import functools
import logging
import os

import torch

from .._checks import fail
from . import eager, reference
from .contract import Backend

#: What ``backend=`` is by default: Triton on CUDA when the kernels import, eager otherwise (:func:`resolve`).
DEFAULT_BACKEND = "auto"
#: The names ``backend=`` accepts.
BACKENDS = (DEFAULT_BACKEND, "eager", "reference", "triton")
#: Environment variable that replaces backend="auto".
ENV_VAR = "HUENET_BACKEND"
#: The backends that are always available, by name; Triton is added on first use (:func:`_triton`).
REGISTRY: dict[str, Backend] = {"eager": eager.BACKEND, "reference": reference.BACKEND}
_log = logging.getLogger("huenet")
_logged: set[tuple[str, str]] = set()


@functools.lru_cache(maxsize=None)
def _triton_import_error() -> str | None:
    """Why the Triton backend cannot be imported, or None once it is in :data:`REGISTRY`."""
    try:
        from . import triton
    except ImportError as err:  # no triton on this platform, or a broken install
        return f"the Triton kernels could not be imported ({err})"
    REGISTRY["triton"] = triton.BACKEND
    return None


def _triton_unavailable(device_type: str) -> str | None:
    """Why the Triton kernels cannot run on tensors of ``device_type``, or None if they can."""
    reason = _triton_import_error()
    if reason is not None:
        return reason
    from . import triton

    return triton.unavailable(device_type)


def resolve(op: str, backend: str, device: torch.device) -> Backend:
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
        chosen = "triton" if device.type == "cuda" and _triton_unavailable(device.type) is None else "eager"
        if (device.type, chosen) not in _logged:
            _logged.add((device.type, chosen))
            _log.info("huenet: backend 'auto' chose %r for %s tensors", chosen, device.type)
        return REGISTRY[chosen]
    if backend == "triton":
        reason = _triton_unavailable(device.type)
        if reason is not None:
            raise RuntimeError(f"{op}: backend='triton' was requested, but {reason}; use backend='eager' or 'auto'.")
    return REGISTRY[backend]


__all__ = ["BACKENDS", "ENV_VAR", "REGISTRY", "Backend", "resolve"]
