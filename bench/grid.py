"""Which (case, mode, backend, size) points a benchmark session measures: the default CPU grid and the full grid.

The issue's sizes are B in {1, 4, 16}, 3 x {64, 128, 256, 512}^2 and K in {64, 256}. All of them for every case
and backend is the GPU grid (``--bench-grid=full``): on a 2-core CPU the dense reference alone would take
hours there. The default grid is a subset chosen to finish in about 10 minutes on such a CPU while still
measuring every case, mode and backend once, the issue's CPU target and a pixel-count sweep for the plot.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

# Ops measured on images; the training iteration is a case of its own with its own sizes.
OPS = (
    "soft_histogram_reflect",
    "soft_histogram_circular",
    "hue_emd",
    "joint_histogram",
    "mi",
    "huenet_loss",
    "core_loss",
)
CASES = OPS + ("train_step",)
MODES = ("fwd", "fwdbwd")
# "compile" is torch.compile of the reference; "kornia" an outside baseline (histogram ops only).
BACKENDS = ("reference", "eager", "triton", "compile", "kornia")
# The training iteration without HueNetLoss: what the loss's overhead is measured against.
NO_HIST = "gan-only"
TRAIN_BACKENDS = (NO_HIST, "reference", "eager", "triton", "compile")

BATCHES = (1, 4, 16)
SIDES = (64, 128, 256, 512)
BINS = (64, 256)


@dataclass(frozen=True)
class Size:
    batch: int
    side: int  # images are 3 x side x side
    bins: int
    width: int | None = None  # ngf = ndf of the training iteration's networks; None for the ops
    channels: int = 3

    @property
    def pixels(self) -> int:
        """Pixels of the batch (B x H x W): the x axis of the report's plot."""
        return self.batch * self.side * self.side

    def __str__(self) -> str:
        text = f"B{self.batch}-{self.side}x{self.side}-K{self.bins}"
        return text if self.width is None else f"{text}-ngf{self.width}"


@dataclass(frozen=True)
class Point:
    case: str
    mode: str
    backend: str
    size: Size

    def __str__(self) -> str:
        return f"{self.case}-{self.mode}-{self.backend}-{self.size}"

    @property
    def group(self) -> str:
        """pytest-benchmark group: the backends of one (case, mode, size) are listed side by side."""
        return f"{self.case}-{self.mode}-{self.size}"


def _block(cases, sizes, backends, modes=MODES) -> list[Point]:
    return [Point(c, m, b, s) for c, s, m, b in itertools.product(cases, sizes, modes, backends)]


# Small enough that the dense reference and compiling take about a second per case on a 2-core CPU.
_SMALL = Size(1, 64, 64)
# The CPU target: forward+backward of the hue EMD loss plus the MI loss at this size.
CPU_TARGET = Size(4, 128, 256)
# pix2pix's networks are ngf = ndf = 64 at 256²; on the CPU the trainer's default (16 at 64²) keeps it short.
_TRAIN_CPU = Size(4, 64, 256, width=16)
_TRAIN_WIDTH_FULL = 64


def _default() -> list[Point]:
    sweep = [Size(1, side, 256) for side in (64, 128, 256)]
    return (
        _block(OPS, [_SMALL], BACKENDS)
        + _block(["core_loss"], [CPU_TARGET], ["reference", "eager"])
        # Pixel-count sweep of the target loss for the plot; the reference stops at 256² (~1 min a case).
        + _block(["core_loss"], sweep, ["reference", "eager"], ["fwdbwd"])
        + _block(["core_loss"], [Size(1, 512, 256)], ["eager"], ["fwdbwd"])
        + _block(["train_step"], [_TRAIN_CPU], TRAIN_BACKENDS)
    )


def _full() -> list[Point]:
    sizes = [Size(b, s, k) for b, s, k in itertools.product(BATCHES, SIDES, BINS)]
    train = [Size(b, 256, 256, width=_TRAIN_WIDTH_FULL) for b in BATCHES]
    return _block(OPS, sizes, BACKENDS) + _block(["train_step"], train, TRAIN_BACKENDS)


GRIDS = {"default": _default, "full": _full}


def points(grid: str) -> list[Point]:
    """The points of ``grid`` ("default" or "full"), without duplicates, in a stable order."""
    return list(dict.fromkeys(GRIDS[grid]()))


_BACKEND_ORDER = {b: i for i, b in enumerate((NO_HIST,) + BACKENDS)}


def sort_key(r: dict):
    """The order of result rows in tables and plots: case, mode, bins, batch, side, then backend."""
    return (
        CASES.index(r["case"]) if r["case"] in CASES else len(CASES),
        MODES.index(r["mode"]),
        r["bins"],
        r["batch"],
        r["side"],
        _BACKEND_ORDER.get(r["backend"], len(_BACKEND_ORDER)),
    )
