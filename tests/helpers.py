"""Seeded test inputs shared by the core-op test modules."""
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
