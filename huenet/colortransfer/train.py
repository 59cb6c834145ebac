r"""Train a Hue-Net colour-transfer GAN: ``python -m huenet.train [--data DIR] [--out RUN_DIR] ...``.

``output = G(source, hist(target))`` for unpaired random (source, target) pairs. Each step:

1. D: ``GAN_D(D(source) -> real, D(output) -> fake)`` (the source is the real image, as in the official code);
2. G: ``lambda_gan * GAN_G(D(output)) + lambda_mi * D_MI(output, source) + lambda_hist * EMD(output, target)``
   with :class:`huenet.losses.HueNetLoss` (cyclic EMD of hue histograms, D_MI on V, in HSV by default).

Without ``--data`` it trains on the built-in synthetic image set and finishes in a few minutes on a CPU.
Resuming is automatic: rerunning the same command in the same ``--out`` continues from its checkpoint.
Under ``torchrun --nproc_per_node=N -m huenet.train ...`` it trains with DistributedDataParallel; only rank 0
writes files. See ``docs/training.md``.
"""
from __future__ import annotations

import argparse
import inspect
import itertools
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from . import plots, runlog, runtime
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, remove_stale_temporaries, rng_state, save_checkpoint, \
    set_rng_state
from .data import UnpairedPairs, make_image_set, split_indices
from ..histogram import soft_histogram
from ..losses import HUE_WEIGHTS, HueNetLoss
from .metrics import hue_emd
from .models import GAN_MODES, GANLoss, HueNetGenerator, PatchDiscriminator

# torch 2.13 renamed DDP's broadcast_buffers to forward_sync_buffers (the old name warns).
_BUFFER_SYNC_ARG = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(
    DistributedDataParallel.__init__).parameters else "broadcast_buffers"
# The losses logged per step (and averaged per epoch): G's total, D's, and G's three terms unweighted.
LOSS_KEYS = ("loss_g", "loss_d", "adv", "hist", "mi")
# Validation pairs scored at the end of each epoch, and how many of them the sample grids show.
VAL_PAIRS = 32
SAMPLE_PAIRS = 4


@dataclass
class TrainConfig:
    """Every setting of a run; the field ``x_y`` is the flag ``--x-y``. Defaults are the CLI's."""

    data: str | None = None
    out: str = "runs/huenet"
    image_size: int = 64
    batch_size: int = 8
    epochs: int = 6
    max_steps: int | None = None
    lr: float = 2e-4
    beta1: float = 0.5
    bins: int = 256
    cond_bins: int = 32
    bandwidth: float = 0.4
    colorspace: str = "hsv"
    hist_channels: str | None = None
    mi_channels: str | None = None
    emd_order: int = 1
    hue_weight: str = "saturation"
    detach_hue_weight: bool = False
    lambda_gan: float = 1.0
    lambda_mi: float = 1.0
    lambda_hist: float = 100.0
    gan_mode: str = "bce"
    ngf: int = 16
    ndf: int | None = None
    dropout: float = 0.0
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
RESUMABLE_CHANGES = frozenset({"out", "epochs", "max_steps", "device", "amp", "num_workers", "threads", "backend",
                               "sample_every", "checkpoint_every", "max_nonfinite", "resume"})


class RunError(Exception):
    """A problem the user can fix (flags, data, run folder) or a run that had to stop; printed without a trace."""


