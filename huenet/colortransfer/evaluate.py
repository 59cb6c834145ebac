"""Evaluate a trained Hue-Net against classical baselines on a run's validation pairs.

``python -m huenet.evaluate --checkpoint RUN_OR_FILE [--data DIR] [--json PATH]``

Rebuilds the run's validation split (same data, seed and fraction; or the one of ``--data``), pairs each
validation image with a fixed other one, and scores the model and the baselines of :mod:`huenet.baselines`
with the metrics of :mod:`huenet.metrics`. Prints a table (mean over pairs) and writes the means, standard
deviations and settings as JSON (default: ``evaluation.json`` in the run folder).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from . import runlog, runtime
from .baselines import BASELINES
from .checkpoint import checkpoint_path, load_generator
from .data import UnpairedPairs, make_image_set, split_indices
from .metrics import METRICS, transfer_metrics

MODEL_NAME = "huenet"


def evaluate(generator, pairs: UnpairedPairs, batch_size: int = 16,
             device: str | torch.device = "cpu") -> dict[str, dict[str, dict[str, float]]]:
    """Score ``generator`` and the baselines on every pair of ``pairs``.

    Returns:
        ``{method: {metric: {"mean": ..., "std": ...}}}`` with methods "huenet" then those of
        :data:`~huenet.baselines.BASELINES`.
    """
    methods = {MODEL_NAME: lambda s, t: generator(s, generator.histograms(t)), **BASELINES}
    scores = {m: {k: [] for k in METRICS} for m in methods}
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            batch = [pairs[i] for i in range(start, min(start + batch_size, len(pairs)))]
            source, target = (torch.stack(t).to(device) for t in zip(*batch))
            for name, method in methods.items():
                for key, values in transfer_metrics(method(source, target).float(), source, target).items():
                    scores[name][key].append(values.cpu())
    result = {}
    for name, per_metric in scores.items():
        result[name] = {}
        for key, chunks in per_metric.items():
            values = torch.cat(chunks).double()
            std = values.std().item() if len(values) > 1 else 0.0
            result[name][key] = {"mean": values.mean().item(), "std": std}
    return result


def format_table(result: dict) -> str:
    """A markdown table: one row per method, one column per metric (mean ± std; arrows: which is better)."""
    header = "| method | " + " | ".join(f"{label} {'↓' if lower else '↑'}" for label, lower in METRICS.values()) + " |"
    lines = [header, "|---" * (len(METRICS) + 1) + "|"]
    for name, per_metric in result.items():
        cells = [f"{per_metric[k]['mean']:.4f} ± {per_metric[k]['std']:.4f}" for k in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m huenet.evaluate",
        description="Score a trained Hue-Net and four baselines (identity, Reinhard in Lab, per-channel "
                    "histogram matching, MKL) on the validation pairs: hue EMD, histogram intersection and a*b* "
                    "sliced Wasserstein distance to the target; D_MI, V-SSIM and L-SSIM to the source.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint", required=True, metavar="RUN_OR_FILE",
                        help="a run folder (its checkpoint.pt) or a checkpoint file")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="evaluate on this folder's validation split instead of the run's data")
    parser.add_argument("--image-size", type=int, default=None, help="crop size; default: the run's")
    parser.add_argument("--limit", type=int, default=None, help="score at most this many validation pairs")
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per batch")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="where to write the results; default: evaluation.json next to the checkpoint")
    args = parser.parse_args(argv)
    for flag in ("image_size", "limit", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1; got {value}")
    try:
        device = runtime.resolve_device(args.device)
        runtime.configure_threads(None)
        ckpt = checkpoint_path(args.checkpoint)
        generator, config = load_generator(ckpt, device)
        data = args.data if args.data is not None else config["data"]
        image_size = args.image_size or config["image_size"]
        images = make_image_set(data, config["image_size"], config["seed"], config["synthetic_images"])
        _, val_idx = split_indices(len(images), config["val_fraction"], config["seed"])
        pairs = UnpairedPairs(images, val_idx[:args.limit], image_size, train=False, seed=config["seed"])
    except (OSError, ValueError) as err:
        sys.exit(f"huenet.evaluate: error: {err}")
    result = evaluate(generator, pairs, args.batch_size, device)

    data_name = data if data is not None else f"built-in synthetic ({config['synthetic_images']} images)"
    print(f"huenet.evaluate: {len(pairs)} validation pairs of {data_name} at {image_size}x{image_size}, "
          f"checkpoint {ckpt}\n")
    print(format_table(result))
    out = Path(args.json) if args.json else ckpt.parent / runlog.EVALUATION_NAME
    runlog.write_json(out, {"checkpoint": str(ckpt), "data": data, "image_size": image_size, "pairs": len(pairs),
                            "metrics": {k: {"label": label, "lower_is_better": lower}
                                        for k, (label, lower) in METRICS.items()},
                            "results": result})
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
