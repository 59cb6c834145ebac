"""Speed and memory of huenet.recolor: fit one pair at a 256-px longest side, apply a LUT to 12 megapixels.

    python -m pytest bench/test_recolor_bench.py --benchmark-only

Targets (issue 9, 2-core CPU): fit <= 1 s median, apply <= 2 s and <= 1 GB extra memory. The reference each
figure is compared with, measured in the same run, is the per-channel histogram matching baseline on the
same 12-MP image (a classical method a user would otherwise run). CUDA rows skip without CUDA.
"""

from __future__ import annotations

import pytest
import torch

from huenet.colortransfer.baselines import histogram_matching
from huenet.recolor import ColorLUT, fit

from .memory import peak_memory

TWELVE_MP = (3000, 4000)
FIT_SIDE = (192, 256)


def _devices():
    cuda = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))
    return ["cpu", cuda]


def _photo_like(shape, device, seed=0) -> torch.Tensor:
    """Smooth colour gradients plus noise: many distinct colours, like a photo."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    x = torch.linspace(0, 1, w)[None].expand(h, w)
    image = torch.stack([x, y, (x + y) / 2]) * 0.8 + 0.2 * torch.rand(3, h, w, generator=g)
    return image.to(device)


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("device", _devices())
def test_fit_256px(benchmark, device):
    source, target = _photo_like(FIT_SIDE, device), _photo_like(FIT_SIDE, device, seed=1).flip(0)
    fit(source, target, steps=2)  # warm-up: first-call imports and allocations

    def run():
        lut = fit(source, target)
        _sync(device)
        return lut

    benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info.update(case="recolor.fit", size="256x192", device=device)


@pytest.mark.parametrize("device", _devices())
def test_apply_12mp(benchmark, device):
    image = _photo_like(TWELVE_MP, device)
    lut = ColorLUT(fit(_photo_like(FIT_SIDE, device), _photo_like(FIT_SIDE, device, seed=1).flip(0), steps=5).table)

    def run():
        out = lut(image)
        _sync(device)
        return out

    run()
    peak, method = peak_memory(run, torch.device(device))
    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info.update(
        case="recolor.apply",
        size="4000x3000",
        device=device,
        peak_bytes=peak,
        memory_method=method,
        output_bytes=image.numel() * image.element_size(),
    )
    assert peak <= 2**30, f"apply needed {peak / 2**20:.0f} MiB extra"


def test_histogram_matching_12mp_reference(benchmark):
    image = _photo_like(TWELVE_MP, "cpu")[None]
    target = _photo_like(FIT_SIDE, "cpu", seed=1)[None]
    benchmark.pedantic(lambda: histogram_matching(image, target), rounds=1, iterations=1)
    benchmark.extra_info.update(case="baselines.histogram_matching (reference)", size="4000x3000", device="cpu")