class NonFiniteLossError(RunError):
    """Too many consecutive steps had a non-finite loss."""


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m huenet.train",
        description="Train a Hue-Net colour-transfer GAN: output = G(source, hist(target)), with loss "
                    "lambda_gan*GAN + lambda_mi*D_MI(output, source) + lambda_hist*EMD(output, target). "
                    "Rerun the same command to resume; use torchrun for several processes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data and run folder")
    g.add_argument("--data", default=d.data, metavar="DIR",
                   help="folder tree of images (jpg, png, ...); default: the built-in synthetic image set")
    g.add_argument("--out", default=d.out, metavar="RUN_DIR",
                   help="run folder: config, checkpoint, metrics log, samples and plots go here")
    g.add_argument("--image-size", type=int, default=d.image_size, help="side of the square training crops")
    g.add_argument("--synthetic-images", type=int, default=d.synthetic_images,
                   help="number of built-in synthetic images (without --data)")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction, help="seeded validation split")
    g.add_argument("--num-workers", type=int, default=d.num_workers,
                   help="DataLoader worker processes; default 4 on CUDA, 0 on the CPU (the CPU is busy training)")
    g.add_argument("--threads", type=int, default=d.threads,
                   help="CPU threads per process; default: half the logical CPUs (at least 1), since two "
                        "threads sharing a busy 2-core machine run small ops many times slower than one")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="images per step per process")
    g.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training pairs")
    g.add_argument("--max-steps", type=int, default=d.max_steps,
                   help="stop after this many steps in total (across resumes), even mid-epoch")
    g.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate of G and D")
    g.add_argument("--beta1", type=float, default=d.beta1, help="Adam beta1 of G and D")
    g.add_argument("--seed", type=int, default=d.seed, help="seeds the data split, pairs, jitter and the models")
    g = p.add_argument_group("loss")
    g.add_argument("--bins", type=int, default=d.bins, help="histogram bins of the EMD and MI losses")
    g.add_argument("--bandwidth", type=float, default=d.bandwidth, help="soft-histogram kernel width, in bins")
    g.add_argument("--colorspace", choices=("hsv", "yuv"), default=d.colorspace,
                   help="colour space of the losses and of G's conditioning histograms (yuv: the official code's)")
    g.add_argument("--hist-channels", default=d.hist_channels,
                   help="channels of the EMD term, e.g. 'hsv' to add S and V; default 'h' (hsv) or 'yuv' (yuv)")
    g.add_argument("--mi-channels", default=d.mi_channels,
                   help="channels of the D_MI term; default 'v' (hsv) or 'yuv' (yuv)")
    g.add_argument("--emd-order", type=int, choices=(1, 2), default=d.emd_order,
                   help="EMD order: 1 = circular Wasserstein-1, 2 = the official RMS form")
    g.add_argument("--hue-weight", choices=[str(w).lower() for w in HUE_WEIGHTS], default=d.hue_weight,
                   help="per-pixel weight of the hue histograms")
    g.add_argument("--detach-hue-weight", action=argparse.BooleanOptionalAction, default=d.detach_hue_weight,
                   help="take no gradient through the hue weights, so the generator cannot lower the hue EMD by "
                        "desaturating wrongly hued pixels")
    g.add_argument("--lambda-gan", type=float, default=d.lambda_gan, help="weight of the adversarial term")
    g.add_argument("--lambda-mi", type=float, default=d.lambda_mi, help="weight of D_MI(output, source)")
    g.add_argument("--lambda-hist", type=float, default=d.lambda_hist, help="weight of EMD(output, target)")
    g.add_argument("--gan-mode", choices=GAN_MODES, default=d.gan_mode,
                   help="bce: non-saturating BCE; lsgan: least squares")
    g = p.add_argument_group("models")
    g.add_argument("--ngf", type=int, default=d.ngf, help="generator width (channels of its first level)")
    g.add_argument("--ndf", type=int, default=d.ndf, help="discriminator width; default: --ngf")
    g.add_argument("--cond-bins", type=int, default=d.cond_bins,
                   help="bins per channel of the target histograms G is conditioned on")
    g.add_argument("--dropout", type=float, default=d.dropout,
                   help="dropout in G's first three decoder levels (pix2pix: 0.5)")
    g = p.add_argument_group("running")
    g.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=d.amp,
                   help="mixed precision (CUDA only); the histogram losses always run in fp32")
    g.add_argument("--backend", choices=("auto", "eager", "triton"), default=d.backend,
                   help="histogram backend of the losses and the conditioning")
    g.add_argument("--resume", action=argparse.BooleanOptionalAction, default=d.resume,
                   help="continue from the run folder's checkpoint if it has one; --no-resume starts over")
    g.add_argument("--sample-every", type=int, default=d.sample_every, help="steps between sample grids")
    g.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="steps between checkpoints (one is also written at each epoch end and at the end)")
    g.add_argument("--max-nonfinite", type=int, default=d.max_nonfinite,
                   help="stop after this many consecutive steps with a non-finite loss (each is skipped)")
    return p


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    args = vars(build_parser().parse_args(argv))
    args["hue_weight"] = None if args["hue_weight"] == "none" else args["hue_weight"]
    return TrainConfig(**args)


