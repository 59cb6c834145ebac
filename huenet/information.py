"""Entropies and mutual information of differentiable joint histograms, and the D_MI loss of Hue-Net.

All quantities use the natural log and 0·log 0 = 0. Marginals are the row and column sums of the joint
histogram, so they are consistent with it whatever the boundary mode.
"""

from __future__ import annotations

import torch

from .backends import reference
from .histogram import joint_histogram_and_backend


def histogram_entropies(joint: torch.Tensor) -> torch.Tensor:
    """(H(X,Y), H(X), H(Y)) of given joint histograms (..., K, K) whose rows index X, as (..., 3).

    For joint histograms computed elsewhere (counted ones, say); the ops below reduce their own soft joint
    histogram on the backend that computed it.

    Example:
        >>> joint = torch.full((1, 4, 4), 1 / 16)  # independent and uniform: H(X,Y) = H(X) + H(Y)
        >>> torch.allclose(histogram_entropies(joint), torch.log(torch.tensor([[16.0, 4.0, 4.0]])))
        True
    """
    k1, k2 = joint.shape[-2:]
    return reference.entropies(joint.reshape(-1, k1, k2)).reshape(*joint.shape[:-2], 3)


def mi_from_entropies(h: torch.Tensor) -> torch.Tensor:
    """I(X;Y) = H(X) + H(Y) - H(X,Y) = sum J log(J / (p1 p2)) from entropies (..., 3) = (H(X,Y), H(X), H(Y))."""
    h_xy, h_x, h_y = h.unbind(-1)
    return h_x + h_y - h_xy


def mi_distance_from_entropies(h: torch.Tensor) -> torch.Tensor:
    """D_MI = 1 - I/H(X,Y), in [0, 1]; 1 when H(X,Y) = 0 (no information to share)."""
    h_xy, h_x, h_y = h.unbind(-1)
    # Only an exact zero is special-cased, so a NaN entropy still propagates.
    zero = h_xy == 0
    ratio = (h_x + h_y - h_xy) / torch.where(zero, torch.ones_like(h_xy), h_xy)
    return 1 - torch.where(zero, torch.zeros_like(ratio), ratio)


def conditional_entropy_from_entropies(h: torch.Tensor) -> torch.Tensor:
    """H(X|Y) = H(X,Y) - H(Y), the official Hue-Net code's "MI" objective (X = rows)."""
    h_xy, _, h_y = h.unbind(-1)
    return h_xy - h_y


def _entropies(op, x, y, bins, value_range, bandwidth, boundary, weight, backend, validate) -> torch.Tensor:
    """(H(X,Y), H(X), H(Y)) of the soft joint histogram of x and y, (B, C, 3), reduced by the op's backend."""
    joint, impl = joint_histogram_and_backend(
        op, x, y, bins, value_range, bandwidth, boundary, weight, backend, validate
    )
    b, c, k, _ = joint.shape
    return impl.entropies(joint.reshape(b * c, k, k)).reshape(b, c, 3)


def mutual_information(
    x: torch.Tensor,
    y: torch.Tensor,
    bins: int = 256,
    range=(0.0, 1.0),
    bandwidth: float = 0.4,
    boundary: str = "reflect",
    weight: torch.Tensor | None = None,
    backend: str = "auto",
    validate: bool = False,
) -> torch.Tensor:
    r"""Mutual information :math:`I = \sum J \log \frac{J}{p_1 p_2}` of the soft joint histogram of x and y.

    Arguments as in :func:`huenet.joint_histogram`. Returns (B, C) in nats.

    Example:
        >>> x = torch.rand(1, 1, 32, 32)
        >>> bool(mutual_information(x, x, bins=16) > mutual_information(x, torch.rand_like(x), bins=16))
        True
    """
    h = _entropies("mutual_information", x, y, bins, range, bandwidth, boundary, weight, backend, validate)
    return mi_from_entropies(h)


def joint_entropy(
    x: torch.Tensor,
    y: torch.Tensor,
    bins: int = 256,
    range=(0.0, 1.0),
    bandwidth: float = 0.4,
    boundary: str = "reflect",
    weight: torch.Tensor | None = None,
    backend: str = "auto",
    validate: bool = False,
) -> torch.Tensor:
    r"""Joint entropy :math:`H(X,Y) = -\sum J \log J`, (B, C) in nats. Arguments as in
    :func:`huenet.joint_histogram`.

    Example:
        >>> x = torch.rand(1, 1, 32, 32)
        >>> bool(joint_entropy(x, torch.rand_like(x), bins=16) > joint_entropy(x, x, bins=16))  # noise adds entropy
        True
    """
    h = _entropies("joint_entropy", x, y, bins, range, bandwidth, boundary, weight, backend, validate)
    return h[..., 0]


def mi_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    bins: int = 256,
    range=(0.0, 1.0),
    bandwidth: float = 0.4,
    boundary: str = "reflect",
    weight: torch.Tensor | None = None,
    backend: str = "auto",
    validate: bool = False,
) -> torch.Tensor:
    r"""Hue-Net's semantic loss :math:`D_{MI} = 1 - I(X;Y)/H(X,Y)`, (B, C) in [0, 1].

    0 when y is a deterministic, invertible function of x at the histogram's resolution; about 1 for
    independent images. Arguments as in :func:`huenet.joint_histogram`.

    Example:
        >>> x = torch.rand(1, 3, 32, 32)
        >>> mi_distance(x, 1 - x, bins=16).shape
        torch.Size([1, 3])
    """
    h = _entropies("mi_distance", x, y, bins, range, bandwidth, boundary, weight, backend, validate)
    return mi_distance_from_entropies(h)


def conditional_entropy(
    x: torch.Tensor,
    y: torch.Tensor,
    bins: int = 256,
    range=(0.0, 1.0),
    bandwidth: float = 0.4,
    boundary: str = "reflect",
    weight: torch.Tensor | None = None,
    backend: str = "auto",
    validate: bool = False,
) -> torch.Tensor:
    r"""Conditional entropy :math:`H(X|Y) = H(X,Y) - H(Y)`, (B, C) in nats.

    This is what the official Hue-Net code minimises under the name "MI" (with X the source and Y the
    output); for fixed X it is equivalent to maximising I(X;Y), but unnormalised. Arguments as in
    :func:`huenet.joint_histogram`.

    Example:
        >>> x = torch.rand(1, 1, 32, 32)
        >>> bool(conditional_entropy(x, 1 - x, bins=16) < conditional_entropy(x, torch.rand_like(x), bins=16))
        True
    """
    h = _entropies("conditional_entropy", x, y, bins, range, bandwidth, boundary, weight, backend, validate)
    return conditional_entropy_from_entropies(h)
