"""Seeded test inputs shared by the core-op test modules, and broken files for the command lines."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import BACKENDS, BOUNDARIES, DTYPES, TINY


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float tensor (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def rand(shape, lo=0.0, hi=1.0, dtype=torch.float64, seed=0):
    """Uniform values in [lo, hi), drawn in float64 from a seeded generator, then cast to ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    return (lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)).to(dtype)


def make_weight(kind, x, seed=7):
    """None, or positive weights shaped like x ("full") or with one channel ("bcast")."""
    if kind is None:
        return None
    shape = list(x.shape)
    if kind == "bcast":
        shape[1] = 1
    return rand(tuple(shape), 0.1, 2.0, x.dtype, seed)


def op_grid(test):
    """Parametrise an op test over every backend, boundary, weight kind (:func:`make_weight`) and dtype."""
    for mark in (
        pytest.mark.parametrize("backend", BACKENDS),
        pytest.mark.parametrize("boundary", BOUNDARIES),
        pytest.mark.parametrize("weight_kind", [None, "full", "bcast"]),
        pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"]),
    ):
        test = mark(test)
    return test


def train_tiny(out: Path, **settings) -> Path:
    """Train a tiny run into the folder ``out`` (the settings of ``TINY``, with ``settings`` over them); returns
    ``out``."""
    from huenet.colortransfer.training.options import TrainConfig
    from huenet.colortransfer.training.train import train

    train(TrainConfig(**{**TINY, "out": str(out), **settings}))
    return out


def bad_checkpoints(folder: Path, good: Path) -> dict[str, Path]:
    """Files that are not checkpoints, each named checkpoint.pt in its own sub-folder of ``folder``: the first
    half of the real checkpoint ``good``, another program's .pt, a zip, an image."""
    import zipfile

    from huenet.colortransfer.data.synthetic import SyntheticImages

    made = {}
    for kind in ("truncated", "unrelated", "zip", "image"):
        path = folder / kind / "checkpoint.pt"
        path.parent.mkdir(parents=True)
        if kind == "truncated":
            data = good.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif kind == "unrelated":
            torch.save({"weights": torch.ones(3)}, path)
        elif kind == "zip":
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("readme.txt", "not a checkpoint")
        else:
            SyntheticImages(2, 16).load(0).save(path, format="PNG")
        made[kind] = path
    return made
