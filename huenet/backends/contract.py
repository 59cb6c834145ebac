"""What every histogram backend provides: the :class:`Backend` protocol.

A backend takes values already in bin units as (M, N) rows (``Binning.to_bin_units``), optional weights
(M, N) and the bin-unit ``Binning`` (``Binning.in_bin_units``), and computes

* ``soft_histogram(u, w, binning)`` -> (M, K),
* ``joint_histogram(ux, uy, w, binning)`` -> (M, K, K),
* ``entropies(joint)`` -> (M, 3), the (H(X,Y), H(X), H(Y)) of joint histograms (M, K, K) whose rows index X,
* ``parzen_joint(x, y, w, centres, windows)`` -> (M, K, K), the raw weighted joint sums of
  :func:`huenet.dropin.parzen.parzen_joint` (values in any unit, explicit bin centres, one window shape per axis),

all differentiable. The public ops (:mod:`huenet.histogram`) check the arguments, map values to bin units and
call one backend chosen by :func:`huenet.backends.resolve`; a backend does no checking of its own.

Example:
    >>> import torch
    >>> from huenet.backends import resolve
    >>> isinstance(resolve("soft_histogram", "reference", torch.device("cpu")), Backend)
    True
"""

from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

from torch import Tensor

from ..binning import Binning


@runtime_checkable
class Backend(Protocol):
    """The four differentiable functions of a histogram backend, and its name ("eager", "reference", ...)."""

    name: str

    def soft_histogram(self, u: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        """p[m, k] = sum_x w m_k(u[m, x]) / sum_x w: u, w (M, N) -> (M, K)."""
        ...

    def joint_histogram(self, x: Tensor, y: Tensor, w: Optional[Tensor], binning: Binning) -> Tensor:
        """J[m, k1, k2] = sum_x w m_k1(x) m_k2(y) / sum_x w: x, y, w (M, N) -> (M, K, K)."""
        ...

    def entropies(self, joint: Tensor) -> Tensor:
        """(H(X,Y), H(X), H(Y)) of joint histograms (M, K, K), stacked as (M, 3)."""
        ...

    def parzen_joint(self, x: Tensor, y: Tensor, w: Optional[Tensor], centres: tuple, windows: tuple) -> Tensor:
        """T[m] = sum_n w a(x_mn) b(y_mn)ᵀ with the windows' weights a, b at ``centres``: x, y, w (M, N) -> (M, K, K)."""
        ...