def check_config(cfg: TrainConfig) -> None:
    """Reject settings that cannot work, naming the flag (raises :class:`RunError`)."""
    minimum = dict(image_size=32, batch_size=1, epochs=1, max_steps=1, bins=2, cond_bins=2, ngf=1, ndf=1,
                   synthetic_images=2, num_workers=0, threads=1, sample_every=1, checkpoint_every=1, max_nonfinite=1)
    for field, low in minimum.items():
        value = getattr(cfg, field)
        if value is not None and value < low:
            raise RunError(f"{_flag(field)} must be >= {low}; got {value}")
    for field in ("lr", "bandwidth"):
        if not getattr(cfg, field) > 0:
            raise RunError(f"{_flag(field)} must be > 0; got {getattr(cfg, field)}")
    for field in ("lambda_gan", "lambda_mi", "lambda_hist"):
        if not (math.isfinite(getattr(cfg, field)) and getattr(cfg, field) >= 0):
            raise RunError(f"{_flag(field)} must be a finite number >= 0; got {getattr(cfg, field)}")
    if not 0 <= cfg.beta1 < 1:
        raise RunError(f"--beta1 must be in [0, 1); got {cfg.beta1}")
    try:
        device = runtime.resolve_device(cfg.device)
        HueNetLoss(cfg.colorspace, cfg.bins, cfg.bandwidth, hist_channels=cfg.hist_channels,
                   mi_channels=cfg.mi_channels, hue_weight=cfg.hue_weight, detach_hue_weight=cfg.detach_hue_weight)
        HueNetGenerator(cfg.image_size, cfg.ngf, cfg.cond_bins, cfg.colorspace, cfg.bandwidth, cfg.dropout)
        # The backend is only resolved when a histogram is computed; do it now for a clear early error
        # (e.g. backend="triton" before its kernels exist) instead of a traceback from inside the first step.
        soft_histogram(torch.zeros(1, 1, 2, 2, device=device), 2, backend=cfg.backend)
    except (ValueError, RuntimeError) as err:
        raise RunError(str(err)) from err


class _ResumableSampler(DistributedSampler):
    """A DistributedSampler whose next epoch can start ``skip`` samples in, to resume a run mid-epoch."""

    skip = 0

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return self.num_samples - self.skip


