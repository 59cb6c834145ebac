"""Every colour-transfer method by its one name, shared by ``huenet.transfer``, ``huenet.evaluate`` and
``huenet.study``.

A method maps RGB batches ``(source, target)`` in [0, 1], (B, 3, H, W) and (B, 3, H', W'), to the output
(B, 3, H, W). :func:`method` builds one by name; the network needs the generator of a checkpoint.

Example:
    >>> source, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 24, 20)
    >>> method("reinhard")(source, target).shape
    torch.Size([2, 3, 16, 16])
    >>> [name for name in METHODS if METHODS[name].training_free]
    ['fit', 'identity', 'reinhard', 'histogram-matching', 'mkl']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import baselines

#: The trained network's name (the table row of ``huenet.evaluate``, ``--method huenet`` of transfer and study).
NETWORK = "huenet"


@dataclass(frozen=True)
class Method:
    """A method's one name and what it is."""

    name: str
    summary: str
    #: Needs no checkpoint.
    training_free: bool = True
    #: Takes seconds per pair (an optimisation per pair), so the end-of-run validation of training leaves it out.
    slow: bool = False


METHODS = {
    m.name: m
    for m in (
        Method(NETWORK, "the trained Hue-Net generator of a checkpoint", training_free=False),
        Method("fit", "the 3D LUT huenet.recolor.fit fits per pair, no training", slow=True),
        Method("identity", "the source unchanged"),
        Method("reinhard", "Reinhard et al.'s mean/std transfer in CIE Lab"),
        Method("histogram-matching", "per-RGB-channel CDF matching"),
        Method("mkl", "Pitie and Kokaram's linear Monge-Kantorovitch mapping"),
    )
}
#: Names from before the network had one name: ``huenet.transfer --method gan`` still works.
ALIASES = {"gan": NETWORK}
_BASELINES = {
    "identity": baselines.identity,
    "reinhard": baselines.reinhard,
    "histogram-matching": baselines.histogram_matching,
    "mkl": baselines.mkl,
}


def canonical(name: str) -> str:
    """The one name of ``name`` (an alias resolved); a ValueError listing the names for an unknown one."""
    name = ALIASES.get(name, name)
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return name


def _network(generator) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda source, target: generator(source, generator.target_statistics(target))


def _fit_each_pair(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # Imported on use: the fit is the one method whose module an installation may lack.
    from ...recolor import fit

    pairs = zip(source.float(), target.float())
    return torch.stack([fit(s[None], t[None])(s[None])[0] for s, t in pairs]).to(source.dtype)


def method(name: str, generator=None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The function (source, target) -> output of the method ``name`` (or an alias).

    Raises:
        ValueError: an unknown name, or the network without a ``generator``.
        ImportError: the method's code is not installed.
    """
    name = canonical(name)
    if name == NETWORK:
        if generator is None:
            raise ValueError(f"the method {NETWORK!r} needs a trained generator (a checkpoint)")
        return _network(generator)
    if name == "fit":
        from ...recolor import fit  # noqa: F401  (fails here, not at the first pair, where it is not installed)

        return _fit_each_pair
    return _BASELINES[name]
