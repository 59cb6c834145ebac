"""The settings of a training run: :class:`TrainConfig`, its command-line parser and its checks.

Every field ``x_y`` of the config is the flag ``--x-y``. :func:`check_config` rejects settings that cannot
work before anything is loaded or allocated, naming the flag: its own checks, the library's (translated from
the library's argument names) and a memory estimate of one training step.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch

from ...histogram import DEFAULT_BACKEND, DEFAULT_BANDWIDTH, DEFAULT_BINS, soft_histogram
from ...losses import DEFAULT_HUE_WEIGHT, DEFAULT_ORDER, HUE_WEIGHTS, HueNetLoss
from .. import runtime
from ..cli import DEVICE_HELP, UsageError, flag_message
from ..data.folders import VAL_FRACTION, split_indices
from ..data.paired import DATA_FORMATS, DEFAULT_DATA_FORMAT
from ..data.synthetic import DEFAULT_COUNT
from ..data.tasks import PAIRED_TASKS, TASKS, per_task, task_defaults
from .gan import BETA1, LAMBDA_GAN, LR, step_bytes
from .models import (
    COND_BINS,
    DEFAULT_GAN_MODE,
    DEFAULT_GLOBAL_MAPPING,
    GAN_MODES,
    GLOBAL_MAPPINGS,
    HueNetGenerator,
    PatchDiscriminator,
)


@dataclass
class TrainConfig:
    """Every setting of a run; the field ``x_y`` is the flag ``--x-y``. Defaults are the CLI's; a None is
    the task's (:func:`~huenet.colortransfer.data.tasks.task_defaults`, filled in by :func:`resolve_task_defaults`)."""

    task: str = "transfer"
    # data and run folder
    data: str | None = None
    data_format: str = DEFAULT_DATA_FORMAT
    out: str = "runs/huenet"
    image_size: int = 64
    synthetic_images: int = DEFAULT_COUNT
    val_fraction: float = VAL_FRACTION
    num_workers: int | None = None
    threads: int | None = None
    # optimisation
    batch_size: int = 8
    epochs: int | None = None
    max_steps: int | None = None
    lr: float = LR
    beta1: float = BETA1
    seed: int = 0
    # loss
    bins: int = DEFAULT_BINS
    bandwidth: float = DEFAULT_BANDWIDTH
    colorspace: str | None = None  # None: the task's (resolve_task_defaults), as are the three below
    hist_channels: str | None = None
    mi_channels: str | None = None
    emd_order: int = DEFAULT_ORDER
    hue_weight: str = DEFAULT_HUE_WEIGHT
    detach_hue_weight: bool = False
    lambda_gan: float = LAMBDA_GAN
    lambda_mi: float | None = None
    lambda_hist: float | None = None
    lambda_l1: float = 0.0
    gan_mode: str = DEFAULT_GAN_MODE
    # models
    ngf: int = 16
    ndf: int | None = None
    cond_bins: int = COND_BINS
    dropout: float = 0.0
    global_mapping: str = DEFAULT_GLOBAL_MAPPING
    # running
    device: str = "auto"
    amp: bool = False
    backend: str = DEFAULT_BACKEND
    resume: bool = True
    sample_every: int = 100
    checkpoint_every: int = 100
    max_nonfinite: int = 20

    @property
    def discriminator_width(self) -> int:
        """``ndf``, or ``ngf`` when it is None (the default: D as wide as G)."""
        return self.ngf if self.ndf is None else self.ndf


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


#: Settings that count something: each at least 1.
COUNTS = ("batch_size", "epochs", "max_steps", "threads", "sample_every", "checkpoint_every", "max_nonfinite")
#: The least value of the integer settings that the models and losses do not check themselves (None, where a
#: setting allows it, is always fine): the generator's levels need 32-pixel crops, and the built-in set two
#: images (one to train on, one to validate).
MINIMUMS = {"image_size": 32, "synthetic_images": 2, "num_workers": 0, **dict.fromkeys(COUNTS, 1)}


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
    for title, group_flags in (
        ("data and run folder", _data_flags),
        ("optimisation", _optimisation_flags),
        ("loss", _loss_flags),
        ("models", _model_flags),
        ("running", _running_flags),
    ):
        group_flags(_field_flags(p.add_argument_group(title), d))
    return p


def _field_flags(g: argparse._ArgumentGroup, d: TrainConfig) -> Callable[..., None]:
    """``add(field, help, **kwargs)``, which adds to ``g`` the flag of a config field (:func:`flag`) with the
    config's default, and the field's type: an int or float field parses its value as one, a bool field is an
    on/off pair (``--amp`` / ``--no-amp``)."""
    types = {f.name: f.type.split(" | ")[0] for f in fields(TrainConfig)}

    def add(field: str, help: str, **kwargs) -> None:
        if types[field] == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif types[field] in ("int", "float"):
            kwargs["type"] = int if types[field] == "int" else float
        g.add_argument(flag(field), default=getattr(d, field), help=help, **kwargs)

    return add


