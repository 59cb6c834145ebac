"""The training loop of ``python -m huenet.train``: run folder, resume, checkpoints, logging, progress, samples
and the validation scores, around the GAN step of :mod:`~huenet.colortransfer.training.gan`.

A resumed run equals an uninterrupted one bit for bit on the CPU. Ctrl-C or SIGTERM stops at the end of the
current step and writes the checkpoint; under torchrun only rank 0 writes files.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import runlog, runtime
from ..cli import RunError, flag_message
from ..data.folders import UnpairedPairs, make_image_set, skipped_images, split_indices
from ..data.paired import PairedImages, make_paired_image_set
from ..data.tasks import PAIRED_TASKS
from ..methods.refine import REFINE_STEPS
from ..methods.scoring import evaluate, evaluate_paired
from ..metrics import hue_emd, psnr, rgb_ssim
from . import plots, summary
from .checkpoint import (
    CHECKPOINT_NAME,
    TRAINING_KEYS,
    CheckpointError,
    load_checkpoint,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .gan import LOSS_KEYS, HueNetGAN, pixel_weight
from .options import (
    RESUMABLE_CHANGES,
    TrainConfig,
    flag,
    library_flags,
)
from .summary import PROG

# Validation pairs scored at the end of each epoch, and how many of them the sample grids show.
VAL_PAIRS = 32
SAMPLE_PAIRS = 4


class NonFiniteLossError(RunError):
    """Too many consecutive steps had a non-finite loss."""


class Interrupted(RunError):
    """SIGINT or SIGTERM stopped the run at a step boundary, after writing its checkpoint (exit 128 + signal)."""

    def __init__(self, step: int, signum: int):
        super().__init__(f"interrupted at step {step}; run the same command to resume", 128 + signum)


class Trainer:
    """One training run (one process of it under torchrun): data, the GAN, the run's state, and the loop."""

    def __init__(self, cfg: TrainConfig, ctx: runtime.Distributed):
        self.cfg, self.ctx, self.device = cfg, ctx, ctx.device
        self.out = Path(cfg.out)
        if cfg.amp and ctx.device.type != "cuda" and ctx.is_main:
            warnings.warn("--amp works on CUDA only; training in fp32 on the CPU", stacklevel=2)

        # Transfer: (source, target) photos. Paired tasks: (input, ground truth), the ground truth being the
        # reference in training.
        self.paired = cfg.task in PAIRED_TASKS
        try:
            if self.paired:
                images = make_paired_image_set(
                    cfg.data, cfg.image_size, cfg.seed, cfg.synthetic_images, cfg.data_format
                )
            else:
                images = make_image_set(cfg.data, cfg.image_size, cfg.seed, cfg.synthetic_images)
        except (OSError, ValueError) as err:
            raise RunError(f"--data: {err}" if cfg.data is not None else flag_message(err, library_flags())) from err
        # Names of the images that could not be read: found unreadable up front, or failing to decode later.
        self.images = images
        self.unreadable = set(skipped_images(images))
        train_idx, val_idx = split_indices(len(images), cfg.val_fraction, cfg.seed)
        task = (cfg.task,) if self.paired else ()
        dataset = PairedImages if self.paired else UnpairedPairs
        try:
            self.train_set = dataset(images, train_idx, cfg.image_size, *task, train=True, seed=cfg.seed)
        except ImportError as err:  # edge maps of photos without kornia
            raise RunError(f"--task {cfg.task}: {err}") from err
        val_set = dataset(images, val_idx[:VAL_PAIRS], cfg.image_size, *task, train=False, seed=cfg.seed)
        # The end-of-run score uses every validation pair, as python -m huenet.evaluate does.
        self.eval_pairs = dataset(images, val_idx, cfg.image_size, *task, train=False, seed=cfg.seed)
        val = [val_set[i] for i in range(len(val_set))]
        self._note_unreadable(val)
        self.val_source, self.val_target, val_alpha_s, val_alpha_t = (
            torch.stack(t).to(self.device) for t in list(zip(*val))[:4]
        )
        self.val_weights = (pixel_weight(val_alpha_s), pixel_weight(val_alpha_t))
        self.steps_per_epoch = len(self.train_set) // ctx.world_size // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise RunError(
                f"--batch-size {cfg.batch_size} x {ctx.world_size} process(es) is more than the "
                f"{len(self.train_set)} training images"
            )
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.sampler = runtime.ResumableSampler(
            self.train_set, ctx.world_size, ctx.rank, shuffle=True, seed=cfg.seed, drop_last=True
        )

        self.gan = HueNetGAN.from_config(cfg, ctx)
        self.step = self.epoch = self.epoch_step = 0
        self.nonfinite_total = self.nonfinite_run = 0
        self.elapsed = 0.0
        self.last_saved = -1
        self.epoch_losses: list[dict] = []  # the finite step records of the epoch in progress (rank 0)
        self.resumed_from = self._resume_or_reset()

    def _note_unreadable(self, pairs) -> None:
        """Count the images that ``pairs`` (Pairs or a batch's ``skipped`` strings) could not decode, warning
        once for each."""
        for name, reason in skipped_images(self.images, pairs).items():
            if name not in self.unreadable:
                self.unreadable.add(name)
                if self.ctx.is_main:
                    warnings.warn(f"skipping unreadable image {name!r}: {reason}", stacklevel=2)

    # ----------------------------------------------------------------------------------------- run folder
    def _resume_or_reset(self) -> int | None:
        """Load the run folder's checkpoint (returns its step), or clear the folder's old run outputs."""
        path = self.out / CHECKPOINT_NAME
        if self.cfg.resume and path.exists():
            try:
                state = load_checkpoint(path, self.device, TRAINING_KEYS)
            except CheckpointError as err:
                raise RunError(
                    f"{err}; to start over, rerun with --no-resume or delete the folder {str(self.out)!r}"
                ) from err
            now = asdict(self.cfg)
            changed = [
                f"{flag(k)} {state['config'].get(k)!r} -> {now[k]!r}"
                for k in now
                if k not in RESUMABLE_CHANGES and state["config"].get(k) != now[k]
            ]
            if changed:
                raise RunError(
                    f"--out {str(self.out)!r} holds a checkpoint of a run with other settings ("
                    + "; ".join(changed)
                    + "). Rerun with the same flags to resume it, pass --no-resume "
                    "to start over there, or choose another --out."
                )
            if state["world_size"] != self.ctx.world_size:
                raise RunError(
                    f"the checkpoint in {str(self.out)!r} was written by {state['world_size']} "
                    f"process(es); resume it with the same number (now {self.ctx.world_size}), or "
                    "pass --no-resume"
                )
            self.gan.load_state_dict(state)
            set_rng_state(state["rng"][self.ctx.rank])
            self.step, self.epoch, self.epoch_step = state["step"], state["epoch"], state["epoch_step"]
            self.nonfinite_total, self.elapsed = state["nonfinite_total"], state["elapsed"]
            self.unreadable |= set(state.get("unreadable", ()))
            self.last_saved = self.step
            if self.ctx.is_main:
                # Steps logged after the checkpoint are run again; drop them so the log has each step once.
                runlog.truncate_metrics(self.out, self.step)
                self.epoch_losses = [
                    r
                    for r in runlog.read_metrics(self.out)
                    if r["kind"] == "step" and r["epoch"] == self.epoch and not r["nonfinite"]
                ]
            resumed = self.step
        else:
            if self.ctx.is_main and self.out.exists():
                for name in (CHECKPOINT_NAME, runlog.METRICS_NAME, runlog.SUMMARY_NAME, runlog.EVALUATION_NAME):
                    (self.out / name).unlink(missing_ok=True)
                for old in itertools.chain(
                    (self.out / runlog.SAMPLES_DIR).glob("step_*"), (self.out / runlog.PLOTS_DIR).glob("*.png")
                ):
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
            save_checkpoint(
                {
                    "config": asdict(self.cfg),
                    "generator_config": self.gan.G.config,
                    **self.gan.state_dict(),
                    "rng": states,
                    "step": self.step,
                    "epoch": self.epoch,
                    "epoch_step": self.epoch_step,
                    "world_size": self.ctx.world_size,
                    "nonfinite_total": self.nonfinite_total,
                    "elapsed": self.elapsed,
                    "unreadable": sorted(self.unreadable),
                },
                self.out / CHECKPOINT_NAME,
            )
        self.last_saved = self.step

    # --------------------------------------------------------------------------------------------- steps
    def train_step(self, batch) -> dict:
        """One GAN step on a batch of :class:`~huenet.colortransfer.data.folders.Pair`; stops the run after too many
        consecutive non-finite steps."""
        self._note_unreadable(batch.skipped)
        result = self.gan.step(batch.source, batch.target, batch.source_alpha, batch.target_alpha)
        record = {k: v.item() for k, v in result.items() if k != "nonfinite"}
        record["nonfinite"] = result["nonfinite"]
        if result["nonfinite"]:
            self.nonfinite_total += 1
            self.nonfinite_run += 1
            if self.nonfinite_run >= self.cfg.max_nonfinite:
                raise NonFiniteLossError(
                    f"{self.nonfinite_run} consecutive steps had a non-finite loss (step {self.step + 1}); "
                    "stopping. The last good checkpoint is in the run folder; try a lower --lr or --lambda-hist, "
                    "or run without --amp."
                )
        else:
            self.nonfinite_run = 0
        return record

    def validate(self) -> dict[str, float]:
        """The unweighted loss terms and the hard hue EMD on the fixed validation pairs; for the paired tasks
        also PSNR and SSIM to the ground truth (which is the reference here)."""
        output = self.gan.generate(self.val_source, self.val_target)
        terms = self.gan.loss.terms(output, self.val_source, self.val_target, *self.val_weights)
        scores = {
            "val_hist": terms["hist"].mean().item(),
            "val_mi": terms["mi"].mean().item(),
            "val_hue_emd": hue_emd(output, self.val_target).mean().item(),
        }
        if self.paired:
            scores.update(
                val_psnr=psnr(output, self.val_target).mean().item(),
                val_ssim=rgb_ssim(output, self.val_target).mean().item(),
            )
        return scores

    def write_samples(self) -> None:
        src, tgt = self.val_source[:SAMPLE_PAIRS], self.val_target[:SAMPLE_PAIRS]
        if not self.paired:
            plots.save_samples(self.out, self.step, src, tgt, self.gan.generate(src, tgt))
            return
        # Paired: each input is shown with another validation photo as its reference (the exemplar, as at test
        # time), next to its own ground truth.
        reference = self.val_target.roll(1, 0)[:SAMPLE_PAIRS]
        plots.save_samples(self.out, self.step, src, reference, self.gan.generate(src, reference), tgt)

    def _stop_requested(self, received: dict) -> int | None:
        """The signal that asks every process to stop now, if any (all processes stop at the same step)."""
        signum = received.get("signum", 0)
        if self.ctx.enabled:
            flag_tensor = torch.tensor([signum], device=self.device)
            dist.all_reduce(flag_tensor, op=dist.ReduceOp.MAX)
            signum = int(flag_tensor.item())
        return signum or None

    # ---------------------------------------------------------------------------------------------- loop
    def run(self) -> dict:
        cfg, main = self.cfg, self.ctx.is_main
        if self.resumed_from is not None and self.step >= self.total_steps:
            if main:
                print(
                    f"{PROG}: the run in {str(self.out)!r} is finished (step {self.step} of {self.total_steps}); "
                    "nothing to do. Raise --epochs or --max-steps to train on, or pass --no-resume to start "
                    "over.",
                    file=sys.stderr,
                )
            summary = self.out / runlog.SUMMARY_NAME
            return json.loads(summary.read_text()) if main and summary.exists() else {}
        if main and self.resumed_from is not None:
            print(f"{PROG}: resuming {str(self.out)!r} from step {self.step} (epoch {self.epoch})", file=sys.stderr)
        workers = cfg.num_workers if cfg.num_workers is not None else (4 if self.device.type == "cuda" else 0)
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not main,
            unit="it",
            dynamic_ncols=True,
            desc="train",
            file=sys.stderr,
        )
        start, start_elapsed = time.perf_counter(), self.elapsed
        if main and self.step == 0:
            self.write_samples()  # the starting point, so that progress is visible
        with runtime.stop_on_signals() as received:
            while self.step < self.total_steps and not self._stop_requested(received):
                self.train_set.set_epoch(self.epoch)
                self.sampler.set_epoch(self.epoch)
                self.sampler.skip = self.epoch_step * cfg.batch_size
                # The loader's own generator seeds its workers: drawing that seed from the global RNG would
                # make a resumed run (whose global RNG was just restored) diverge from an uninterrupted one.
                loader = DataLoader(
                    self.train_set,
                    cfg.batch_size,
                    sampler=self.sampler,
                    num_workers=workers,
                    drop_last=True,
                    pin_memory=self.device.type == "cuda",
                    generator=torch.Generator().manual_seed(cfg.seed),
                )
                for batch in loader:
                    record = self.train_step(batch)
                    self.step += 1
                    self.epoch_step += 1
                    self.elapsed = start_elapsed + time.perf_counter() - start
                    bar.update()
                    if main:
                        bar.set_postfix(
                            G=f"{record['loss_g']:.3f}",
                            D=f"{record['loss_d']:.3f}",
                            hist=f"{record['hist']:.4f}",
                            mi=f"{record['mi']:.3f}",
                            refresh=False,
                        )
                        runlog.append_metrics(
                            self.out,
                            dict(kind="step", step=self.step, epoch=self.epoch, time=round(self.elapsed, 3), **record),
                        )
                        if not record["nonfinite"]:
                            self.epoch_losses.append(record)
                        if self.step % cfg.sample_every == 0:
                            self.write_samples()
                    # The last step of an epoch is saved by _end_epoch, after the epoch's record is logged.
                    if self.step % cfg.checkpoint_every == 0 and self.epoch_step < self.steps_per_epoch:
                        self.save()
                    if self.step >= self.total_steps or self._stop_requested(received):
                        break
                if self.epoch_step == self.steps_per_epoch:
                    self._end_epoch()
            bar.close()
            if self.last_saved != self.step:
                self.save()
            signum = self._stop_requested(received)
        if signum and self.step < self.total_steps:
            raise Interrupted(self.step, signum)
        return self._finish() if main else {}

    def _end_epoch(self) -> None:
        if self.ctx.is_main:
            steps = self.epoch_losses
            means = {k: sum(r[k] for r in steps) / len(steps) for k in LOSS_KEYS} if steps else {}
            runlog.append_metrics(
                self.out,
                dict(
                    kind="epoch",
                    step=self.step,
                    epoch=self.epoch,
                    time=round(self.elapsed, 3),
                    **means,
                    **self.validate(),
                ),
            )
            self.epoch_losses = []
        self.epoch += 1
        self.epoch_step = 0
        self.save()

    def _finish(self) -> dict:
        if self._last_sample_step() != self.step:
            self.write_samples()
        plots.regenerate(self.out, redraw_samples=False)
        return summary.write_summary(self, self.validate(), self._score())

    def _score(self) -> dict:
        """:func:`huenet.colortransfer.methods.scoring.evaluate` on every validation pair, G in eval mode."""
        self.gan.G.eval()
        try:
            # The run has warned about its data already (unreadable, grey images); python -m huenet.evaluate
            # repeats the per-pair warnings for whoever looks at the scores in detail.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.paired:
                    return evaluate_paired(self.gan.G, self.eval_pairs, device=self.device, slow=False)
                return evaluate(self.gan.G, self.eval_pairs, device=self.device, refine_steps=REFINE_STEPS)
        finally:
            self.gan.G.train()

    def _last_sample_step(self) -> int | None:
        samples = sorted((self.out / runlog.SAMPLES_DIR).glob("step_*.npz"))
        return int(samples[-1].stem.split("_")[1]) if samples else None
