"""Seeded test inputs shared by the core-op test modules, and broken files for the command lines."""

from pathlib import Path

import torch


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
