"""The end of a training run: its summary (summary.json) and the report printed to stderr, which sets the
network's validation scores beside the baseline its task must beat."""

from __future__ import annotations

import sys

from .. import runlog
from ..methods.registry import NETWORK
from ..methods.scoring import PAIRED_BASELINES
from ..metrics import METRICS, PAIRED_METRICS, hue_emd

PROG = "huenet.train"


def write_summary(trainer, val: dict[str, float], scores: dict) -> dict:
    """Write and print the summary of ``trainer``'s finished run from its last validation ``val`` and the
    scores of :func:`~huenet.colortransfer.methods.scoring.evaluate` (or ``evaluate_paired``); returns it."""
    identity = hue_emd(trainer.val_source, trainer.val_target).mean().item()
    # The model against the baseline its task must beat: Reinhard for transfer, the input for the paired tasks.
    if trainer.paired:
        metrics, keys = PAIRED_METRICS, ("ab_swd", "lightness_ssim", "ssim")
        baseline = next(iter(PAIRED_BASELINES[trainer.cfg.task]))
    else:
        metrics, keys, baseline = METRICS, ("hue_emd", "hue_intersection", "v_ssim"), "reinhard"
    epochs = [r for r in runlog.read_metrics(trainer.out) if r["kind"] == "epoch"]
    summary = dict(
        steps=trainer.step,
        epochs_completed=trainer.epoch,
        seconds=round(trainer.elapsed, 1),
        it_per_s=round(trainer.step / trainer.elapsed, 3) if trainer.elapsed else None,
        nonfinite_steps=trainer.nonfinite_total,
        unreadable_files=len(trainer.unreadable),
        unreadable=sorted(trainer.unreadable),
        val_hue_emd=val["val_hue_emd"],
        val_hue_emd_identity=identity,
        val_mi=val["val_mi"],
        **{k: val[k] for k in ("val_psnr", "val_ssim") if k in val},
        last_epoch={k: v for k, v in epochs[-1].items() if k not in ("kind",)} if epochs else None,
        resumed_from=trainer.resumed_from,
        out=str(trainer.out),
        evaluation={"pairs": len(trainer.eval_pairs), "results": scores},
    )
    runlog.write_json(trainer.out / runlog.SUMMARY_NAME, summary)
    minutes, seconds = divmod(trainer.elapsed, 60)
    print(
        f"{PROG}: {trainer.step} steps ({trainer.epoch} full epochs) in {int(minutes)}m{seconds:04.1f}s "
        f"({summary['it_per_s']} it/s) -> {trainer.out}\n"
        f"  validation, all {len(trainer.eval_pairs)} pairs (the pairs and metrics of huenet.evaluate):\n"
        + "".join(
            f"    {name}: "
            + "; ".join(
                f"{metrics[k][0]} {scores[name][k]['mean']:.4f} ({baseline} {scores[baseline][k]['mean']:.4f})"
                for k in keys
            )
            + "\n"
            for name in scores
            if name.startswith(NETWORK)  # the raw network, and refined as huenet.transfer gives it
        )
        + f"  non-finite steps skipped: {trainer.nonfinite_total}; unreadable images skipped: "
        f"{len(trainer.unreadable)}\n"
        f"  see {trainer.out / runlog.PLOTS_DIR}, {trainer.out / runlog.SAMPLES_DIR}; "
        f"evaluate with: python -m huenet.evaluate --checkpoint {trainer.out}",
        file=sys.stderr,
    )
    return summary
