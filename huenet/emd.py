"""Earth mover's distance between histograms in closed form from their CDFs, linear and cyclic."""

from __future__ import annotations

import torch

from . import _checks
from .histogram import compute_dtype


def emd(p: torch.Tensor, q: torch.Tensor, order: int = 1, cyclic: bool = False) -> torch.Tensor:
    r"""EMD between histograms over the last dimension: :math:`(1/K)^{1/l}\,\lVert D \rVert_l`, D = CDF(p) - CDF(q).

    With ``order=1`` this is the 1-Wasserstein distance between the bin-centre distributions on the unit
    range; ``order=2`` is the official Hue-Net code's RMS of the CDF difference. ``cyclic=True`` (hue) first
    subtracts the median (l=1) or the mean (l=2) of D, the optimal cut of the circle (Rabin, Delon and
    Gousseau), which makes the result invariant to rotating both histograms together.

    Args:
        p, q: histograms of the same shape (..., K), K >= 2, normally each summing to 1.
        order: 1 or 2.
        cyclic: treat the bins as a circle.

    Returns:
        (...); float32 for half inputs. The l=2 gradient at p = q is 0 rather than NaN.

    Example:
        >>> p = torch.tensor([1.0, 0.0, 0.0, 0.0]); q = torch.tensor([0.0, 0.0, 0.0, 1.0])
        >>> emd(p, q), emd(p, q, cyclic=True)
        (tensor(0.7500), tensor(0.2500))
    """
    _checks.check_float_tensor("emd", "p", p)
    _checks.check_float_tensor("emd", "q", q)
    _checks.check_same("emd", "q", q, "p", p)
    if p.ndim < 1 or p.shape[-1] < 2:
        _checks.fail("emd", "p", "of shape (..., K) with K >= 2 bins", f"shape {tuple(p.shape)}")
    if isinstance(order, bool) or order not in (1, 2):
        _checks.fail("emd", "order", "1 or 2", repr(order))
    if not isinstance(cyclic, bool):
        _checks.fail("emd", "cyclic", "a bool", repr(cyclic), TypeError)
    dtype = compute_dtype(p, q)
    with torch.autocast(device_type=p.device.type, enabled=False):
        d = cumulative_sum(p.to(dtype) - q.to(dtype))
        if cyclic:
            shift = lower_median(d) if order == 1 else d.mean(-1, keepdim=True)
            d = d - shift
        if order == 1:
            return d.abs().mean(-1)
        mean_square = d.square().mean(-1)
        # sqrt has an infinite derivative at 0; identical histograms get the zero subgradient instead.
        # Only an exact zero is special-cased, so NaN still propagates.
        zero = mean_square == 0
        return torch.where(zero, 0.0, torch.sqrt(torch.where(zero, 1.0, mean_square)))


def _deterministic_cuda(t: torch.Tensor) -> bool:
    return t.is_cuda and torch.are_deterministic_algorithms_enabled()


def cumulative_sum(t: torch.Tensor) -> torch.Tensor:
    """``torch.cumsum`` over the last dimension, or, on CUDA under ``torch.use_deterministic_algorithms``
    (where CUDA's floating-point cumsum raises), a Hillis-Steele scan: log2(K) shifted adds in a fixed order.

    Example:
        >>> scan(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
        tensor([ 1.,  3.,  6., 10., 15.])
    """
    return scan(t) if _deterministic_cuda(t) else torch.cumsum(t, -1)


def scan(t: torch.Tensor) -> torch.Tensor:
    """Inclusive prefix sum over the last dimension by doubling shifts, deterministic on every device."""
    shift = 1
    while shift < t.shape[-1]:
        t = t + torch.nn.functional.pad(t[..., :-shift], (shift, 0))
        shift *= 2
    return t


def lower_median(d: torch.Tensor) -> torch.Tensor:
    """The lower median over the last dimension, keepdim, as ``median(-1)`` gives it; through a sort on CUDA
    under ``torch.use_deterministic_algorithms``, where ``median`` with indices raises.

    Example:
        >>> lower_median(torch.tensor([3.0, 1.0, 4.0, 2.0]))
        tensor([2.])
    """
    if _deterministic_cuda(d):
        middle = (d.shape[-1] - 1) // 2
        return d.sort(-1).values[..., middle : middle + 1]
    return d.median(-1, keepdim=True).values
