"""The settings of a training run: :class:`TrainConfig`, its command-line parser and its checks.

Every field ``x_y`` of the config is the flag ``--x-y``. :func:`check_config` rejects settings that cannot
work before anything is loaded or allocated, naming the flag: its own checks, the library's (translated from
the library's argument names) and a memory estimate of one training step.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields, replace

import torch

from ...histogram import soft_histogram
from ...losses import HUE_WEIGHTS, HueNetLoss
from .. import runtime
from ..cli import UsageError, flag_message
from ..data.folders import split_indices
from ..data.paired import DATA_FORMATS
from ..data.tasks import PAIRED_TASKS, TASKS, per_task, task_defaults
from .gan import step_bytes
from .models import GAN_MODES, GLOBAL_MAPPINGS, HueNetGenerator


@dataclass
class TrainConfig:
    """Every setting of a run; the field ``x_y`` is the flag ``--x-y``. Defaults are the CLI's; a None is
    the task's (:func:`~huenet.colortransfer.data.tasks.task_defaults`, filled in by :func:`resolve_task_defaults`)."""

    task: str = "transfer"
    data: str | None = None
    data_format: str = "auto"
    out: str = "runs/huenet"
    image_size: int = 64
    batch_size: int = 8
    epochs: int | None = None
    max_steps: int | None = None
    lr: float = 2e-4
    beta1: float = 0.5
    bins: int = 256
    cond_bins: int = 32
    bandwidth: float = 0.4
    colorspace: str | None = None  # None: the task's (resolve_task_defaults), as are the three below
    hist_channels: str | None = None
    mi_channels: str | None = None
    emd_order: int = 1
    hue_weight: str = "saturation"
    detach_hue_weight: bool = False
    lambda_gan: float = 1.0
    lambda_mi: float | None = None
    lambda_hist: float | None = None
    lambda_l1: float = 0.0
    gan_mode: str = "bce"
    ngf: int = 16
    ndf: int | None = None
    dropout: float = 0.0
    global_mapping: str = "curves"
    device: str = "auto"
    amp: bool = False
    seed: int = 0
    num_workers: int | None = None
    threads: int | None = None
    backend: str = "auto"
    synthetic_images: int = 1000
    val_fraction: float = 0.1
    sample_every: int = 100
    checkpoint_every: int = 100
    max_nonfinite: int = 20
    resume: bool = True


# Settings that may change when a run is resumed (how long, where and how fast it runs); all others must
# match the checkpoint's, or the resumed run would silently be a different experiment.
RESUMABLE_CHANGES = frozenset(
    {
        "out",
        "epochs",
        "max_steps",
        "device",
        "amp",
        "num_workers",
        "threads",
        "backend",
        "sample_every",
        "checkpoint_every",
        "max_nonfinite",
        "resume",
    }
)


def flag(field: str) -> str:
    """The command-line flag of a config field: ``image_size`` -> ``--image-size``."""
    return "--" + field.replace("_", "-")


