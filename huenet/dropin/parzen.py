r"""Weighted joint Parzen histograms on explicit bin centres, the core of the MONAI-compatible mutual
information (``huenet.dropin.registration``) and of HistoGAN's RGB-uv histogram (``huenet.dropin.rgb_uv``).

For values x, y (M, N), weights w (M, N) and one window per axis, :func:`parzen_joint` returns the raw sums

.. math::
    T_{m k_1 k_2} = \sum_n w_{mn}\, a_{k_1}(x_{mn})\, b_{k_2}(y_{mn})

with a, b the windows' weights at the bin centres (``huenet/kernels/parzen_windows.py`` has the shapes). The
eager and Triton backends never hold an (M, N, K) tensor; "reference" does, as the libraries it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _checks
from ..backends import DEFAULT_BACKEND, resolve

SHAPES = ("gaussian", "inverse-quadratic", "b-spline", "box")


@dataclass(frozen=True)
class ParzenWindow:
    """A window shape, its scale s (``gaussian``: exp(-s d²); ``inverse-quadratic``: 1/(1 + s d²); ``b-spline``
    and ``box``: of s·|d|) and whether each value's weights are normalised to sum to one over the bins."""

    shape: str
    scale: float
    normalized: bool = False


def parzen_joint(
    op: str,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    centres: tuple[torch.Tensor, torch.Tensor],
    windows: tuple[ParzenWindow, ParzenWindow],
    backend: str = DEFAULT_BACKEND,
) -> torch.Tensor:
    """Raw weighted joint sums T (M, K, K) of x, y (M, N) with weights w (M, N) or None.

    ``centres`` are the increasing (K,) bin centres of x and of y, in x's dtype and device; ``op`` names the
    public op in error messages. Differentiable in x, y and w on every backend.

    Example:
        >>> x, y = torch.rand(2, 100), torch.rand(2, 100)
        >>> c = torch.linspace(0, 1, 16)
        >>> g = ParzenWindow("gaussian", 200.0, normalized=True)
        >>> t = parzen_joint("demo", x, y, None, (c, c), (g, g))
        >>> t.shape, torch.allclose(t.sum((1, 2)), torch.tensor(100.0))  # each value's weights sum to 1
        (torch.Size([2, 16, 16]), True)
    """
    for window in windows:
        _checks.check_choice(op, "window shape", window.shape, SHAPES)
    return resolve(op, backend, x.device).parzen_joint(x, y, w, centres, windows)
