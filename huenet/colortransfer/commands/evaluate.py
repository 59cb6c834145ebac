"""Evaluate a trained Hue-Net against classical baselines on a run's validation pairs.

``python -m huenet.evaluate --checkpoint RUN_OR_FILE [--data DIR] [--json PATH]``

Rebuilds the run's validation split (same data, seed and fraction; or the one of ``--data``), pairs each
validation image with a fixed other one, and scores the model and the baselines of :mod:`huenet.colortransfer.methods.registry`
with the metrics of :mod:`huenet.colortransfer.metrics`. Prints a table (mean over pairs) and writes the means, standard
deviations and settings as JSON (default: ``evaluation.json`` in the run folder, or
``evaluation-<folder>.json`` for another ``--data``: the run's own evaluation is never overwritten). For a
transfer run the network's output refined by ``--refine N`` steps of the training-free fit (what
``huenet.transfer`` gives by default, :mod:`~.refine`) is scored as a row of its own next to the raw network's.

The task is the run's (``--task`` of training). For the paired tasks (colorize, edges2photo) each validation
photo gives an input (grey or edges) and is its ground truth; the reference G is given is that photo too
(``--exemplar truth``, as in training) or another validation photo (``--exemplar other``). The table then has
PSNR and SSIM to the ground truth, hue EMD / intersection and the a*b* sliced Wasserstein distance to the
reference, and D_MI(V) and lightness SSIM to the input (:data:`~huenet.colortransfer.metrics.PAIRED_METRICS`);
the baselines are the input itself and, for colorize, Reinhard's transfer of the reference's Lab statistics
to the grey input (a global tint) and the LUT :func:`huenet.recolor.fit` fits from input to reference (about
ten seconds per pair on a busy CPU). pix2pix is compared as a run of its own (docs/results.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from .. import runlog, runtime
from ..cli import RunError, UsageError, add_device_flag, clean_warnings, command_parser, exit_with, flag_message
from ..data.folders import UnpairedPairs, make_image_set, skipped_images, split_indices
from ..data.paired import PairedImages, make_paired_image_set
from ..data.tasks import PAIRED_TASKS
from ..methods.refine import REFINE_STEPS
from ..methods.scoring import BATCH_SIZE, EXEMPLARS, evaluate, evaluate_paired
from ..metrics import METRICS, PAIRED_METRICS
from ..training.checkpoint import checkpoint_path, load_generator

PROG = "huenet.evaluate"
# Fewer validation pairs than this give means too rough to compare methods by: warn.
FEW_PAIRS = 10


def format_table(result: dict, metrics: dict = METRICS) -> str:
    """A markdown table: one row per method, one column per metric (mean ± std; arrows: which is better)."""
    header = "| method | " + " | ".join(f"{label} {'↓' if lower else '↑'}" for label, lower in metrics.values()) + " |"
    lines = [header, "|---" * (len(metrics) + 1) + "|"]
    for name, per_metric in result.items():
        cells = [f"{per_metric[k]['mean']:.4f} ± {per_metric[k]['std']:.4f}" for k in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = command_parser(
        "python -m huenet.evaluate",
        "Score a trained Hue-Net and four baselines (identity, Reinhard in Lab, per-channel "
        "histogram matching, MKL) on the validation pairs: hue EMD, histogram intersection and a*b* "
        "sliced Wasserstein distance to the target; D_MI, V-SSIM and L-SSIM to the source. For a "
        "colorize or edges2photo run: PSNR and SSIM to the ground truth as well, against the input "
        "itself (and for colorize a Reinhard tint and the training-free LUT fit).",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="RUN_OR_FILE",
        help="a run folder (its checkpoint.pt) or a checkpoint file",
    )
    parser.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="evaluate on this folder's validation split instead of the run's data",
    )
    parser.add_argument("--image-size", type=int, default=None, help="crop size; default: the run's")
    parser.add_argument("--limit", type=int, default=None, help="score at most this many validation pairs")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="pairs per batch")
    parser.add_argument(
        "--refine",
        type=int,
        default=None,
        metavar="N",
        help=f"transfer runs: also score the output refined by N steps of the training-free fit, as "
        f"huenet.transfer does (default {REFINE_STEPS}; 0 = the raw network only)",
    )
    parser.add_argument(
        "--exemplar",
        choices=EXEMPLARS,
        default=None,
        help="paired tasks: the reference given with each input, its own photo (truth, as in "
        "training; the default) or another validation photo (other)",
    )
    add_device_flag(parser)
    parser.add_argument(
        "--json",
        default=None,
        metavar="PATH",
        help="where to write the results (its folder is created); default: evaluation.json "
        "next to the checkpoint, or evaluation-<folder>.json with --data",
    )
    args = parser.parse_args(argv)
    for flag in ("image_size", "limit", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1; got {value}")
    if args.refine is not None and args.refine < 0:
        parser.error(f"--refine must be >= 0; got {args.refine}")
    with clean_warnings(PROG):
        try:
            _run(args)
        except RunError as err:
            exit_with(PROG, err)


def _json_path(args, ckpt: Path) -> Path:
    """Where the results go: ``--json``, else the run's evaluation.json -- or, for another ``--data``,
    ``evaluation-<folder>.json`` beside it, so the run's own evaluation is never overwritten."""
    own = ckpt.parent / runlog.EVALUATION_NAME
    if args.json is None:
        return own if args.data is None else own.with_name(f"{own.stem}-{Path(args.data).resolve().name}.json")
    out = Path(args.json)
    if args.data is not None and out.resolve() == own.resolve():
        raise UsageError(f"--json {str(out)!r} is the run's own evaluation; with --data choose another file")
    if out.is_dir():
        raise UsageError(f"--json {str(out)!r} is a folder; give a file name")
    # Create the folder now, before the evaluation, so that a path that cannot be written fails at once.
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise RunError(f"--json: cannot write {str(out)!r}: {str(blocking)!r} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"--json: cannot create the folder {str(out.parent)!r} ({err.strerror or err})") from err
    return out


def _run(args) -> None:
    try:
        device = runtime.resolve_device(args.device)
    except ValueError as err:
        raise UsageError(flag_message(err, {"device": "--device"})) from err
    runtime.configure_threads(None)
    try:
        ckpt = checkpoint_path(args.checkpoint)
        generator, config = load_generator(ckpt, device)
    except (OSError, ValueError) as err:
        raise RunError(f"--checkpoint: {err}") from err
    out = _json_path(args, ckpt)
    data = args.data if args.data is not None else config["data"]
    image_size = args.image_size or config["image_size"]
    task = config.get("task", "transfer")  # runs from before --task were transfer runs
    if args.exemplar is not None and task not in PAIRED_TASKS:
        raise UsageError(f"--exemplar is for the paired tasks; the checkpoint is a {task} run")
    if args.refine is not None and task in PAIRED_TASKS:
        raise UsageError(f"--refine is for transfer runs; the checkpoint is a {task} run")
    try:
        if task in PAIRED_TASKS:
            images = make_paired_image_set(
                data,
                config["image_size"],
                config["seed"],
                config["synthetic_images"],
                config.get("data_format", "auto"),
            )
        else:
            images = make_image_set(data, config["image_size"], config["seed"], config["synthetic_images"])
        _, val_idx = split_indices(len(images), config["val_fraction"], config["seed"])
        if task in PAIRED_TASKS:
            pairs = PairedImages(images, val_idx[: args.limit], image_size, task, train=False, seed=config["seed"])
        else:
            pairs = UnpairedPairs(images, val_idx[: args.limit], image_size, train=False, seed=config["seed"])
    except (OSError, ValueError, ImportError) as err:
        raise RunError(f"--data: {err}" if args.data is not None else f"the run's data: {err}") from err
    if len(pairs) < FEW_PAIRS:
        hint = (
            ""
            if args.limit is not None and args.limit < len(val_idx)
            else f" (the validation split is {config['val_fraction']:.0%} of the images; use a larger folder)"
        )
        warnings.warn(f"only {len(pairs)} validation pair(s): the means below are rough{hint}", stacklevel=2)
    skipped = set(skipped_images(images))
    if task in PAIRED_TASKS:
        exemplar = args.exemplar or "truth"
        result = evaluate_paired(generator, pairs, exemplar, args.batch_size, device, skipped)
        reference = "the ground truth" if exemplar == "truth" else "another photo"
        metrics, what = PAIRED_METRICS, f"{task} pairs (reference: {reference})"
    else:
        steps = REFINE_STEPS if args.refine is None else args.refine
        result = evaluate(generator, pairs, args.batch_size, device, skipped, steps)
        metrics, what = METRICS, "pairs"

    data_name = data if data is not None else f"built-in synthetic ({config['synthetic_images']} images)"
    print(
        f"{PROG}: {len(pairs)} validation {what} of {data_name} at {image_size}x{image_size}, "
        f"checkpoint {ckpt}" + (f"; {len(skipped)} unreadable image(s) skipped" if skipped else "") + "\n"
    )
    print(format_table(result, metrics))
    try:
        runlog.write_json(
            out,
            {
                "checkpoint": str(ckpt),
                "task": task,
                "data": data,
                "image_size": image_size,
                "pairs": len(pairs),
                "unreadable": sorted(skipped),
                **({"exemplar": exemplar} if task in PAIRED_TASKS else {}),
                "metrics": {k: {"label": label, "lower_is_better": lower} for k, (label, lower) in metrics.items()},
                "results": result,
            },
        )
    except OSError as err:
        raise RunError(f"--json: cannot write {str(out)!r} ({err.strerror or err})") from err
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
