"""Speed and memory of huenet.recolor: fit one photo pair at a 256-px longest side, apply a LUT to 12 megapixels.

    python -m pytest bench/test_recolor_bench.py --benchmark-only

Targets (2-core CPU): fit <= 1 s median on real photos, apply <= 2 s and <= 1 GB extra memory. The
headline fit case is grace_hopper.jpg -> Minduka_Present_Blue_Pack.png from matplotlib's sample_data (shipped
with matplotlib, never downloaded), shrunk to a 256-px longest side. A noise case (nearly every colour cell
occupied, the worst case of the pooling, capped at ``MAX_CELLS``) runs as well. The reference each figure is
compared with, measured in the same run, is the per-channel histogram matching baseline on the same images (a
classical method a user would otherwise run). CUDA rows skip without CUDA.
"""

from __future__ import annotations

import pytest
import torch

from huenet.colortransfer.baselines import histogram_matching
from huenet.recolor import ColorLUT, fit

from .memory import peak_memory
from .recolor_quality import _shrink, load_photos

TWELVE_MP = (3000, 4000)
FIT_SIDE = 256


def _devices():
    cuda = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))
    return ["cpu", cuda]


@pytest.fixture(scope="module")
def photo_pair():
    """grace_hopper -> minduka at a 256-px longest side, or a skip that says why."""
    photos, missing = load_photos()
    for name in ("grace_hopper", "minduka"):
        if name not in photos:
            pytest.skip(f"matplotlib's sample photo {name} is unavailable ({missing.get(name)})")
    return _shrink(photos["grace_hopper"], FIT_SIDE), _shrink(photos["minduka"], FIT_SIDE)


def _noise(shape, device, seed=0) -> torch.Tensor:
    """Smooth colour gradients plus strong noise: almost every colour cell occupied (pooling's worst case)."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    x = torch.linspace(0, 1, w)[None].expand(h, w)
    image = torch.stack([x, y, (x + y) / 2]) * 0.8 + 0.2 * torch.rand(3, h, w, generator=g)
    return image.to(device)


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _bench_fit(benchmark, source, target, device, case):
    fit(source, target, steps=2)  # warm-up: first-call imports and allocations

    def run():
        lut = fit(source, target)
        _sync(device)
        return lut

    benchmark.pedantic(run, rounds=5, iterations=1)
    size = "x".join(map(str, source.shape[1:]))
    benchmark.extra_info.update(case=case, size=size, device=device, threads=torch.get_num_threads())


@pytest.mark.parametrize("device", _devices())
def test_fit_photo_256px(benchmark, photo_pair, device):
    source, target = (t.to(device) for t in photo_pair)
    _bench_fit(benchmark, source, target, device, "recolor.fit grace_hopper -> minduka")


@pytest.mark.parametrize("device", _devices())
def test_fit_noise_256px(benchmark, device):
    source, target = _noise((192, 256), device), _noise((192, 256), device, seed=1).flip(0)
    _bench_fit(benchmark, source, target, device, "recolor.fit noise")


def test_histogram_matching_photo_reference(benchmark, photo_pair):
    source, target = photo_pair
    benchmark.pedantic(lambda: histogram_matching(source[None], target[None]), rounds=5, iterations=1)
    benchmark.extra_info.update(case="baselines.histogram_matching (reference)", size="256 px", device="cpu")


@pytest.mark.parametrize("device", _devices())
def test_apply_12mp(benchmark, photo_pair, device):
    image = _noise(TWELVE_MP, device)
    source, target = (t.to(device) for t in photo_pair)
    lut = ColorLUT(fit(source, target, steps=5).table)

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
        threads=torch.get_num_threads(),
        peak_bytes=peak,
        memory_method=method,
        output_bytes=image.numel() * image.element_size(),
    )
    assert peak <= 2**30, f"apply needed {peak / 2**20:.0f} MiB extra"


def test_histogram_matching_12mp_reference(benchmark, photo_pair):
    image = _noise(TWELVE_MP, "cpu")[None]
    target = photo_pair[1][None]
    benchmark.pedantic(lambda: histogram_matching(image, target), rounds=1, iterations=1)
    benchmark.extra_info.update(case="baselines.histogram_matching (reference)", size="4000x3000", device="cpu")
