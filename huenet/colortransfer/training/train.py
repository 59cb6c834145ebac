r"""Train a Hue-Net colour-transfer GAN: ``python -m huenet.train [--data DIR] [--out RUN_DIR] ...``.

The loop is :mod:`~huenet.colortransfer.training.trainer`; the settings and their checks are in
:mod:`~huenet.colortransfer.training.options`, the nets, losses and the step in
:mod:`~huenet.colortransfer.training.gan`.

Without ``--data`` it trains on the built-in synthetic image set and finishes in a few minutes on a CPU.
Resuming is automatic: rerunning the same command in the same ``--out`` continues from its checkpoint, exactly
(a resumed run equals an uninterrupted one bit for bit on the CPU). Ctrl-C or SIGTERM stops at the end of the
current step and writes the checkpoint. Under ``torchrun --nproc_per_node=N -m huenet.train ...`` it trains
with DistributedDataParallel; only rank 0 writes files. See ``docs/training.md``.
"""

from __future__ import annotations

import signal
import sys

from .. import runtime
from ..cli import RunError, clean_warnings, exit_with
from .options import TrainConfig, check_config, config_from_args, resolve_task_defaults
from .trainer import PROG, Interrupted, NonFiniteLossError, Trainer

__all__ = ["NonFiniteLossError", "TrainConfig", "main", "train"]


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) training with ``cfg``; returns the summary (empty on ranks other than 0).

    Raises:
        UsageError: a setting that cannot work (names the flag).
        RunError: bad data, a run folder with another run's or an unreadable checkpoint, too many non-finite
            steps, or :class:`Interrupted` by SIGINT / SIGTERM (after writing the checkpoint).
    """
    cfg = resolve_task_defaults(cfg)
    check_config(cfg)
    runtime.configure_threads(cfg.threads)
    ctx = runtime.init_distributed(cfg.device)
    try:
        return Trainer(cfg, ctx).run()
    finally:
        runtime.shutdown_distributed(ctx)


def main(argv: list[str] | None = None) -> None:
    cfg = config_from_args(argv)
    with clean_warnings(PROG):
        try:
            train(cfg)
        except Interrupted as err:  # not an error: the run stopped as asked and can be resumed
            print(f"{PROG}: {err}", file=sys.stderr)
            sys.exit(err.code)
        except RunError as err:
            exit_with(PROG, err)
        except KeyboardInterrupt:  # a second Ctrl-C: stop now; the last checkpoint is whole (atomic writes)
            exit_with(PROG, RunError(f"interrupted; the last checkpoint in {cfg.out!r} is kept", 128 + signal.SIGINT))


if __name__ == "__main__":
    main()
