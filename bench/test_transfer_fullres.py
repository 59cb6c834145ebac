"""Time and peak memory of recolouring a 12-megapixel photo through a checkpoint (issue: <= 10 s, <= 1.5 GB).

``python -m pytest bench/test_transfer_fullres.py --benchmark-only -s``

The generator has a trained checkpoint's structure (image size 64, ngf 16, global curves) with its initial
weights: time and memory do not depend on the weights' values. The source is grace_hopper.jpg (matplotlib's
sample data) enlarged to 4000x3000; the target is another 12 MP image. Measured: :func:`transfer` as
``huenet.transfer`` runs it by default (the network at its 512-pixel working size, the refinement of its output by
``REFINE_STEPS`` steps of the training-free fit, the LUT fit and the full-resolution LUT pass), not the file
decode and encode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from huenet.colortransfer.commands.transfer import network_transfer
from huenet.colortransfer.methods.refine import REFINE_STEPS
from huenet.colortransfer.training.models import HueNetGenerator

from .memory import peak_rss_delta

SIZE = (4000, 3000)  # 12 MP
MAX_SECONDS, MAX_BYTES = 10.0, 1.5 * 2**30


@pytest.fixture(scope="module")
def photos():
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as image:
        photo = image.convert("RGB").resize(SIZE, Image.BICUBIC)
    source = torch.from_numpy(np.asarray(photo, dtype=np.float32) / 255).permute(2, 0, 1)
    return source, source.flip(1, 2)


def test_transfer_12mp(benchmark, photos):
    torch.manual_seed(0)
    generator = HueNetGenerator(64, 16).eval()
    source, target = photos

    def run():
        return network_transfer(generator, source, target, refine_steps=REFINE_STEPS)

    extra, method = peak_rss_delta(run)
    out = benchmark.pedantic(run, rounds=2, iterations=1)
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(
        megapixels=SIZE[0] * SIZE[1] / 1e6, extra_bytes=extra, memory_method=method, threads=torch.get_num_threads()
    )
    print(f"\n12 MP transfer: {seconds:.2f} s (best of 2), {extra / 2**20:.0f} MiB extra peak RSS ({method})")
    assert out.shape == (3, SIZE[1], SIZE[0])
    assert extra <= MAX_BYTES, f"{extra / 2**30:.2f} GiB > 1.5 GiB"
    assert seconds <= MAX_SECONDS, f"{seconds:.1f} s > {MAX_SECONDS} s"
