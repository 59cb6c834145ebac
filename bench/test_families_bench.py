"""Speed and peak memory of the neighbours' losses against the libraries they replace, side by side in one run.

    python -m pytest bench/test_families_bench.py --benchmark-only [--benchmark-json=out.json]

* 3-D mutual information: forward + backward of ``huenet.GlobalMutualInformationLoss`` against MONAI's
  ``GlobalMutualInformationLoss`` on (1, 1, 96, 96, 96) with 32 bins, Gaussian and B-spline. Targets (issue
  "drop-in losses", 2-core CPU): >= 10x less extra peak memory than MONAI, and faster. The peak is also measured
  at 64³, and the line through the two points gives the largest cube that fits in 8 GB.
* RGB-uv histogram: forward + backward of ``huenet.RGBuvHistogramLoss`` against the dense HistoGAN formula
  (``dense_rgb_uv_histogram`` below, the (pixels × bins) matrices of ``RGBuvHistBlock`` without its resize) on a
  batch of 8 at 256², 64 bins. Targets: >= 10x less extra peak memory, and faster.

huenet runs on "eager" on the CPU and "triton" on CUDA (rows skip without a GPU). The comparison table is
printed at the end and written to $HUENET_FAMILIES_OUT (a .md path) when set.
"""

from __future__ import annotations

import math
import os
import time

import pytest
import torch

import huenet

from .conftest import describe_machine
from .memory import peak_memory

monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the baseline (pip install monai)")

EIGHT_GB = 8 * 2**30
ROWS: list[dict] = []


def _devices():
    cuda = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))
    return ["cpu", cuda]


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def dense_rgb_uv_histogram(
    images: torch.Tensor, bins: int = 64, sigma: float = 0.02, eps: float = 1e-6
) -> torch.Tensor:
    """HistoGAN's RGB-uv histogram as its block computes it (inverse-quadratic, intensity-scaled), no resize:
    (N, bins) kernel matrices per channel and image, multiplied."""
    x = images.clamp(0, 1).flatten(2)
    centres = torch.linspace(-3.0, 3.0, bins, dtype=x.dtype, device=x.device)
    intensity = torch.sqrt((x * x).sum(1) + eps).unsqueeze(-1)
    logs = torch.log(x + eps)
    hists = []
    for c, p, q in ((0, 1, 2), (1, 0, 2), (2, 0, 1)):
        ku = 1 / (1 + ((logs[:, c] - logs[:, p]).unsqueeze(-1) - centres).abs() ** 2 / sigma**2)
        kv = 1 / (1 + ((logs[:, c] - logs[:, q]).unsqueeze(-1) - centres).abs() ** 2 / sigma**2)
        hists.append((intensity * ku).transpose(1, 2) @ kv)
    h = torch.stack(hists, 1)
    return h / (h.sum((1, 2, 3), keepdim=True) + eps)


def dense_hellinger(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    diff = torch.sqrt(dense_rgb_uv_histogram(target)) - torch.sqrt(dense_rgb_uv_histogram(output))
    return (torch.linalg.vector_norm(diff.flatten(1), dim=1) / math.sqrt(2.0)).mean()


def _measure(benchmark, step, device, case, impl, extra=None):
    step()  # warm-up: first-call imports, kernels, allocations
    _sync(device)
    peak, method = peak_memory(step, torch.device(device))
    benchmark.pedantic(lambda: (step(), _sync(device)), rounds=3, iterations=1)
    row = {
        "case": case,
        "impl": impl,
        "device": device,
        "median_s": benchmark.stats.stats.median,
        "peak_bytes": peak,
        "memory_method": method,
        "load_average": os.getloadavg()[0],
        **(extra or {}),
    }
    benchmark.extra_info.update(row)
    ROWS.append(row)


def _mi_step(loss, side, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(1, 1, side, side, side, generator=g).to(device)
    target = (pred**2 + 0.1 * torch.rand(pred.shape, generator=g).to(device)).clamp(0, 1)

    def step():
        p = pred.clone().requires_grad_()
        loss(p, target).backward()

    return step


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("kernel", ["gaussian", "b-spline"])
@pytest.mark.parametrize("impl", ["monai", "huenet"])
def test_mutual_information_3d(benchmark, impl, kernel, device):
    if impl == "monai":
        loss = monai_losses.GlobalMutualInformationLoss(kernel, 32)
    else:
        loss = huenet.GlobalMutualInformationLoss(kernel, 32, backend="triton" if device == "cuda" else "eager")
    small = _mi_step(loss, 64, device)
    small()
    small_peak, _ = peak_memory(small, torch.device(device))
    # The slope of the peak in voxels, from 64³ to 96³, extrapolated to the largest cube under 8 GB.
    step = _mi_step(loss, 96, device)
    step()
    big_peak, _ = peak_memory(step, torch.device(device))
    slope = max(big_peak - small_peak, 1) / (96**3 - 64**3)
    side = int(((EIGHT_GB - big_peak) / slope + 96**3) ** (1 / 3))
    extra = {"peak_64_bytes": small_peak, "largest_side_8gb": side}
    _measure(benchmark, step, device, f"MI 3-D {kernel} (1,1,96,96,96) K=32", impl, extra)


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("impl", ["dense", "huenet"])
def test_rgb_uv_loss(benchmark, impl, device):
    g = torch.Generator().manual_seed(1)
    output = torch.rand(8, 3, 256, 256, generator=g).to(device)
    target = torch.rand(8, 3, 256, 256, generator=g).to(device)
    if impl == "dense":
        loss = dense_hellinger
    else:
        loss = huenet.RGBuvHistogramLoss(64, backend="triton" if device == "cuda" else "eager")

    def step():
        o = output.clone().requires_grad_()
        loss(o, target).backward()

    _measure(benchmark, step, device, "RGB-uv Hellinger (8,3,256,256) K=64", impl)


def _table() -> str:
    lines = [
        "| case | device | impl | median s | extra peak MiB | time ratio | memory ratio | largest cube in 8 GB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        base = next(
            (r for r in ROWS if r["case"] == row["case"] and r["device"] == row["device"] and r["impl"] != "huenet"),
            None,
        )
        ratio_t = ratio_m = ""
        if base is not None and row["impl"] == "huenet":
            ratio_t = f"{base['median_s'] / row['median_s']:.1f}x faster"
            ratio_m = f"{base['peak_bytes'] / max(row['peak_bytes'], 1):.1f}x less"
        side = f"{row['largest_side_8gb']}³" if "largest_side_8gb" in row else ""
        lines.append(
            f"| {row['case']} | {row['device']} | {row['impl']} | {row['median_s']:.3f} | "
            f"{row['peak_bytes'] / 2**20:.0f} | {ratio_t} | {ratio_m} | {side} |"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def _report():
    started = time.strftime("%Y-%m-%d %H:%M")
    yield
    if not ROWS:
        return
    machine = describe_machine()
    text = (
        f"Measured {started} on {machine['cpu_model']} ({machine.get('usable_cores')} usable cores, torch "
        f"{machine['torch']} with {machine['torch_num_threads']} threads), GPU {machine['gpu']}; load average "
        f"during the rows {min(r['load_average'] for r in ROWS):.1f}-{max(r['load_average'] for r in ROWS):.1f}. "
        f"Peak memory: {ROWS[0]['memory_method']}.\n\n" + _table() + "\n"
    )
    print("\n" + text)
    out = os.environ.get("HUENET_FAMILIES_OUT")
    if out:
        with open(out, "w") as f:
            f.write(text)
