"""Argument checks shared by the public ops.

Every check raises with a message of the form ``"<op>: `<arg>` must be <expected>; got <given>"`` so a user
can tell at once which argument was wrong and why.
"""

from __future__ import annotations

import math
from numbers import Real

import torch

BOUNDARIES = ("reflect", "circular", "none")
DEFAULT_REDUCTION = "mean"
REDUCTIONS = (DEFAULT_REDUCTION, "sum", "none")


def fail(op: str, arg: str, expected: str, given: object, exc: type[Exception] = ValueError) -> None:
    raise exc(f"{op}: `{arg}` must be {expected}; got {given}")


def check_float_tensor(op: str, arg: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        fail(op, arg, "a torch.Tensor", type(t).__name__, TypeError)
    if not t.is_floating_point():
        fail(op, arg, "a floating-point tensor (float16, bfloat16, float32 or float64)", f"dtype {t.dtype}", TypeError)
    if t.numel() == 0:
        fail(op, arg, "non-empty", f"shape {tuple(t.shape)}")
    return t


def check_image(op: str, arg: str, t: object) -> torch.Tensor:
    check_float_tensor(op, arg, t)
    if t.ndim < 3:
        fail(op, arg, "of shape (B, C, *spatial) with at least one spatial dimension", f"shape {tuple(t.shape)}")
    return t


def check_same(op: str, arg: str, t: torch.Tensor, ref_arg: str, ref: torch.Tensor) -> None:
    if t.shape != ref.shape:
        fail(op, arg, f"of the same shape as `{ref_arg}` {tuple(ref.shape)}", f"shape {tuple(t.shape)}")
    if t.device != ref.device:
        fail(op, arg, f"on the same device as `{ref_arg}` ({ref.device})", f"device {t.device}")


def check_weight(op: str, weight: object, x: torch.Tensor, validate: bool = False) -> torch.Tensor:
    """Check a per-pixel weight of shape (B, C, *spatial) or (B, 1, *spatial) and expand it to x's shape.

    Negative weights and weights summing to zero raise on the CPU, or anywhere with ``validate=True``. On a GPU
    that check would cost a host sync per call (and forbid CUDA-graph capture), so by default it is left to
    the device: the caller turns the rows that ``weight_faults`` marks into NaN, never a wrong finite number.
    """
    check_float_tensor(op, "weight", weight)
    if weight.device != x.device:
        fail(op, "weight", f"on the same device as `x` ({x.device})", f"device {weight.device}")
    ok_shape = (
        weight.ndim == x.ndim
        and weight.shape[0] == x.shape[0]
        and weight.shape[1] in (1, x.shape[1])
        and weight.shape[2:] == x.shape[2:]
    )
    if not ok_shape:
        expected = f"of shape (B, C, *spatial) = {tuple(x.shape)} or (B, 1, *spatial)"
        fail(op, "weight", expected, f"shape {tuple(weight.shape)}")
    if validate or weight.device.type == "cpu":
        _check_weight_values(weight, op)
    return weight.expand_as(x)


def weight_faults(weight: torch.Tensor) -> torch.Tensor:
    """(B, C) bool on the weight's device, without a host sync: rows with a negative weight or a zero sum."""
    flat = weight.flatten(2)
    return (flat < 0).any(-1) | (flat.sum(-1) == 0)


# A custom op so that torch.compile keeps the data-dependent check inside the graph as one opaque call,
# instead of breaking the graph (and recompiling) at the host sync.
@torch.library.custom_op("huenet::check_weight_values", mutates_args=())
def _check_weight_values(weight: torch.Tensor, op: str) -> None:
    negative, zero_sum = torch.stack([(weight < 0).any(), (weight.flatten(2).sum(-1) == 0).any()]).tolist()
    if negative:
        fail(op, "weight", "non-negative", "negative values")
    if zero_sum:
        fail(
            op,
            "weight",
            "of positive sum over the spatial dimensions for every (batch, channel)",
            "weights summing to 0",
        )


@_check_weight_values.register_fake
def _(weight, op):
    return None


def check_finite(op: str, arg: str, t: torch.Tensor) -> None:
    if not bool(torch.isfinite(t).all()):
        fail(op, arg, "finite (validate=True)", "NaN or infinite values")


def check_bins(op: str, bins: object) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        fail(op, "bins", "an int >= 2", repr(bins))
    return bins


def check_range(op: str, value_range: object) -> tuple[float, float]:
    numbers = (
        isinstance(value_range, (tuple, list))
        and len(value_range) == 2
        and all(isinstance(v, Real) and not isinstance(v, bool) for v in value_range)
    )
    if not numbers:
        fail(op, "range", "a pair (lo, hi) of numbers", repr(value_range))
    lo, hi = float(value_range[0]), float(value_range[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        fail(op, "range", "a pair of finite numbers with lo < hi", repr(value_range))
    return lo, hi


def check_bandwidth(op: str, bandwidth: object) -> float:
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, Real) or not math.isfinite(bandwidth) or bandwidth <= 0:
        fail(op, "bandwidth", "a finite number > 0 (in bin widths)", repr(bandwidth))
    return float(bandwidth)


def check_choice(op: str, arg: str, value: object, choices: tuple) -> None:
    if value not in choices:
        fail(op, arg, "one of " + ", ".join(repr(c) for c in choices), repr(value))
