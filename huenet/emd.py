"""Earth mover's distance between histograms in closed form from their CDFs, linear and cyclic, and the sliced
EMD between point clouds built on it."""

from __future__ import annotations

import torch

from . import _checks
from .backends import DEFAULT_BACKEND
from .histogram import compute_dtype, soft_histogram

# The slices' soft histograms by default: 128 bins on [-1, 1], which holds the projection of any point of
# [-0.5, 0.5]^3 on a unit direction (at most sqrt(3)/2 long).
SLICED_BINS = 128
SLICED_RANGE = (-1.0, 1.0)
SLICED_BANDWIDTH = 0.8


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


def sliced_emd(
    x: torch.Tensor,
    y: torch.Tensor,
    directions: torch.Tensor,
    bins: int = SLICED_BINS,
    range=SLICED_RANGE,
    bandwidth: float = SLICED_BANDWIDTH,
    x_weight: torch.Tensor | None = None,
    y_weight: torch.Tensor | None = None,
    backend: str = DEFAULT_BACKEND,
) -> torch.Tensor:
    r"""Sliced earth mover's distance between weighted point clouds: the mean over directions of the 1-D EMD of
    their projections.

    .. math::
        SW_1(x, y) = \frac{1}{D} \sum_{d=1}^{D} (hi - lo)\, EMD\big(p(\theta_d^\top x),\, p(\theta_d^\top y)\big)

    with :math:`p` the soft histogram (:func:`huenet.soft_histogram`, ``"reflect"`` boundary) of the projections on
    ``range`` and EMD the closed form of :func:`emd` (order 1), so each slice is the 1-Wasserstein distance between
    the smoothed projected distributions, in the units of the points. Matching many slices matches the whole
    C-dimensional distribution, not only its marginals (Pitié's N-D transfer is sliced optimal transport).

    Args:
        x: (B, C, N) points (C coordinates each), any float dtype.
        y: (B, C, M) points; M may differ from N.
        directions: (D, C) unit vectors :math:`\theta_d`.
        bins, range, bandwidth: the soft histogram of every projection; projections are expected inside ``range``
            (the reflect boundary folds values up to one range width outside back in).
        x_weight, y_weight: optional non-negative weights (B, N) and (B, M), each with a positive sum per sample.
        backend: histogram backend, as in :func:`huenet.soft_histogram`.

    Returns:
        (B,) non-negative; float32 for half inputs. Differentiable in x, y and the weights.

    Example:
        >>> x = torch.rand(2, 3, 500) - 0.5
        >>> theta = torch.nn.functional.normalize(torch.randn(16, 3), dim=1)
        >>> sliced_emd(x, x, theta).abs().max() < 1e-6, sliced_emd(x, x + 0.2, theta).shape
        (tensor(True), torch.Size([2]))
    """
    op = "sliced_emd"
    if y.ndim == 3 and x.ndim == 3 and y.shape[:2] != x.shape[:2]:
        _checks.fail(op, "y", f"of shape (B, C, M) = ({x.shape[0]}, {x.shape[1]}, M)", f"shape {tuple(y.shape)}")
    hx = sliced_histograms(x, directions, bins, range, bandwidth, x_weight, backend, op, ("x", "x_weight"))
    hy = sliced_histograms(y, directions, bins, range, bandwidth, y_weight, backend, op, ("y", "y_weight"))
    return emd(hx, hy).mean(-1) * (float(range[1]) - float(range[0]))


def sliced_histograms(
    points: torch.Tensor,
    directions: torch.Tensor,
    bins: int = SLICED_BINS,
    range=SLICED_RANGE,
    bandwidth: float = SLICED_BANDWIDTH,
    weight: torch.Tensor | None = None,
    backend: str = DEFAULT_BACKEND,
    op: str = "sliced_histograms",
    names: tuple[str, str] = ("points", "weight"),
) -> torch.Tensor:
    """Soft histograms (B, D, bins) of the projections of points (B, C, N) on directions (D, C): the slices of
    :func:`sliced_emd`, for callers that compare many point clouds against one (its slices computed once).

    Example:
        >>> sliced_histograms(torch.rand(2, 3, 100) - 0.5, torch.eye(3), bins=16).shape
        torch.Size([2, 3, 16])
    """
    for arg, t, n in ((names[0], points, 3), ("directions", directions, 2)):
        _checks.check_float_tensor(op, arg, t)
        if t.ndim != n:
            _checks.fail(op, arg, "of shape (B, C, N)" if n == 3 else "of shape (D, C)", f"shape {tuple(t.shape)}")
    if directions.shape[1] != points.shape[1]:
        _checks.fail(op, "directions", f"of shape (D, {points.shape[1]})", f"shape {tuple(directions.shape)}")
    if weight is not None and (weight.ndim != 2 or weight.shape != (points.shape[0], points.shape[2])):
        _checks.fail(op, names[1], f"of shape {(points.shape[0], points.shape[2])}", f"shape {tuple(weight.shape)}")
    projected = torch.einsum("dc,bcn->bdn", directions.to(points.dtype), points)
    w = None if weight is None else weight[:, None].to(points.dtype)
    return soft_histogram(projected, bins, range, bandwidth, "reflect", w, backend)


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
