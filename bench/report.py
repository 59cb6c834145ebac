"""Turn benchmark JSON results into a markdown table (ratios against "reference") and a log-log plot.

    python -m bench.report RESULTS.json [MORE.json ...] [--out DIR]

For each RESULTS.json it writes DIR/RESULTS.md and DIR/RESULTS.png (DIR defaults to the JSON's folder) and
prints the markdown. Ratios compare backends within one file only (same run, same machine, same load):
speed-up = reference time / time, memory = reference peak / peak, so "12×" reads "12 times faster / smaller".
Times are medians of the timed rounds.

GPU runs get two more columns, from the ceilings measured in the same session (bench/ceilings.py):
- bandwidth floor: (bytes that must move) / (measured copy bandwidth), as a fraction of the measured time;
- matrix peak: dense-equivalent FLOPs of the K x K joint products (2·N·K² each) per second, as a fraction of
  the assumed dense TF32 tensor-core peak of the GPU (ASSUMED_TF32_PEAK; the triton backend's default
  "tf32x3" precision does three TF32 products, so its own ceiling is a third of that).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .grid import NO_HIST, sort_key

# Datasheet dense (no sparsity) TF32 tensor-core FLOP/s, matched by substring of the GPU name, first match wins.
ASSUMED_TF32_PEAK = (
    ("H200", 494.7e12),
    ("H100 PCIe", 378e12),
    ("H100", 494.7e12),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("A100", 156e12),
    ("L40S", 183e12),
    ("L4", 60e12),
)
KEY = ("case", "mode", "batch", "side", "bins", "width")


@dataclass
class Run:
    name: str
    machine: dict
    huenet: dict
    rows: list[dict]


def load(path: str | Path) -> Run:
    """Read a pytest-benchmark JSON file written by bench/ into rows (extra_info plus times)."""
    path = Path(path)
    data = json.loads(path.read_text())
    rows = []
    for bench in data.get("benchmarks", []):
        info, stats = bench.get("extra_info", {}), bench.get("stats") or {}
        if "case" not in info:
            continue
        rows.append(dict(info, **{f"{k}_s": stats.get(k) for k in ("median", "mean", "min", "stddev")}))
    return Run(path.stem, data.get("machine_info", {}), data.get("huenet", {}), rows)


def assumed_peak(gpu: str | None) -> float | None:
    for name, peak in ASSUMED_TF32_PEAK:
        if gpu and name in gpu:
            return peak
    return None


def _ratio(num, den) -> float | None:
    return num / den if num and den else None


def with_ratios(rows: list[dict]) -> list[dict]:
    """Copies of ``rows`` with speedup and mem_ratio against the reference row of the same case and size."""
    refs = {tuple(r.get(k) for k in KEY): r for r in rows if r["backend"] == "reference"}
    out = []
    for r in rows:
        ref = refs.get(tuple(r.get(k) for k in KEY))
        out.append(
            dict(
                r,
                speedup=_ratio(ref and ref["median_s"], r["median_s"]),
                mem_ratio=_ratio(ref and ref["peak_mem_bytes"], r["peak_mem_bytes"]),
            )
        )
    return out


def fractions(row: dict, ceilings: dict | None) -> tuple[float | None, float | None]:
    """(bandwidth-floor fraction, matrix-peak fraction) of one row on a GPU run; None where not defined."""
    t = row.get("median_s")
    if not ceilings or not t:
        return None, None
    bw = row["min_bytes"] / ceilings["copy_bytes_per_s"] / t if row.get("min_bytes") else None
    peak = assumed_peak(ceilings.get("gpu"))
    matrix = row["joint_flops"] / t / peak if row.get("joint_flops") and peak else None
    return bw, matrix


def fmt_time(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def fmt_bytes(b: int | None) -> str:
    if b is None:
        return "—"
    return f"{b / 2**10:.0f} KiB" if b < 2**20 else f"{b / 2**20:.1f} MiB"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3g}×"


def fmt_pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _case_label(r: dict) -> str:
    return r["case"] if r.get("width") is None else f"{r['case']} (ngf {r['width']})"


def table(rows: list[dict], ceilings: dict | None) -> str:
    """Markdown table of rows that went through :func:`with_ratios`; GPU columns when ``ceilings`` is given."""
    head = ["case", "mode", "B", "H×W", "K", "backend", "time", "speed-up vs ref", "peak mem", "mem vs ref"]
    if ceilings:
        head += ["of BW floor", "of TF32 peak"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(rows, key=sort_key):
        cells = [
            _case_label(r),
            r["mode"],
            str(r["batch"]),
            f"{r['side']}²",
            str(r["bins"]),
            r["backend"],
            fmt_time(r["median_s"]),
            fmt_ratio(r["speedup"]),
            fmt_bytes(r["peak_mem_bytes"]),
            fmt_ratio(r["mem_ratio"]),
        ]
        if ceilings:
            cells += [fmt_pct(f) for f in fractions(r, ceilings)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_overhead(rows: list[dict]) -> str:
    """Markdown table of what HueNetLoss adds to a training iteration, per backend (empty if not measured)."""
    train = [r for r in rows if r["case"] == "train_step"]
    base = {tuple(r.get(k) for k in KEY): r for r in train if r["backend"] == NO_HIST}
    lines = []
    for r in sorted(train, key=sort_key):
        b = base.get(tuple(r.get(k) for k in KEY))
        if r["backend"] == NO_HIST or not b or not b["median_s"] or not r["median_s"]:
            continue
        added = r["median_s"] / b["median_s"] - 1
        lines.append(
            f"| {r['mode']} | {r['batch']} | {r['side']}² | {r['bins']} | {r['width']} | "
            f"{fmt_time(b['median_s'])} | {r['backend']} | {fmt_time(r['median_s'])} | {fmt_pct(added)} |"
        )
    if not lines:
        return ""
    head = "| mode | B | H×W | K | ngf | gan-only | backend | with HueNetLoss | HueNetLoss adds |"
    return "\n".join([head, "|" + "---|" * 9] + lines)


def describe(run: Run) -> str:
    m = run.machine.get("huenet", {})
    cores = m.get("usable_cores", m.get("logical_cores"))
    text = (
        f"Machine: {m.get('cpu_model', '?')} ({cores} usable cores), GPU {m.get('gpu') or 'none'}; "
        f"torch {m.get('torch')}, triton {m.get('triton')}, kornia {m.get('kornia') or 'not installed'}; "
        f"grid `{run.huenet.get('grid', '?')}`."
    )
    c = run.huenet.get("ceilings")
    if c:
        peak = assumed_peak(c.get("gpu"))
        text += (
            f" Measured copy bandwidth {c['copy_bytes_per_s'] / 1e12:.2f} TB/s; matrix product "
            f"{c['matmul_tf32_flops_per_s'] / 1e12:.0f} TFLOP/s (TF32), {c['matmul_bf16_flops_per_s'] / 1e12:.0f} "
            f"(bf16); assumed dense TF32 peak "
            + (f"{peak / 1e12:.0f} TFLOP/s." if peak else "unknown for this GPU (column left empty).")
        )
    loads = [r["loadavg_1m_at_start"] for r in run.rows if r.get("loadavg_1m_at_start") is not None]
    if loads and not c:  # on a shared CPU the load says how far the times can be trusted
        text += f" 1-minute load average at the start of the cases: {min(loads):.1f} to {max(loads):.1f}."
    methods = sorted({r["mem_method"] for r in run.rows if r.get("mem_method")})
    if methods:
        text += " Peak memory: " + "; ".join(methods) + "."
    return text


def skipped(run: Run) -> str:
    counts = Counter(s["reason"] for s in run.huenet.get("skipped", []))
    return "\n".join(f"- {n} × {reason}" for reason, n in sorted(counts.items()))


def markdown(run: Run, plot_name: str | None = None) -> str:
    rows = with_ratios(run.rows)
    parts = [
        f"## {run.name}",
        describe(run),
        'Times are medians; ratios are against "reference" (the dense paper-style backend) in the same run.',
        table(rows, run.huenet.get("ceilings")),
    ]
    overhead = train_overhead(rows)
    if overhead:
        parts += ["What HueNetLoss adds to one training iteration (D step + G step):", overhead]
    if plot_name:
        parts.append(f"![time and peak memory against pixel count]({plot_name})")
    skips = skipped(run)
    if skips:
        parts += ["Not measured:", skips]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="pytest-benchmark JSON files written by bench/")
    parser.add_argument("--out", help="folder for the .md and .png (default: next to each JSON)")
    args = parser.parse_args(argv)
    from .plot import plot  # matplotlib only for the command

    for path in map(Path, args.results):
        run = load(path)
        out = Path(args.out) if args.out else path.parent
        out.mkdir(parents=True, exist_ok=True)
        png = out / f"{run.name}.png"
        text = markdown(run, png.name if plot(run.rows, png, run.name) else None)
        (out / f"{run.name}.md").write_text(text)
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