class Trainer:
    """One training run (one process of it under torchrun): models, data, state, and the loop."""

    def __init__(self, cfg: TrainConfig, ctx: runtime.Distributed):
        self.cfg, self.ctx, self.device = cfg, ctx, ctx.device
        self.out = Path(cfg.out)
        self.amp = cfg.amp and self.device.type == "cuda"
        if cfg.amp and not self.amp and ctx.is_main:
            warnings.warn("--amp works on CUDA only; training in fp32 on the CPU", stacklevel=2)

        try:
            images = make_image_set(cfg.data, cfg.image_size, cfg.seed, cfg.synthetic_images)
        except (OSError, ValueError) as err:
            raise RunError(str(err)) from err
        self.skipped_files = len(images.skipped)
        train_idx, val_idx = split_indices(len(images), cfg.val_fraction, cfg.seed)
        self.train_set = UnpairedPairs(images, train_idx, cfg.image_size, True, cfg.seed)
        val_set = UnpairedPairs(images, val_idx[:VAL_PAIRS], cfg.image_size, False, cfg.seed)
        pairs = [val_set[i] for i in range(len(val_set))]
        self.val_source, self.val_target = (torch.stack(t).to(self.device) for t in zip(*pairs))
        self.steps_per_epoch = len(self.train_set) // ctx.world_size // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise RunError(f"--batch-size {cfg.batch_size} x {ctx.world_size} process(es) is more than the "
                           f"{len(self.train_set)} training images")
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.sampler = _ResumableSampler(self.train_set, ctx.world_size, ctx.rank, shuffle=True, seed=cfg.seed,
                                         drop_last=True)

        torch.manual_seed(cfg.seed)  # identical initial weights in every process
        self.G = HueNetGenerator(cfg.image_size, cfg.ngf, cfg.cond_bins, cfg.colorspace, cfg.bandwidth,
                                 cfg.dropout, cfg.backend).to(self.device)
        self.D = PatchDiscriminator(cfg.ndf or cfg.ngf).to(self.device)
        self.loss = HueNetLoss(cfg.colorspace, cfg.bins, cfg.bandwidth, cfg.lambda_hist, cfg.lambda_mi,
                               cfg.hist_channels, cfg.mi_channels, cfg.emd_order, cfg.hue_weight, "none",
                               cfg.backend, cfg.detach_hue_weight)
        self.gan = GANLoss(cfg.gan_mode)
        betas = (cfg.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.G.parameters(), cfg.lr, betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), cfg.lr, betas)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        if ctx.enabled:
            ids = [self.device] if self.device.type == "cuda" else None
            # No buffer sync in forward: D runs several forwards per step, and re-broadcasting its BatchNorm
            # buffers in between would modify tensors autograd saved. Each process keeps its own statistics
            # (the weights start equal; DDP syncs their gradients).
            no_sync = {_BUFFER_SYNC_ARG: False}
            self.G_train = DistributedDataParallel(self.G, ids, **no_sync)
            self.D_train = DistributedDataParallel(self.D, ids, **no_sync)
        else:
            self.G_train, self.D_train = self.G, self.D

        self.step = self.epoch = self.epoch_step = 0
        self.nonfinite_total = self.nonfinite_run = 0
        self.elapsed = 0.0
        self.last_saved = -1
        self.epoch_losses: list[dict] = []  # the finite step records of the epoch in progress (rank 0)
        self.resumed_from = self._resume_or_reset()

    # ----------------------------------------------------------------------------------------- run folder
    def _resume_or_reset(self) -> int | None:
        """Load the run folder's checkpoint (returns its step), or clear the folder's old run outputs."""
        path = self.out / CHECKPOINT_NAME
        if self.cfg.resume and path.exists():
            state = load_checkpoint(path, self.device)
            now = asdict(self.cfg)
            changed = [f"{_flag(k)} {state['config'].get(k)!r} -> {now[k]!r}" for k in now
                       if k not in RESUMABLE_CHANGES and state["config"].get(k) != now[k]]
            if changed:
                raise RunError(f"--out {str(self.out)!r} holds a checkpoint of a run with other settings ("
                               + "; ".join(changed) + "). Rerun with the same flags to resume it, pass --no-resume "
                               "to start over there, or choose another --out.")
            if state["world_size"] != self.ctx.world_size:
                raise RunError(f"the checkpoint in {str(self.out)!r} was written by {state['world_size']} "
                               f"process(es); resume it with the same number (now {self.ctx.world_size}), or "
                               "pass --no-resume")
            self.G.load_state_dict(state["generator"])
            self.D.load_state_dict(state["discriminator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.scaler.load_state_dict(state["scaler"])
            set_rng_state(state["rng"][self.ctx.rank])
            self.step, self.epoch, self.epoch_step = state["step"], state["epoch"], state["epoch_step"]
            self.nonfinite_total, self.elapsed = state["nonfinite_total"], state["elapsed"]
            self.last_saved = self.step
            if self.ctx.is_main:
                # Steps logged after the checkpoint are run again; drop them so the log has each step once.
                runlog.truncate_metrics(self.out, self.step)
                self.epoch_losses = [r for r in runlog.read_metrics(self.out)
                                     if r["kind"] == "step" and r["epoch"] == self.epoch and not r["nonfinite"]]
            resumed = self.step
        else:
            if self.ctx.is_main and self.out.exists():
                for name in (CHECKPOINT_NAME, runlog.METRICS_NAME, runlog.SUMMARY_NAME, runlog.EVALUATION_NAME):
                    (self.out / name).unlink(missing_ok=True)
                for old in itertools.chain((self.out / runlog.SAMPLES_DIR).glob("step_*"),
                                           (self.out / runlog.PLOTS_DIR).glob("*.png")):
                    old.unlink()
            resumed = None
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.out)
            runlog.write_json(self.out / runlog.CONFIG_NAME, asdict(self.cfg))
        runtime.barrier(self.ctx)
        return resumed

    def save(self) -> None:
        """Write the checkpoint (every process takes part: the RNG states of all are gathered)."""
        states = [None] * self.ctx.world_size
        if self.ctx.enabled:
            dist.all_gather_object(states, rng_state())
        else:
            states[0] = rng_state()
        if self.ctx.is_main:
            save_checkpoint({
                "config": asdict(self.cfg), "generator_config": self.G.config,
                "generator": self.G.state_dict(), "discriminator": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": states, "step": self.step, "epoch": self.epoch,
                "epoch_step": self.epoch_step, "world_size": self.ctx.world_size,
                "nonfinite_total": self.nonfinite_total, "elapsed": self.elapsed,
            }, self.out / CHECKPOINT_NAME)
        self.last_saved = self.step

    # --------------------------------------------------------------------------------------------- steps
    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, enabled=self.amp)

    def _all_finite(self, loss: torch.Tensor) -> bool:
        """Whether ``loss`` is finite in every process: they must all skip a step, or none."""
        flag = torch.isfinite(loss.detach()).float().reshape(1)
        if self.ctx.enabled:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def train_step(self, source: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """One D update then one G update; a loss that is not finite skips its update(s)."""
        source = source.to(self.device, non_blocking=True)
        target = target.to(self.device, non_blocking=True)
        cfg = self.cfg
        with self._autocast():
            output = self.G_train(source, self.G.histograms(target))

            self.D.requires_grad_(True)
            loss_d = self.gan.discriminator(self.D_train(source), self.D_train(output.detach()))
        ok = self._all_finite(loss_d)
        stepped = False
        if ok:
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.scaler.step(self.opt_d)
            stepped = True

            # G's adversarial term goes through the plain module with D frozen: no DDP reduction for D here.
            self.D.requires_grad_(False)
            with self._autocast():
                adv = self.gan.generator(self.D(output))
            # The histogram losses compute in fp32 whatever the autocast state; give them fp32 images too.
            terms = self.loss.terms(output.float(), source, target)
            hist, mi = terms["hist"].mean(), terms["mi"].mean()
            loss_g = cfg.lambda_gan * adv + cfg.lambda_mi * mi + cfg.lambda_hist * hist
            ok = self._all_finite(loss_g)
            if ok:
                self.opt_g.zero_grad(set_to_none=True)
                self.scaler.scale(loss_g).backward()
                self.scaler.step(self.opt_g)
        if stepped:
            self.scaler.update()

        if ok:
            self.nonfinite_run = 0
            values = torch.stack([loss_g.detach(), loss_d.detach(), adv.detach(), hist.detach(), mi.detach()])
            values = runtime.all_reduce_mean(self.ctx, values.float()).tolist()
        else:
            self.nonfinite_total += 1
            self.nonfinite_run += 1
            if self.nonfinite_run >= cfg.max_nonfinite:
                raise NonFiniteLossError(
                    f"{self.nonfinite_run} consecutive steps had a non-finite loss (step {self.step + 1}); "
                    "stopping. The last good checkpoint is in the run folder; try a lower --lr or --lambda-hist, "
                    "or run without --amp.")
            values = [math.nan] * 5
        return dict(zip(LOSS_KEYS, values), nonfinite=not ok)

    @torch.no_grad()
    def _generate(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """G's output in eval mode (BatchNorm running statistics), as at inference."""
        self.G.eval()
        try:
            return self.G(source, self.G.histograms(target)).float()
        finally:
            self.G.train()

    def validate(self) -> dict[str, float]:
        """The unweighted loss terms and the hard hue EMD on the fixed validation pairs."""
        output = self._generate(self.val_source, self.val_target)
        terms = self.loss.terms(output, self.val_source, self.val_target)
        return {"val_hist": terms["hist"].mean().item(), "val_mi": terms["mi"].mean().item(),
                "val_hue_emd": hue_emd(output, self.val_target).mean().item()}

    def write_samples(self) -> None:
        src, tgt = self.val_source[:SAMPLE_PAIRS], self.val_target[:SAMPLE_PAIRS]
        plots.save_samples(self.out, self.step, src, tgt, self._generate(src, tgt))

    # ---------------------------------------------------------------------------------------------- loop
    def run(self) -> dict:
        cfg, main = self.cfg, self.ctx.is_main
        if main and self.resumed_from is not None:
            print(f"huenet.train: resuming {str(self.out)!r} from step {self.step} (epoch {self.epoch})",
                  file=sys.stderr)
        workers = cfg.num_workers if cfg.num_workers is not None else (4 if self.device.type == "cuda" else 0)
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not main, unit="it", dynamic_ncols=True,
                   desc="train", file=sys.stderr)
        start, start_elapsed = time.perf_counter(), self.elapsed
        while self.step < self.total_steps:
            self.train_set.set_epoch(self.epoch)
            self.sampler.set_epoch(self.epoch)
            self.sampler.skip = self.epoch_step * cfg.batch_size
            loader = DataLoader(self.train_set, cfg.batch_size, sampler=self.sampler, num_workers=workers,
                                drop_last=True, pin_memory=self.device.type == "cuda")
            for source, target in loader:
                record = self.train_step(source, target)
                self.step += 1
                self.epoch_step += 1
                self.elapsed = start_elapsed + time.perf_counter() - start
                bar.update()
                if main:
                    bar.set_postfix(G=f"{record['loss_g']:.3f}", D=f"{record['loss_d']:.3f}",
                                    hist=f"{record['hist']:.4f}", mi=f"{record['mi']:.3f}", refresh=False)
                    runlog.append_metrics(self.out, dict(kind="step", step=self.step, epoch=self.epoch,
                                                         time=round(self.elapsed, 3), **record))
                    if not record["nonfinite"]:
                        self.epoch_losses.append(record)
                    if self.step % cfg.sample_every == 0:
                        self.write_samples()
                # The last step of an epoch is saved by _end_epoch, after the epoch's record is logged.
                if self.step % cfg.checkpoint_every == 0 and self.epoch_step < self.steps_per_epoch:
                    self.save()
                if self.step >= self.total_steps:
                    break
            if self.epoch_step == self.steps_per_epoch:
                self._end_epoch()
        bar.close()
        if self.last_saved != self.step:
            self.save()
        return self._finish() if main else {}

    def _end_epoch(self) -> None:
        if self.ctx.is_main:
            steps = self.epoch_losses
            means = {k: sum(r[k] for r in steps) / len(steps) for k in LOSS_KEYS} if steps else {}
            runlog.append_metrics(self.out, dict(kind="epoch", step=self.step, epoch=self.epoch,
                                                 time=round(self.elapsed, 3), **means, **self.validate()))
            self.epoch_losses = []
        self.epoch += 1
        self.epoch_step = 0
        self.save()

    def _finish(self) -> dict:
        if self._last_sample_step() != self.step:
            self.write_samples()
        plots.regenerate(self.out, redraw_samples=False)
        val = self.validate()
        identity = hue_emd(self.val_source, self.val_target).mean().item()
        epochs = [r for r in runlog.read_metrics(self.out) if r["kind"] == "epoch"]
        summary = dict(steps=self.step, epochs_completed=self.epoch, seconds=round(self.elapsed, 1),
                       it_per_s=round(self.step / self.elapsed, 3) if self.elapsed else None,
                       nonfinite_steps=self.nonfinite_total, unreadable_files=self.skipped_files,
                       val_hue_emd=val["val_hue_emd"], val_hue_emd_identity=identity, val_mi=val["val_mi"],
                       last_epoch={k: v for k, v in epochs[-1].items() if k not in ("kind",)} if epochs else None,
                       resumed_from=self.resumed_from, out=str(self.out))
        runlog.write_json(self.out / runlog.SUMMARY_NAME, summary)
        minutes, seconds = divmod(self.elapsed, 60)
        print(f"huenet.train: {self.step} steps ({self.epoch} full epochs) in {int(minutes)}m{seconds:04.1f}s "
              f"({summary['it_per_s']} it/s) -> {self.out}\n"
              f"  validation hue EMD to target (hard, 256 bins): model {val['val_hue_emd']:.4f}, "
              f"identity {identity:.4f}; D_MI(V) to source: {val['val_mi']:.4f}\n"
              f"  non-finite steps skipped: {self.nonfinite_total}; unreadable images skipped: {self.skipped_files}\n"
              f"  see {self.out / runlog.PLOTS_DIR}, {self.out / runlog.SAMPLES_DIR}; "
              f"evaluate with: python -m huenet.evaluate --checkpoint {self.out}", file=sys.stderr)
        return summary

    def _last_sample_step(self) -> int | None:
        samples = sorted((self.out / runlog.SAMPLES_DIR).glob("step_*.npz"))
        return int(samples[-1].stem.split("_")[1]) if samples else None


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) training with ``cfg``; returns the summary (empty on ranks other than 0).

    Raises:
        RunError: bad settings or data, a run folder with another run's checkpoint, or too many non-finite
            steps.
    """
    check_config(cfg)
    runtime.configure_threads(cfg.threads)
    ctx = runtime.init_distributed(cfg.device)
    try:
        return Trainer(cfg, ctx).run()
    finally:
        runtime.shutdown_distributed(ctx)


def main(argv: list[str] | None = None) -> None:
    cfg = config_from_args(argv)
    try:
        train(cfg)
    except RunError as err:
        sys.exit(f"huenet.train: error: {err}")


if __name__ == "__main__":
    main()
