"""Public soft-histogram ops: argument checks, dtype policy and backend dispatch around the backends."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from . import _checks
from .backends import DEFAULT_BACKEND, resolve
from .binning import Binning

# Hue-Net's soft histogram: 256 bins of [0, 1] and a kernel 0.4 bins wide (the paper's defaults), mirrored
# at the ends of the range so that values near them keep their full weight.
DEFAULT_BINS = 256
DEFAULT_RANGE = (0.0, 1.0)
DEFAULT_BANDWIDTH = 0.4
DEFAULT_BOUNDARY = "reflect"


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype the public ops compute in: the inputs' promoted dtype, with float16/bfloat16 raised to float32
    because sigmoid tails and sums over 10⁵ pixels need fp32."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def make_binning(op: str, bins: int, value_range, bandwidth: float, boundary: str) -> Binning:
    """Check the binning arguments of ``op`` and bundle them."""
    bins = _checks.check_bins(op, bins)
    lo, hi = _checks.check_range(op, value_range)
    bandwidth = _checks.check_bandwidth(op, bandwidth)
    _checks.check_choice(op, "boundary", boundary, _checks.BOUNDARIES)
    return Binning(bins, lo, hi, bandwidth, boundary)


def _compute(op: str, fn: str, images: dict[str, torch.Tensor], weight, binning: Binning, backend: str, validate: bool):
    """Run backend function ``fn`` on images flattened to (B·C, N) in bin units; return its result as
    (B, C, ...) and the backend that computed it (resolved here, once per call).

    Inputs are computed in ``compute_dtype`` with autocast switched off inside (:func:`run_backend`). A (b, c)
    whose pixels or weights hold NaN or ±inf gives a NaN row, never a finite number that silently ignores them.
    """
    names = list(images)
    first = _checks.check_image(op, names[0], images[names[0]])
    for name in names[1:]:
        _checks.check_image(op, name, images[name])
        _checks.check_same(op, name, images[name], names[0], first)
    tensors = list(images.values())
    if weight is not None:
        tensors.append(_checks.check_weight(op, weight, first, validate))
    if validate:
        for name, t in zip(names + ["weight"], tensors):
            _checks.check_finite(op, name, t)
    impl = resolve(op, backend, first.device)
    out = run_backend(impl, fn, tensors[: len(names)], tensors[len(names)] if weight is not None else None, binning)
    ok = torch.stack([torch.isfinite(t).flatten(2).all(-1) for t in tensors]).all(0)
    bad = ~ok if weight is None else ~ok | _checks.weight_faults(tensors[-1])
    # masked_fill takes the NaN as a scalar: no tensor made per call (a fill launch on a GPU).
    return out.masked_fill(bad.reshape(*out.shape[:2], *([1] * (out.ndim - 2))), float("nan")), impl


def run_backend(impl, fn: str, images: list[torch.Tensor], weight: torch.Tensor | None, binning: Binning):
    """Backend ``impl``'s function ``fn`` on images (B, C, *spatial) of one shape with a weight of that shape
    (or None), in ``compute_dtype`` with autocast off; returns (B, C, ...).

    No checks and no NaN rows: callers that already know their inputs are finite, of one shape and of positive
    weight (the public ops after their checks, an optimisation loop on its own tensors) call this directly.
    """
    tensors = images if weight is None else [*images, weight]
    dtype = compute_dtype(*tensors)
    b, c = images[0].shape[:2]
    flat = [t.to(dtype).reshape(b * c, -1) for t in tensors]
    with torch.autocast(device_type=images[0].device.type, enabled=False):
        units = [binning.to_bin_units(t) for t in flat[: len(images)]]
        out = getattr(impl, fn)(*units, flat[len(images)] if weight is not None else None, binning.in_bin_units())
    return out.reshape(b, c, *out.shape[1:])


def soft_histogram(
    x: torch.Tensor,
    bins: int = DEFAULT_BINS,
    range=DEFAULT_RANGE,
    bandwidth: float = DEFAULT_BANDWIDTH,
    boundary: str = DEFAULT_BOUNDARY,
    weight: torch.Tensor | None = None,
    backend: str = DEFAULT_BACKEND,
    validate: bool = False,
) -> torch.Tensor:
    r"""Differentiable histogram by kernel density estimation with a sigmoid-difference kernel.

    .. math::
        p_k = \frac{\sum_x w(x)\, m_k(z_x)}{\sum_x w(x)},\qquad
        \pi_k(z) = \sigma\!\left(\frac{z - e_k}{W}\right) - \sigma\!\left(\frac{z - e_{k+1}}{W}\right)

    with edges :math:`e_k = lo + kL`, :math:`L = (hi - lo)/K`, :math:`W = \text{bandwidth}\cdot L`, and
    :math:`m_k` the kernel plus its mirror images (``"reflect"``: at 2lo - z and 2hi - z), its periodic images
    (``"circular"``: values wrapped into [lo, hi), images at z ± (hi - lo)) or the bare kernel (``"none"``).

    Args:
        x: images of shape (B, C, *spatial), any float dtype; values are expected in ``range`` (reflect folds
            values up to one range width outside back in; circular wraps any value).
        bins: number of bins K >= 2.
        range: (lo, hi) with lo < hi.
        bandwidth: kernel width W in bin widths; 0.4 is Hue-Net's default.
        boundary: "reflect", "circular" or "none".
        weight: optional non-negative per-pixel weights, (B, C, *spatial) or (B, 1, *spatial), with a positive
            sum per (b, c); e.g. saturation, so that grey pixels do not vote for a hue.
        backend: "auto", "eager", "reference" or "triton"; ``HUENET_BACKEND`` overrides "auto".
        validate: raise ValueError on NaN/inf inputs instead of returning NaN rows, and on negative or
            zero-sum weights on a GPU too (on the CPU these always raise; on a GPU they give NaN rows by
            default, because the check costs a host sync).

    Returns:
        (B, C, bins), each row summing to 1 for "reflect" and "circular"; float32 for half inputs.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> soft_histogram(x, bins=64).shape
        torch.Size([2, 3, 64])
    """
    binning = make_binning("soft_histogram", bins, range, bandwidth, boundary)
    return _compute("soft_histogram", "soft_histogram", {"x": x}, weight, binning, backend, validate)[0]


def _joint_signature() -> inspect.Signature:
    """The joint ops' signature: :func:`soft_histogram`'s with a second image ``y`` after ``x``."""
    signature = inspect.signature(soft_histogram)
    x, *rest = signature.parameters.values()
    return signature.replace(parameters=[x, x.replace(name="y"), *rest])


JOINT_SIGNATURE = _joint_signature()


def joint_op(name: str, module: str, reduce: Callable, doc: str) -> Callable[..., torch.Tensor]:
    """The public op ``name`` of ``module`` (with docstring ``doc``) that takes the arguments of
    :func:`soft_histogram` and a second image ``y`` after ``x`` (:data:`JOINT_SIGNATURE`), and returns
    ``reduce(joint, impl)``: a function of the soft joint histogram (B, C, K, K) of x and y and of the backend
    ``impl`` that computed it, so that a reduction of the histogram runs on that backend too. Bad arguments are
    reported under ``name``."""

    def op(*args, **kwargs) -> torch.Tensor:
        try:
            bound = JOINT_SIGNATURE.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{name}(): {err}") from None
        bound.apply_defaults()
        a = bound.arguments
        binning = make_binning(name, a["bins"], a["range"], a["bandwidth"], a["boundary"])
        images = {"x": a["x"], "y": a["y"]}
        return reduce(*_compute(name, "joint_histogram", images, a["weight"], binning, a["backend"], a["validate"]))

    op.__name__ = op.__qualname__ = name
    op.__module__, op.__doc__, op.__signature__ = module, doc, JOINT_SIGNATURE
    return op


joint_histogram = joint_op(
    "joint_histogram",
    __name__,
    lambda joint, impl: joint,
    r"""Differentiable joint histogram :math:`J_{k_1 k_2} = \sum_x w\, m_{k_1}(x)\, m_{k_2}(y) / \sum_x w`.

    With unit weights this is :math:`P_1 P_2^\top / N` for the (K, N) membership matrices of x and y. The
    arguments are those of :func:`soft_histogram`; ``y`` has the shape of ``x``.

    Returns:
        (B, C, bins, bins); rows index the bins of ``x``, columns those of ``y``.

    Example:
        >>> x, y = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
        >>> joint_histogram(x, y, bins=32).shape
        torch.Size([2, 1, 32, 32])
    """,
)
