"""The device's two ceilings, measured in the benchmark session: copy bandwidth and matrix-product rate (CUDA).

The report divides each case's must-move bytes by the copy bandwidth to get its bandwidth floor. Datasheet
rates are only leads, so the copy is measured here: a large device-to-device copy, counting bytes read plus
bytes written, timed with CUDA events after warm-up. The matrix-product rates (fp32 with TF32 allowed, bf16,
on random data) are recorded next to the report's assumed datasheet peak.
"""

from __future__ import annotations

import torch

COPY_BYTES = 1 << 30  # per buffer: far beyond any L2
MATMUL_N = 8192
WARMUP, REPEATS = 3, 10


def _event_time(fn, repeats: int) -> float:
    """Mean seconds per call of ``fn``, timed with CUDA events after warm-up."""
    for _ in range(WARMUP):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / 1e3 / repeats


def _copy_bandwidth(device) -> float:
    src = torch.rand(COPY_BYTES // 4, device=device)
    dst = torch.empty_like(src)
    seconds = _event_time(lambda: dst.copy_(src), 2 * REPEATS)
    return 2 * COPY_BYTES / seconds


def _matmul_rate(device, dtype: torch.dtype) -> float:
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(MATMUL_N, MATMUL_N, device=device, generator=gen).to(dtype)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device, generator=gen).to(dtype)
    seconds = _event_time(lambda: a @ b, REPEATS)
    return 2 * MATMUL_N**3 / seconds


def measure(device: torch.device) -> dict | None:
    """Ceilings of ``device`` (CUDA only; None elsewhere)."""
    if device.type != "cuda":
        return None
    allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        return {
            "gpu": torch.cuda.get_device_name(device),
            "copy_bytes_per_s": _copy_bandwidth(device),
            "copy_method": f"dst.copy_(src) of {COPY_BYTES >> 20} MiB, (read + written bytes) / time, CUDA events",
            "matmul_tf32_flops_per_s": _matmul_rate(device, torch.float32),
            "matmul_bf16_flops_per_s": _matmul_rate(device, torch.bfloat16),
            "matmul_method": f"{MATMUL_N}^3 random matrix product, 2·n³ / time, CUDA events",
        }
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        torch.cuda.empty_cache()
