"""The files of a training run folder and its metrics log (JSON Lines, one record per line).

Layout of a run folder::

    config.json         the full config of the run
    checkpoint.pt       the latest checkpoint (see huenet.colortransfer.training.checkpoint)
    metrics.jsonl       {"kind": "step", ...} per step, {"kind": "epoch", ...} per epoch
    samples/            step_XXXXXXX.png grids (source | target | output) and the .npz they are drawn from
    plots/              loss curves, hue histograms, joint histogram (python -m huenet.plots RUN_DIR)
    summary.json        totals of the last finished run
    evaluation.json     written by python -m huenet.evaluate
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "summary.json"
EVALUATION_NAME = "evaluation.json"
SAMPLES_DIR = "samples"
PLOTS_DIR = "plots"


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as indented JSON atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of a run's metrics log, in order; a torn last line (a killed writer) is ignored."""
    path = Path(run_dir) / METRICS_NAME
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def append_metrics(run_dir: str | os.PathLike, record: dict) -> None:
    with open(Path(run_dir) / METRICS_NAME, "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_metrics(run_dir: str | os.PathLike, step: int) -> None:
    """Drop the records after ``step``: when resuming from a checkpoint, those steps are run again."""
    path = Path(run_dir) / METRICS_NAME
    if path.exists():
        kept = [r for r in read_metrics(run_dir) if r["step"] <= step]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(tmp, path)
