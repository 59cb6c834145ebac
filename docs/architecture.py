"""Draws docs/architecture.png: python docs/architecture.py (matplotlib only)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

BOXES = {
    # name: (x, y, width, height, title, lines, colour)
    "losses": (
        0.3,
        6.6,
        3.4,
        1.2,
        "huenet/losses.py",
        "HistogramEMDLoss, MutualInformationLoss,\nHueNetLoss",
        "#dbe9f6",
    ),
    "ops": (0.3, 4.9, 3.4, 1.2, "public ops", "histogram.py  information.py  emd.py\ncolor.py  recolor/", "#dbe9f6"),
    "resolve": (
        0.3,
        3.2,
        3.4,
        1.2,
        "huenet/backends/__init__.py",
        "resolve(op, backend, device) -> Backend\n(contract.py: the Protocol)",
        "#fde9c9",
    ),
    "reference": (-0.3, 1.3, 1.5, 1.2, "reference.py", "dense torch\nautograd", "#fde9c9"),
    "eager": (1.3, 1.3, 1.5, 1.2, "eager.py", "windowed torch\ncustom ops", "#fde9c9"),
    "triton": (2.9, 1.3, 1.5, 1.2, "triton.py", "import\nhuenet.kernels", "#fde9c9"),
    "kernels": (2.6, -0.5, 2.1, 1.1, "kernels/ (huenet.kernels)", "Triton kernels + launchers", "#f6d5d5"),
    "shared": (
        5.3,
        6.6,
        4.4,
        1.2,
        "huenet/colortransfer/ (shared)",
        "cli  runtime  runlog  metrics  baselines",
        "#e3f1dc",
    ),
    "data": (5.3, 4.6, 2.1, 1.5, "data/", "images  folders\nsynthetic  paired\ntasks", "#e3f1dc"),
    "methods": (7.6, 4.6, 2.1, 1.5, "methods/", "registry  scoring\nrefine  lut", "#e3f1dc"),
    "training": (
        5.3,
        2.4,
        2.1,
        1.7,
        "training/",
        "options  models  gan\ntrainer  summary  train\ncheckpoint  plots",
        "#e3f1dc",
    ),
    "commands": (7.6, 2.4, 2.1, 1.7, "commands/", "transfer  evaluate\nstudy  study_tally", "#e3f1dc"),
    "doors": (
        5.3,
        0.6,
        4.4,
        1.1,
        "python -m huenet.<command>",
        "train  plots  |  transfer  evaluate  study",
        "#eeeeee",
    ),
}
ARROWS = [
    ("losses", "ops"),
    ("ops", "resolve"),
    ("resolve", "reference"),
    ("resolve", "eager"),
    ("resolve", "triton"),
    ("triton", "kernels"),
    ("doors", "training"),
    ("doors", "commands"),
    ("commands", "training"),
    ("commands", "methods"),
    ("training", "methods"),
    ("training", "data"),
    ("methods", "data"),
]


def _anchor(box, towards):
    x, y, w, h = BOXES[box][:4]
    tx, ty, tw, th = BOXES[towards][:4]
    cx, cy, tcx, tcy = x + w / 2, y + h / 2, tx + tw / 2, ty + th / 2
    if abs(tcy - cy) * w >= abs(tcx - cx) * h:  # leave through the top or bottom
        return (cx, y if tcy < cy else y + h)
    return (x if tcx < cx else x + w, cy)


def main() -> None:
    fig, ax = plt.subplots(figsize=(11, 8.5))
    for name, (x, y, w, h, title, lines, colour) in BOXES.items():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=colour, ec="#555555"))
        ax.text(x + w / 2, y + h - 0.22, title, ha="center", va="top", fontsize=10, weight="bold")
        ax.text(x + w / 2, y + h - 0.55, lines, ha="center", va="top", fontsize=8.5, family="monospace")
    for a, b in ARROWS:
        ax.add_patch(
            FancyArrowPatch(_anchor(a, b), _anchor(b, a), arrowstyle="-|>", mutation_scale=14, color="#333333", lw=1.2)
        )
    # The application calls the library only through its public names.
    ax.add_patch(
        FancyArrowPatch((5.3, 7.2), (3.75, 7.2), arrowstyle="-|>", mutation_scale=14, color="#2b6cb0", lw=1.6, ls="--")
    )
    ax.text(4.52, 7.35, "public API only", ha="center", fontsize=8, color="#2b6cb0")
    ax.text(2.0, 8.25, "loss library (torch, numpy, triton)", ha="center", fontsize=12, weight="bold")
    ax.text(7.5, 8.25, "application (the [train] extra)", ha="center", fontsize=12, weight="bold")
    ax.text(
        7.5, 2.0, "arrows: imports (every room also uses the shared modules)", ha="center", fontsize=8, style="italic"
    )
    ax.set_xlim(-0.6, 10.0)
    ax.set_ylim(-0.8, 8.6)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(Path(__file__).with_name("architecture.png"), dpi=110)


if __name__ == "__main__":
    main()
