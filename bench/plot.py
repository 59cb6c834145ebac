"""Log-log plot of time and peak memory against pixel count (B·H·W), one line per backend, for bench.report.

One row of two panels (time, peak memory) per (case, mode, K) that was measured at two or more pixel counts.
Each backend keeps one colour; where it was measured at several batch sizes, each batch size gets its own line
and marker.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

from .grid import BACKENDS, NO_HIST, sort_key  # noqa: E402

_COLOURS = {b: f"C{i}" for i, b in enumerate(BACKENDS + (NO_HIST,))}
_MARKERS = {1: "o", 4: "s", 16: "^"}


def panels(rows: list[dict]) -> dict[tuple, dict[tuple[str, int | None], list[tuple[int, float, int]]]]:
    """{(case, mode, bins, width): {(backend, batch or None): sorted [(pixels, median_s, peak_mem_bytes)]}}.

    Only panels with two or more pixel counts; batch is None where the backend has one batch size there.
    """
    grouped: dict[tuple, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(rows, key=sort_key):
        if r.get("median_s"):
            panel = (r["case"], r["mode"], r["bins"], r.get("width"))
            grouped[panel][(r["backend"], r["batch"])].append((r["pixels"], r["median_s"], r["peak_mem_bytes"]))
    out = {}
    for panel, lines in grouped.items():
        if len({p for pts in lines.values() for p, _, _ in pts}) < 2:
            continue
        batches = defaultdict(set)
        for backend, batch in lines:
            batches[backend].add(batch)
        out[panel] = {
            (backend, None if len(batches[backend]) == 1 else batch): sorted(pts)
            for (backend, batch), pts in lines.items()
        }
    return out


def plot(rows: list[dict], path: Path, title: str) -> bool:
    """Write the figure to ``path``; False (and no file) when no case was measured at two pixel counts."""
    found = panels(rows)
    if not found:
        return False
    fig, axes = plt.subplots(len(found), 2, figsize=(11, 3.6 * len(found)), squeeze=False)
    for (case, mode, bins, width), (ax_t, ax_m) in zip(found, axes):
        label = f"{case} {mode}, K={bins}" + (f", ngf {width}" if width else "")
        for (backend, batch), pts in found[(case, mode, bins, width)].items():
            style = dict(
                color=_COLOURS.get(backend),
                marker=_MARKERS.get(batch, "o"),
                label=backend if batch is None else f"{backend} B={batch}",
            )
            ax_t.plot([p for p, _, _ in pts], [t for _, t, _ in pts], **style)
            mem = [(p, m) for p, _, m in pts if m]  # a zero peak cannot go on a log axis
            if mem:
                ax_m.plot(*zip(*mem), **style)
        for ax, ylabel in ((ax_t, "median time [s]"), (ax_m, "peak memory [bytes]")):
            ax.set(xscale="log", yscale="log", xlabel="pixels (B·H·W)", ylabel=ylabel, title=label)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
