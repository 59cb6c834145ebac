"""Scoring a trained generator and the training-free methods on validation pairs, with the metrics of
:mod:`huenet.colortransfer.metrics`: what ``huenet.evaluate`` prints and training's last validation records.

Each function returns ``{method: {metric: {"mean": ..., "std": ...}}}`` over all pairs, methods named as in
:mod:`~.registry`.
"""

from __future__ import annotations

import warnings

import torch
from tqdm import tqdm

from ..data.folders import UnpairedPairs, skipped_images
from ..data.paired import PairedImages
from ..metrics import METRICS, PAIRED_METRICS, paired_metrics, transfer_metrics
from .refine import check_steps, refine
from .registry import METHODS, NETWORK, method

#: The training-free methods scored next to the network: on transfer pairs, then on each paired task's (the
#: input as it is, and for colorize a global tint and the LUT fitted from the exemplar, which maps each grey
#: level to one colour).
BASELINES = ("identity", "reinhard", "histogram-matching", "mkl")
PAIRED_BASELINES = {"colorize": ("identity", "reinhard", "fit"), "edges2photo": ("identity",)}
EXEMPLARS = ("truth", "other")
#: Pairs scored per batch (``--batch-size`` of evaluate).
BATCH_SIZE = 16


def evaluate(
    generator,
    pairs: UnpairedPairs,
    batch_size: int = BATCH_SIZE,
    device: str | torch.device = "cpu",
    skipped: set[str] | None = None,
    refine_steps: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Score ``generator`` and the baselines on every pair of ``pairs``.

    Images that fail to decode are replaced by the next one (see :class:`UnpairedPairs`) and their names are
    added to ``skipped``, and a pair whose source equals its target is warned about: it scores no transfer.
    ``refine_steps`` > 0 also scores the network's output refined by that many steps of the training-free fit
    (:func:`~.refine.refine`, what ``huenet.transfer`` gives by default), as a row of its own.

    Returns:
        ``{method: {metric: {"mean": ..., "std": ...}}}`` with methods "huenet", then
        :func:`refined_name` when refining, then those of :data:`BASELINES`.
    """
    check_steps("evaluate", refine_steps)
    methods = {name: method(name, generator) for name in (NETWORK, *BASELINES)}
    rows = [NETWORK] + ([refined_name(refine_steps)] if refine_steps else []) + list(BASELINES)
    scores = {m: {k: [] for k in METRICS} for m in rows}
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            batch = [pairs[i] for i in range(start, min(start + batch_size, len(pairs)))]
            if skipped is not None:
                skipped.update(skipped_images(pairs.images, batch))
            source, target = (torch.stack(t).to(device) for t in ([p.source for p in batch], [p.target for p in batch]))
            for k in (source == target).flatten(1).all(1).nonzero().flatten().tolist():
                name = pairs.images.name(pairs.indices[start + k])
                warnings.warn(
                    f"validation pair {start + k} ({name!r}): its source and target are the same "
                    "image, so it scores no colour transfer",
                    stacklevel=2,
                )
            for name, run in methods.items():
                outputs = {name: run(source, target).float()}
                if name == NETWORK and refine_steps:
                    outputs[refined_name(refine_steps)] = refine(outputs[name], target, refine_steps)
                for row, output in outputs.items():
                    for key, values in transfer_metrics(output, source, target).items():
                        scores[row][key].append(values.cpu())
    return _summarise(scores)


def refined_name(steps: int) -> str:
    """The table row of the network's output refined by ``steps`` steps of the fit."""
    return f"{NETWORK} + refine {steps}"


def evaluate_paired(
    generator,
    pairs: PairedImages,
    exemplar: str = "truth",
    batch_size: int = BATCH_SIZE,
    device: str | torch.device = "cpu",
    skipped: set[str] | None = None,
    slow: bool = True,
) -> dict:
    """Score ``generator`` and the task's baselines on every (input, ground truth) pair of ``pairs``.

    ``exemplar``: "truth" gives G each pair's own photo as the reference (as in training); "other" the photo of
    another validation pair (a fixed one, as for transfer), so the colours asked for are not the truth's.
    ``slow=False`` leaves out the slow methods (a LUT fit per pair, :attr:`~.registry.Method.slow`).

    Returns:
        ``{method: {metric: {"mean": ..., "std": ...}}}`` over :data:`PAIRED_METRICS`, methods "huenet" then
        those of :data:`PAIRED_BASELINES`.
    """
    if exemplar not in EXEMPLARS:
        raise ValueError(f"evaluate_paired: `exemplar` must be one of {', '.join(EXEMPLARS)}; got {exemplar!r}")
    names = [NETWORK] + [n for n in PAIRED_BASELINES[pairs.task] if slow or not METHODS[n].slow]
    methods = {name: method(name, generator) for name in names}
    scores = {m: {k: [] for k in PAIRED_METRICS} for m in methods}
    # The LUT fits take seconds per pair: show progress then (disable=None: only on a terminal).
    bar = tqdm(total=len(pairs), desc="evaluate", unit="pair", leave=False, disable=None if slow else True)
    with torch.no_grad(), bar:
        for start in range(0, len(pairs), batch_size):
            positions = range(start, min(start + batch_size, len(pairs)))
            batch = [pairs[i] for i in positions]
            inputs, truth = (torch.stack(t).to(device) for t in ([p.source for p in batch], [p.target for p in batch]))
            reference = truth
            if exemplar == "other":
                others = [pairs[pairs.target_position(i)] for i in positions]
                reference = torch.stack([p.target for p in others]).to(device)
                batch += others
            if skipped is not None:
                skipped.update(skipped_images(pairs.images, batch))
            for name, run in methods.items():
                output = run(inputs, reference).float()
                for key, values in paired_metrics(output, inputs, reference, truth).items():
                    scores[name][key].append(values.cpu())
            bar.update(len(positions))
    return _summarise(scores)


def _summarise(scores: dict[str, dict[str, list[torch.Tensor]]]) -> dict:
    """{method: {metric: [per-batch values]}} -> {method: {metric: {"mean", "std"}}} over all pairs."""
    result = {}
    for name, per_metric in scores.items():
        result[name] = {}
        for key, chunks in per_metric.items():
            values = torch.cat(chunks).double()
            std = values.std().item() if len(values) > 1 else 0.0
            result[name][key] = {"mean": values.mean().item(), "std": std}
    return result