def _data_flags(add: Callable[..., None]) -> None:
    add("data", "folder tree of images (jpg, png, ...); default: the built-in synthetic image set", metavar="DIR")
    add(
        "data_format",
        "paired tasks: 'photos' derives each input from its photo (grey, or kornia's Canny "
        "edges); 'ab' reads pix2pix AB images (input | photo side by side); 'auto': ab when every "
        "image is twice as wide as high",
        choices=DATA_FORMATS,
    )
    add("out", "run folder: config, checkpoint, metrics log, samples and plots go here", metavar="RUN_DIR")
    add("image_size", "side of the square training crops")
    add("synthetic_images", "number of built-in synthetic images (without --data)")
    add("val_fraction", "seeded validation split")
    add(
        "num_workers",
        "DataLoader worker processes; default 4 on CUDA, 0 on the CPU (the CPU is busy training)",
    )
    add(
        "threads",
        "CPU threads per process; default: half the logical CPUs (at least 1), since two "
        "threads sharing a busy 2-core machine run small ops many times slower than one",
    )


def _optimisation_flags(add: Callable[..., None]) -> None:
    add("batch_size", "images per step per process")
    add("epochs", f"passes over the training pairs (default: {per_task('epochs')})")
    add("max_steps", "stop after this many steps in total (across resumes), even mid-epoch")
    add("lr", "Adam learning rate of G and D")
    add("beta1", "Adam beta1 of G and D")
    add("seed", "seeds the data split, pairs, jitter and the models")


def _loss_flags(add: Callable[..., None]) -> None:
    add("bins", "histogram bins of the EMD and MI losses")
    add("bandwidth", "soft-histogram kernel width, in bins")
    add(
        "colorspace",
        f"colour space of the losses and of G's conditioning histograms (default: {per_task('colorspace')})",
        choices=("hsv", "yuv"),
    )
    add(
        "hist_channels",
        f"channels of the EMD term, e.g. 'hsv' to add S and V (default: {per_task('hist_channels')})",
    )
    add("mi_channels", f"channels of the D_MI term (default: {per_task('mi_channels')})")
    add("emd_order", "EMD order: 1 = circular Wasserstein-1, 2 = the official RMS form", choices=(1, 2))
    add("hue_weight", "per-pixel weight of the hue histograms", choices=[str(w).lower() for w in HUE_WEIGHTS])
    add(
        "detach_hue_weight",
        "take no gradient through the hue weights, so the generator cannot lower the hue EMD by "
        "desaturating wrongly hued pixels",
    )
    add("lambda_gan", "weight of the adversarial term")
    add("lambda_mi", f"weight of D_MI(output, input) (default: {per_task('lambda_mi')})")
    add("lambda_hist", f"weight of EMD(output, reference) (default: {per_task('lambda_hist')})")
    add(
        "lambda_l1",
        "paired tasks: weight of pix2pix's L1 to the ground truth; 0 is Hue-Net, and "
        "'--lambda-l1 100 --lambda-hist 0 --lambda-mi 0' is pix2pix",
    )
    add("gan_mode", "bce: non-saturating BCE; lsgan: least squares", choices=GAN_MODES)


def _model_flags(add: Callable[..., None]) -> None:
    add("ngf", "generator width (channels of its first level)")
    add("ndf", "discriminator width; default: --ngf")
    add("cond_bins", "bins per channel of the target histograms G is conditioned on")
    add("dropout", "dropout in G's first three decoder levels (pix2pix: 0.5)")
    add(
        "global_mapping",
        "curves: G first applies a learnt-strength Reinhard match and hue curve to the target "
        "(docs/training.md); none: only its affine colour transform, starting at the identity",
        choices=GLOBAL_MAPPINGS,
    )


def _running_flags(add: Callable[..., None]) -> None:
    add("device", DEVICE_HELP)
    add(
        "amp",
        "mixed precision (CUDA only); the histogram losses always run in fp32",
    )
    add("backend", "histogram backend of the losses and the conditioning", choices=("auto", "eager", "triton"))
    add(
        "resume",
        "continue from the run folder's checkpoint if it has one; --no-resume starts over",
    )
    add("sample_every", "steps between sample grids")
    add(
        "checkpoint_every",
        "steps between checkpoints (one is also written at each epoch end and at the end)",
    )
    add(
        "max_nonfinite",
        "stop after this many consecutive steps with a non-finite loss (each is skipped)",
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
    for field, low in MINIMUMS.items():
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
        PatchDiscriminator(cfg.discriminator_width)
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
    needed = step_bytes(cfg.batch_size, cfg.image_size, cfg.ngf, cfg.discriminator_width, cfg.cond_bins, cfg.bins)
    if needed > free:
        where = "GPU memory" if device.type == "cuda" else "RAM"
        raise UsageError(
            f"--image-size {cfg.image_size} with --batch-size {cfg.batch_size} needs about "
            f"{needed / 2**30:.1f} GiB for one training step, but only {free / 2**30:.1f} GiB of "
            f"{where} is free; lower --image-size or --batch-size"
        )
