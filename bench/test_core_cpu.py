"""CPU benchmarks of the core ops: "reference" (dense, paper-style) vs "eager" (windowed) backends.

Cases (B=4, 3x128x128 RGB in [0,1], K=256 bins, float32):
  * core-loss-fwd-bwd: HistogramEMDLoss(channels="h")(x, t) + MutualInformationLoss()(x, s), then backward
  * soft_histogram-fwd-{reflect,circular}: forward only
  * soft_histogram-fwd-bwd-{reflect,circular}: forward + backward of hist.square().sum()

Each case records benchmark.extra_info["peak_mem_bytes"] (extra resident memory of one call at its
peak, see bench/memory.py) and extra_info["mem_method"]. Rounds are chosen from the warm-up time so
that the whole file stays within a few minutes on a 2-core CPU (the reference backend takes seconds
per call at this size); set HUENET_BENCH_TARGET_S to change the per-case time budget.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from bench.memory import peak_rss_delta

huenet = pytest.importorskip("huenet", reason="huenet is not importable")
losses = pytest.importorskip("huenet.losses", reason="huenet.losses is not importable (not implemented yet?)")

B, C, H, W = 4, 3, 128, 128
BINS = 256
BACKENDS = ["reference", "eager"]
TARGET_S = float(os.environ.get("HUENET_BENCH_TARGET_S", "6"))
MIN_ROUNDS, MIN_ROUNDS_FAST, MAX_ROUNDS = 2, 5, 30


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, C, H, W, generator=g).requires_grad_(True)
    t = torch.rand(B, C, H, W, generator=g)
    s = torch.rand(B, C, H, W, generator=g)
    return x, t, s


def _run(benchmark, bench_results, group: str, backend: str, fn, info: dict) -> None:
    benchmark.group = group
    benchmark.extra_info.update(info)
    benchmark.extra_info.update(backend=backend, shape=[B, C, H, W], bins=BINS, dtype="float32", device="cpu",
                                torch_threads=torch.get_num_threads(),
                                loadavg_1m_at_start=os.getloadavg()[0])

    # Warm-up (also the correctness smoke check) and time one call to pick the number of rounds.
    t0 = time.perf_counter()
    value = fn()
    first = time.perf_counter() - t0
    assert torch.isfinite(torch.as_tensor(value)), f"{group}/{backend}: non-finite result {value}"
    benchmark.extra_info["value"] = float(value)

    t0 = time.perf_counter()
    peak, method = peak_rss_delta(fn, warmup=False)
    second = time.perf_counter() - t0
    benchmark.extra_info["peak_mem_bytes"] = peak
    benchmark.extra_info["mem_method"] = method

    # Slow cases (the reference takes seconds per call) get a few rounds, fast ones enough to be stable.
    per_call = max(min(first, second), 1e-6)
    floor = MIN_ROUNDS if per_call > 1.0 else MIN_ROUNDS_FAST
    rounds = int(max(floor, min(MAX_ROUNDS, TARGET_S // per_call)))
    benchmark.extra_info["rounds"] = rounds
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)

    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    bench_results[(group, backend)] = {
        "mean_s": getattr(stats, "mean", None),
        "min_s": getattr(stats, "min", None),
        "peak_mem_bytes": peak,
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_core_loss_fwd_bwd(benchmark, bench_results, backend):
    x, t, s = _inputs()
    emd = losses.HistogramEMDLoss(channels="h", bins=BINS, backend=backend)
    mi = losses.MutualInformationLoss(bins=BINS, backend=backend)

    def fn():
        loss = emd(x, t) + mi(x, s)
        loss.backward()
        x.grad = None  # keep nothing alive between calls (the grad is counted inside the call)
        return loss.detach()

    _run(benchmark, bench_results, "core-loss-fwd-bwd", backend, fn,
         {"case": 'HistogramEMDLoss(channels="h")(x,t) + MutualInformationLoss()(x,s); backward'})


@pytest.mark.parametrize("boundary", ["reflect", "circular"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_fwd(benchmark, bench_results, backend, boundary):
    x, _, _ = _inputs()
    x = x.detach()

    def fn():
        with torch.no_grad():
            p = huenet.soft_histogram(x, bins=BINS, boundary=boundary, backend=backend)
        return p.sum() / (B * C)

    _run(benchmark, bench_results, f"soft_histogram-fwd-{boundary}", backend, fn,
         {"case": f"soft_histogram(x, bins={BINS}, boundary={boundary!r}) under no_grad"})


@pytest.mark.parametrize("boundary", ["reflect", "circular"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_histogram_fwd_bwd(benchmark, bench_results, backend, boundary):
    x, _, _ = _inputs()

    def fn():
        p = huenet.soft_histogram(x, bins=BINS, boundary=boundary, backend=backend)
        loss = p.square().sum()
        loss.backward()
        x.grad = None
        return loss.detach()

    _run(benchmark, bench_results, f"soft_histogram-fwd-bwd-{boundary}", backend, fn,
         {"case": f"soft_histogram(x, bins={BINS}, boundary={boundary!r}).square().sum().backward()"})
