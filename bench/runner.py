"""Measure one grid point with pytest-benchmark: warm up, take peak memory, time, and record everything.

Order per point: warm-up call(s) (compilation, autotuning, lazy allocations; on CUDA until WARMUP_S has passed),
one untimed call for peak memory (bench/memory.py), then the timed rounds. Rounds come from the warm-up's
per-call time so that a case takes about TARGET_S of timing (the dense reference takes seconds a call on a
CPU, the kernels microseconds on a GPU). Times are host wall-clock times of whole calls; on CUDA each call
ends with a synchronize, so they include the device work and the launch overheads a user pays.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from . import cases, memory
from .grid import Point

TARGET_S = float(os.environ.get("HUENET_BENCH_TARGET_S", "1"))
MIN_ROUNDS, MAX_ROUNDS = 2, 200
WARMUP_S, MIN_WARMUP_CALLS_CUDA = 0.2, 3
TIME_METHOD = "time.perf_counter around each call; CUDA calls end with torch.cuda.synchronize"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def _warm_up(workload: cases.Workload, device: torch.device) -> tuple[torch.Tensor, float]:
    """Run until warm; return the last result and the time of the last call."""
    calls, start = 0, time.perf_counter()
    while True:
        t0 = time.perf_counter()
        value = workload.call()
        last = time.perf_counter() - t0
        calls += 1
        if device.type != "cuda" or (calls >= MIN_WARMUP_CALLS_CUDA and time.perf_counter() - start >= WARMUP_S):
            return value, last


def _prepare(point: Point, device: torch.device):
    """Build and warm up the workload, and measure its peak memory. An error fails the point, whatever the backend:
    only a dense baseline running out of device memory is skipped, as a measured limit of that baseline."""
    try:
        workload = cases.build(point, device)
        value, per_call = _warm_up(workload, device)
        t0 = time.perf_counter()
        peak, method = memory.peak_memory(workload.call, device)
        per_call = min(per_call, time.perf_counter() - t0)
    except torch.OutOfMemoryError:
        if point.backend not in cases.DENSE_BACKENDS:
            raise
        pytest.skip(f"{point.backend}: out of memory on {device_name(device)}")
    return workload, value, per_call, peak, method


def measure(benchmark, point: Point, device: torch.device, results: list[dict]) -> None:
    """Benchmark ``point`` on ``device``; append its row (extra_info plus times) to ``results``."""
    workload, value, per_call, peak, method = _prepare(point, device)
    assert torch.isfinite(value).all(), f"{point}: non-finite result {value}"
    rounds = int(max(MIN_ROUNDS, min(MAX_ROUNDS, TARGET_S // max(per_call, 1e-6))))
    size = point.size
    benchmark.group = point.group
    benchmark.extra_info.update(
        case=point.case,
        mode=point.mode,
        backend=point.backend,
        batch=size.batch,
        channels=size.channels,
        side=size.side,
        bins=size.bins,
        width=size.width,
        pixels=size.pixels,
        dtype="float32",
        device=device.type,
        device_name=device_name(device),
        peak_mem_bytes=peak,
        mem_method=method,
        rounds=rounds,
        input_sets=workload.input_sets,
        min_bytes=workload.min_bytes,
        joint_flops=workload.joint_flops,
        note=workload.note,
        time_method=TIME_METHOD,
        torch_threads=torch.get_num_threads(),
        loadavg_1m_at_start=os.getloadavg()[0],
        value=float(value.sum()),
    )
    benchmark.pedantic(workload.call, rounds=rounds, iterations=1, warmup_rounds=0)

    stats = getattr(getattr(benchmark, "stats", None), "stats", None)  # None under --benchmark-disable
    results.append(
        dict(benchmark.extra_info, **{f"{k}_s": getattr(stats, k, None) for k in ("median", "mean", "min", "stddev")})
    )