def resolve_task_defaults(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the settings left to the task (None) filled in from :func:`~.tasks.task_defaults`.

    Raises:
        UsageError: ``cfg.task`` is not one of :data:`~.tasks.TASKS`.
    """
    if cfg.task not in TASKS:
        raise UsageError(f"--task must be one of {', '.join(TASKS)}; got {cfg.task!r}")
    defaults = task_defaults(cfg.task, cfg.colorspace)
    return replace(cfg, **{k: v for k, v in defaults.items() if getattr(cfg, k) is None})


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default; a None default is the task's, which the flag's help spells out."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m huenet.train",
        description="Train a Hue-Net GAN: output = G(input, hist(reference)), with loss lambda_gan*GAN + "
        "lambda_mi*D_MI(output, input) + lambda_hist*EMD(output, reference) (+ lambda_l1*L1 to the "
        "ground truth). Rerun the same command to resume; use torchrun for several processes.",
        formatter_class=_DefaultsHelp,
    )
    p.add_argument(
        "--task",
        default=d.task,
        metavar="{" + ",".join(TASKS) + "}",
        help="transfer: unpaired colour transfer; colorize: grey input + colour reference -> photo; "
        "edges2photo: edge map + colour reference -> photo (see docs/training.md)",
    )
    _data_flags(p.add_argument_group("data and run folder"), d)
    _optimisation_flags(p.add_argument_group("optimisation"), d)
    _loss_flags(p.add_argument_group("loss"), d)
    _model_flags(p.add_argument_group("models"), d)
    _running_flags(p.add_argument_group("running"), d)
    return p


def _data_flags(g: argparse._ArgumentGroup, d: TrainConfig) -> None:
    g.add_argument(
        "--data",
        default=d.data,
        metavar="DIR",
        help="folder tree of images (jpg, png, ...); default: the built-in synthetic image set",
    )
    g.add_argument(
        "--data-format",
        choices=DATA_FORMATS,
        default=d.data_format,
        help="paired tasks: 'photos' derives each input from its photo (grey, or kornia's Canny "
        "edges); 'ab' reads pix2pix AB images (input | photo side by side); 'auto': ab when every "
        "image is twice as wide as high",
    )
    g.add_argument(
        "--out",
        default=d.out,
        metavar="RUN_DIR",
        help="run folder: config, checkpoint, metrics log, samples and plots go here",
    )
    g.add_argument("--image-size", type=int, default=d.image_size, help="side of the square training crops")
    g.add_argument(
        "--synthetic-images",
        type=int,
        default=d.synthetic_images,
        help="number of built-in synthetic images (without --data)",
    )
    g.add_argument("--val-fraction", type=float, default=d.val_fraction, help="seeded validation split")
    g.add_argument(
        "--num-workers",
        type=int,
        default=d.num_workers,
        help="DataLoader worker processes; default 4 on CUDA, 0 on the CPU (the CPU is busy training)",
    )
    g.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help="CPU threads per process; default: half the logical CPUs (at least 1), since two "
        "threads sharing a busy 2-core machine run small ops many times slower than one",
    )


def _optimisation_flags(g: argparse._ArgumentGroup, d: TrainConfig) -> None:
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="images per step per process")
    g.add_argument(
        "--epochs",
        type=int,
        default=d.epochs,
        help=f"passes over the training pairs (default: {per_task('epochs')})",
    )
    g.add_argument(
        "--max-steps",
        type=int,
        default=d.max_steps,
        help="stop after this many steps in total (across resumes), even mid-epoch",
    )
    g.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate of G and D")
    g.add_argument("--beta1", type=float, default=d.beta1, help="Adam beta1 of G and D")
    g.add_argument("--seed", type=int, default=d.seed, help="seeds the data split, pairs, jitter and the models")


def _loss_flags(g: argparse._ArgumentGroup, d: TrainConfig) -> None:
    g.add_argument("--bins", type=int, default=d.bins, help="histogram bins of the EMD and MI losses")
    g.add_argument("--bandwidth", type=float, default=d.bandwidth, help="soft-histogram kernel width, in bins")
    g.add_argument(
        "--colorspace",
        choices=("hsv", "yuv"),
        default=d.colorspace,
        help=f"colour space of the losses and of G's conditioning histograms (default: {per_task('colorspace')})",
    )
    g.add_argument(
        "--hist-channels",
        default=d.hist_channels,
        help=f"channels of the EMD term, e.g. 'hsv' to add S and V (default: {per_task('hist_channels')})",
    )
    g.add_argument(
        "--mi-channels",
        default=d.mi_channels,
        help=f"channels of the D_MI term (default: {per_task('mi_channels')})",
    )
    g.add_argument(
        "--emd-order",
        type=int,
        choices=(1, 2),
        default=d.emd_order,
        help="EMD order: 1 = circular Wasserstein-1, 2 = the official RMS form",
    )
    g.add_argument(
        "--hue-weight",
        choices=[str(w).lower() for w in HUE_WEIGHTS],
        default=d.hue_weight,
        help="per-pixel weight of the hue histograms",
    )
    g.add_argument(
        "--detach-hue-weight",
        action=argparse.BooleanOptionalAction,
        default=d.detach_hue_weight,
        help="take no gradient through the hue weights, so the generator cannot lower the hue EMD by "
        "desaturating wrongly hued pixels",
    )
    g.add_argument("--lambda-gan", type=float, default=d.lambda_gan, help="weight of the adversarial term")
    g.add_argument(
        "--lambda-mi",
        type=float,
        default=d.lambda_mi,
        help=f"weight of D_MI(output, input) (default: {per_task('lambda_mi')})",
    )
    g.add_argument(
        "--lambda-hist",
        type=float,
        default=d.lambda_hist,
        help=f"weight of EMD(output, reference) (default: {per_task('lambda_hist')})",
    )
    g.add_argument(
        "--lambda-l1",
        type=float,
        default=d.lambda_l1,
        help="paired tasks: weight of pix2pix's L1 to the ground truth; 0 is Hue-Net, and "
        "'--lambda-l1 100 --lambda-hist 0 --lambda-mi 0' is pix2pix",
    )
    g.add_argument(
        "--gan-mode", choices=GAN_MODES, default=d.gan_mode, help="bce: non-saturating BCE; lsgan: least squares"
    )


def _model_flags(g: argparse._ArgumentGroup, d: TrainConfig) -> None:
    g.add_argument("--ngf", type=int, default=d.ngf, help="generator width (channels of its first level)")
    g.add_argument("--ndf", type=int, default=d.ndf, help="discriminator width; default: --ngf")
    g.add_argument(
        "--cond-bins",
        type=int,
        default=d.cond_bins,
        help="bins per channel of the target histograms G is conditioned on",
    )
    g.add_argument(
        "--dropout", type=float, default=d.dropout, help="dropout in G's first three decoder levels (pix2pix: 0.5)"
    )
    g.add_argument(
        "--global-mapping",
        choices=GLOBAL_MAPPINGS,
        default=d.global_mapping,
        help="curves: G first applies a learnt-strength Reinhard match and hue curve to the target "
        "(docs/training.md); none: only its affine colour transform, starting at the identity",
    )


def _running_flags(g: argparse._ArgumentGroup, d: TrainConfig) -> None:
    g.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    g.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=d.amp,
        help="mixed precision (CUDA only); the histogram losses always run in fp32",
    )
    g.add_argument(
        "--backend",
        choices=("auto", "eager", "triton"),
        default=d.backend,
        help="histogram backend of the losses and the conditioning",
    )
    g.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=d.resume,
        help="continue from the run folder's checkpoint if it has one; --no-resume starts over",
    )
    g.add_argument("--sample-every", type=int, default=d.sample_every, help="steps between sample grids")
    g.add_argument(
        "--checkpoint-every",
        type=int,
        default=d.checkpoint_every,
        help="steps between checkpoints (one is also written at each epoch end and at the end)",
    )
    g.add_argument(
        "--max-nonfinite",
        type=int,
        default=d.max_nonfinite,
        help="stop after this many consecutive steps with a non-finite loss (each is skipped)",
    )


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    if args["task"] not in TASKS:
        parser.error(f"--task must be one of {', '.join(TASKS)}; got {args['task']!r}")
    args["hue_weight"] = None if args["hue_weight"] == "none" else args["hue_weight"]
    return TrainConfig(**args)


def library_flags() -> dict[str, str]:
    """Library argument name -> train flag, for :func:`huenet.colortransfer.cli.flag_message`."""
    names = {f.name: flag(f.name) for f in fields(TrainConfig)}
    return {**names, "order": "--emd-order", "count": "--synthetic-images"}


def check_config(cfg: TrainConfig) -> None:
    """Reject settings that cannot work, naming the flag (raises :class:`~huenet.colortransfer.cli.UsageError`).

    ``cfg`` has its task's defaults filled in (:func:`resolve_task_defaults`).
    """
    minimum = dict(
        image_size=32,
        batch_size=1,
        epochs=1,
        max_steps=1,
        bins=2,
        cond_bins=2,
        ngf=1,
        ndf=1,
        synthetic_images=2,
        num_workers=0,
        threads=1,
        sample_every=1,
        checkpoint_every=1,
        max_nonfinite=1,
    )
    for field, low in minimum.items():
        value = getattr(cfg, field)
        if value is not None and value < low:
            raise UsageError(f"{flag(field)} must be >= {low}; got {value}")
    for field in ("lr", "bandwidth"):
        if not getattr(cfg, field) > 0:
            raise UsageError(f"{flag(field)} must be > 0; got {getattr(cfg, field)}")
    if cfg.lambda_l1 and cfg.task not in PAIRED_TASKS:
        raise UsageError(
            f"--lambda-l1 needs a paired task (--task {' or '.join(PAIRED_TASKS)}): transfer has no "
            f"ground truth; got --lambda-l1 {cfg.lambda_l1}"
        )
    for field in ("lambda_gan", "lambda_mi", "lambda_hist", "lambda_l1"):
        if not (math.isfinite(getattr(cfg, field)) and getattr(cfg, field) >= 0):
            raise UsageError(f"{flag(field)} must be a finite number >= 0; got {getattr(cfg, field)}")
    if not 0 <= cfg.beta1 < 1:
        raise UsageError(f"--beta1 must be in [0, 1); got {cfg.beta1}")
    try:
        device = runtime.resolve_device(cfg.device)
        split_indices(2, cfg.val_fraction)
        HueNetLoss(
            cfg.colorspace,
            cfg.bins,
            cfg.bandwidth,
            hist_channels=cfg.hist_channels,
            mi_channels=cfg.mi_channels,
            hue_weight=cfg.hue_weight,
            detach_hue_weight=cfg.detach_hue_weight,
        )
        HueNetGenerator(cfg.image_size, cfg.ngf, cfg.cond_bins, cfg.colorspace, cfg.bandwidth, cfg.dropout)
        # The backend is only resolved when a histogram is computed; do it now for a clear early error
        # (e.g. backend="triton" before its kernels exist) instead of a traceback from inside the first step.
        soft_histogram(torch.zeros(1, 1, 2, 2, device=device), 2, backend=cfg.backend)
    except (ValueError, RuntimeError) as err:
        raise UsageError(flag_message(err, library_flags())) from err
    check_memory(cfg, device)


def check_memory(cfg: TrainConfig, device: torch.device) -> None:
    """Refuse a batch whose training step cannot fit in the memory free on ``device`` (before allocating it)."""
    free = runtime.available_memory(device)
    if free is None:
        return
    needed = step_bytes(cfg.batch_size, cfg.image_size, cfg.ngf, cfg.ndf or cfg.ngf, cfg.cond_bins, cfg.bins)
    if needed > free:
        where = "GPU memory" if device.type == "cuda" else "RAM"
        raise UsageError(
            f"--image-size {cfg.image_size} with --batch-size {cfg.batch_size} needs about "
            f"{needed / 2**30:.1f} GiB for one training step, but only {free / 2**30:.1f} GiB of "
            f"{where} is free; lower --image-size or --batch-size"
        )
