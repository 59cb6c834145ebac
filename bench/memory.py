"""Honest peak-memory measurement of one call of a benchmark case, on the CPU or on CUDA.

CUDA: reset the caching allocator's peak counter, call, and report max_memory_allocated() minus what was
allocated before the call (the inputs). This counts tensors, not the allocator's reserved-but-free blocks.

CPU, preferred method (Linux >= 4.0): reset the process's peak-RSS counter by writing "5" to
/proc/self/clear_refs, record VmRSS, run the case once, read VmHWM from /proc/self/status.
The reported number is VmHWM - VmRSS_before: the extra resident memory the case needed at its
peak (inputs that already exist before the call are not counted; everything the case allocates,
including autograd buffers and gradients, is).

Before the measured call we run the case once (so lazy one-time allocations such as thread pools
or cached constants are not billed to it), collect garbage and call glibc's malloc_trim(0) so freed
heap memory from the warm-up goes back to the OS and cannot be silently reused by the measured run
(which would make the peak look smaller than it is).

Fallback when clear_refs is not writable: run the case in a forked child. A fresh mm's high-water
mark starts at its current RSS, so ru_maxrss (child) - VmRSS (child, before the call) is the same
quantity. The method used is returned alongside the number.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing as mp
import os
import resource
from typing import Callable

import torch

__all__ = ["peak_memory", "peak_rss_delta", "proc_status"]

METHOD_CLEAR_REFS = "linux /proc/self/clear_refs=5 reset; VmHWM - VmRSS_before (after warm-up, gc, malloc_trim)"
METHOD_FORK = "forked child: ru_maxrss - VmRSS_before (after warm-up, gc, malloc_trim)"
METHOD_CUDA = "cuda: max_memory_allocated - memory_allocated_before, after reset_peak_memory_stats"


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in bytes."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, val = line.split(":", 1)
                out[key] = int(val.split()[0]) * 1024  # kB -> bytes
    return out


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # non-glibc: nothing to trim
        pass


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _measure_here(fn: Callable[[], object]) -> int:
    _trim()
    before = proc_status()["VmRSS"]
    if not _reset_hwm():
        raise OSError("clear_refs not writable")
    fn()
    peak = proc_status()["VmHWM"]
    return max(0, peak - before)


def _child(fn: Callable[[], object], conn) -> None:  # pragma: no cover - runs in the child
    try:
        _trim()
        before = proc_status()["VmRSS"]
        fn()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
        conn.send(("ok", max(0, peak - before)))
    except BaseException as e:  # noqa: BLE001 - report anything to the parent
        conn.send(("err", repr(e)))
    finally:
        conn.close()


def _measure_forked(fn: Callable[[], object]) -> int:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(fn, child))
    p.start()
    child.close()
    status, value = parent.recv()
    p.join()
    if status != "ok":
        raise RuntimeError(f"memory measurement in child failed: {value}")
    return int(value)


def peak_rss_delta(fn: Callable[[], object], *, warmup: bool = True) -> tuple[int, str]:
    """Return (peak extra resident bytes of one call of ``fn``, description of the method)."""
    if not os.path.exists("/proc/self/status"):
        raise RuntimeError("peak memory measurement needs Linux /proc")
    if warmup:
        fn()
    try:
        return _measure_here(fn), METHOD_CLEAR_REFS
    except OSError:
        return _measure_forked(fn), METHOD_FORK


def peak_cuda_delta(fn: Callable[[], object], device) -> tuple[int, str]:
    """Return (peak extra allocated CUDA bytes of one call of ``fn``, description of the method)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - before), METHOD_CUDA


def peak_memory(fn: Callable[[], object], device) -> tuple[int, str]:
    """Peak extra memory of one call of ``fn`` (already warmed up) on ``device``, and the method used."""
    if device.type == "cuda":
        return peak_cuda_delta(fn, device)
    return peak_rss_delta(fn, warmup=False)
