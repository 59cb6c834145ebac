"""Figures of a training run, all drawn from what the run folder records.

- ``samples/step_XXXXXXX.png``: rows of source | target | output (input | reference | output | ground truth for
  the paired tasks) under a header naming the columns, each tile at least :data:`MIN_TILE` pixels (from the
  ``.npz`` saved next to it; training writes one at step 0 too);
- ``plots/losses.png``: the loss curves from ``metrics.jsonl``;
- ``plots/hue_histograms.png``: hue histograms of output against target (and source) for the latest samples;
- ``plots/joint_histograms.png``: 2D joint histograms of source against output (V and hue) for them.

``python -m huenet.plots RUN_DIR`` regenerates all of them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from ...color import hsv_to_rgb, rgb_to_hsv  # noqa: E402
from .. import runlog  # noqa: E402
from ..metrics import hue_histogram  # noqa: E402

_GAP = 2  # pixels between the images of a grid
_PLOT_BINS = 64
# Sample tiles are enlarged (by a whole factor, nearest neighbour: no invented detail) to at least this side,
# so a 64x64 training crop is big enough to judge.
MIN_TILE = 128
_HEADER = 22  # pixels of the column-label row
SAMPLE_COLUMNS = ("source", "target (colours)", "output")
PAIRED_COLUMNS = ("input", "reference", "output", "ground truth")


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def _font(size: int):
    try:  # Pillow >= 10.1 scales its built-in font; older ones only have a small bitmap font
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def sample_grid(
    source: np.ndarray,
    target: np.ndarray,
    output: np.ndarray,
    truth: np.ndarray | None = None,
    step: int | None = None,
) -> Image.Image:
    """One row per sample under labelled columns: source | target | output, or for the paired tasks
    input | reference | output | ground truth. Inputs uint8 (N, 3, H, W); the target may have another size.
    Tiles are enlarged to at least :data:`MIN_TILE` pixels; ``step`` is named in the header."""
    n, _, h, w = source.shape
    scale = max(1, -(-MIN_TILE // min(h, w)))
    th, tw = h * scale, w * scale

    def tile(image: np.ndarray, resample) -> np.ndarray:
        return np.asarray(Image.fromarray(image.transpose(1, 2, 0)).resize((tw, th), resample))

    columns = [(source, Image.NEAREST), (target, Image.BICUBIC), (output, Image.NEAREST)]
    if truth is not None:
        columns.append((truth, Image.NEAREST))
    labels = SAMPLE_COLUMNS if truth is None else PAIRED_COLUMNS
    canvas = np.full((_HEADER + n * th + (n - 1) * _GAP, len(columns) * (tw + _GAP) - _GAP, 3), 255, np.uint8)
    for i in range(n):
        top = _HEADER + i * (th + _GAP)
        for j, (images, resample) in enumerate(columns):
            canvas[top : top + th, j * (tw + _GAP) : j * (tw + _GAP) + tw] = tile(images[i], resample)
    grid = Image.fromarray(canvas)
    draw, font = ImageDraw.Draw(grid), _font(14)
    for j, label in enumerate(labels):
        text = f"{label} (step {step})" if step is not None and j == 2 else label
        draw.text((j * (tw + _GAP) + 4, 3), text, fill=(0, 0, 0), font=font)
    return grid


def save_samples(
    run_dir: str | os.PathLike,
    step: int,
    source: torch.Tensor,
    target: torch.Tensor,
    output: torch.Tensor,
    truth: torch.Tensor | None = None,
) -> Path:
    """Save a batch (B, 3, H, W) in [0, 1] as ``samples/step_XXXXXXX.npz`` and its grid ``.png``.

    ``truth``: the ground-truth photos of a paired task's inputs (``source``), shown in a fourth column.
    """
    folder = Path(run_dir) / runlog.SAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"step_{step:07d}"
    arrays = dict(source=_to_uint8(source), target=_to_uint8(target), output=_to_uint8(output))
    if truth is not None:
        arrays["truth"] = _to_uint8(truth)
    # Written under a temporary name, then renamed: a run killed meanwhile leaves no torn .npz behind.
    tmp = stem.with_suffix(".npz.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, step=step, **arrays)
    os.replace(tmp, stem.with_suffix(".npz"))
    sample_grid(**arrays, step=step).save(stem.with_suffix(".png"))
    return stem.with_suffix(".png")


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window or window < 2:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_losses(records: list[dict], path: str | os.PathLike) -> None:
    """Loss curves of the step records (raw, faint, and a moving average) with the per-epoch validation."""
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    # What each curve should do in a healthy run: a reader must not take D_MI's rise for a failure.
    panels = [
        ("loss_g", "generator total\n(should fall, noisily)"),
        ("loss_d", "discriminator\n(no trend expected: G and D compete)"),
        ("adv", "adversarial (G)\n(no trend expected: G and D compete)"),
        ("hist", "histogram EMD to target\n(should fall: the colours move to the target's)"),
        ("mi", "D_MI to source\n(may rise: recoloured pixels share less with the source)"),
    ]
    if any(r.get("l1") for r in steps):
        panels.append(("l1", "L1 to ground truth\n(should fall)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8))
    x = np.array([r["step"] for r in steps])
    window = max(1, len(steps) // 30)
    for ax, (key, title) in zip(axes, panels):
        y = np.array([r[key] for r in steps], dtype=float)
        if len(y):
            ax.plot(x, y, color="C0", alpha=0.25, lw=0.8)
            ax.plot(x[window - 1 :] if len(y) >= window else x, _smooth(y, window), color="C0", label="train")
        val_key = "val_" + key
        if any(val_key in r for r in epochs):
            ax.plot([r["step"] for r in epochs], [r[val_key] for r in epochs], "o-", color="C3", label="val")
            ax.legend()
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(
        "Training losses. The hue EMD falling is the goal; D_MI rising meanwhile is expected, as long as "
        "the structure in the sample grids stays intact.",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _hue_strip(ax, bins: int) -> None:
    """Colour the x axis of a hue plot with the hues themselves."""
    hue = torch.linspace(0, 1, bins).view(1, 1, bins)
    strip = hsv_to_rgb(torch.cat([hue, torch.ones_like(hue), torch.ones_like(hue)], 0))  # (3, 1, bins)
    ax.imshow(strip.permute(1, 2, 0).numpy(), extent=(0, 1, -0.06, -0.01), aspect="auto")


def plot_hue_histograms(source: np.ndarray, target: np.ndarray, output: np.ndarray, path: str | os.PathLike) -> None:
    """Saturation-weighted hue histograms of output vs target (source dashed), one panel per sample."""
    to_t = [torch.from_numpy(a).float() / 255 for a in (source, target, output)]
    hists = [hue_histogram(t, _PLOT_BINS).numpy() for t in to_t]
    n = source.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.8), squeeze=False)
    centres = (np.arange(_PLOT_BINS) + 0.5) / _PLOT_BINS
    for i, ax in enumerate(axes[0]):
        ax.bar(centres, hists[1][i], width=1 / _PLOT_BINS, color="0.7", label="target")
        ax.step(centres, hists[2][i], where="mid", color="C3", label="output")
        ax.step(centres, hists[0][i], where="mid", color="C0", ls="--", lw=0.8, label="source")
        _hue_strip(ax, _PLOT_BINS)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.06, max(h[i].max() for h in hists) * 1.05)
        ax.set_xlabel("hue (turns)")
        ax.set_title(f"sample {i}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_joint_histograms(source: np.ndarray, output: np.ndarray, path: str | os.PathLike) -> None:
    """2D joint histograms of source (x) against output (y): V on top, saturation-weighted hue below."""
    src = rgb_to_hsv(torch.from_numpy(source).float() / 255).numpy()
    out = rgb_to_hsv(torch.from_numpy(output).float() / 255).numpy()
    n = source.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(2.8 * n, 5.6), squeeze=False)
    for i in range(n):
        rows = [(2, None, "V"), (0, src[i, 1] * out[i, 1], "hue (sat-weighted)")]
        for r, (channel, weight, label) in enumerate(rows):
            joint, _, _ = np.histogram2d(
                src[i, channel].ravel(),
                out[i, channel].ravel(),
                bins=_PLOT_BINS,
                range=[[0, 1], [0, 1]],
                weights=None if weight is None else weight.ravel(),
            )
            ax = axes[r][i]
            ax.imshow(
                np.log1p(joint.T * 1000 / max(joint.sum(), 1e-12)), origin="lower", extent=(0, 1, 0, 1), cmap="magma"
            )
            ax.set_xlabel(f"source {label}")
            ax.set_ylabel(f"output {label}")
            ax.set_title(f"sample {i}: {label}, source vs output", fontsize=9)
    fig.suptitle(
        "Joint histograms of source (x) and output (y): a thin curve means the output keeps the source's structure",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def regenerate(run_dir: str | os.PathLike, redraw_samples: bool = True) -> list[Path]:
    """Redraw every plot of a run folder from its metrics log and saved samples; returns the files written.

    ``redraw_samples=False`` leaves the sample grids alone (training drew each one when it saved it).

    Raises:
        FileNotFoundError: ``run_dir`` has no metrics log.
    """
    run_dir = Path(run_dir)
    records = runlog.read_metrics(run_dir)
    if not records:
        raise FileNotFoundError(f"no metrics log ({runlog.METRICS_NAME}) in {str(run_dir)!r}; is it a run folder?")
    plots = run_dir / runlog.PLOTS_DIR
    plots.mkdir(exist_ok=True)
    written = [plots / "losses.png"]
    plot_losses(records, written[0])
    samples = sorted((run_dir / runlog.SAMPLES_DIR).glob("step_*.npz"))
    for npz in samples if redraw_samples else ():
        data = read_samples(npz)
        grid = sample_grid(data["source"], data["target"], data["output"], data.get("truth"), int(data["step"]))
        grid.save(npz.with_suffix(".png"))
        written.append(npz.with_suffix(".png"))
    if samples:
        data = read_samples(samples[-1])
        plot_hue_histograms(data["source"], data["target"], data["output"], plots / "hue_histograms.png")
        plot_joint_histograms(data["source"], data["output"], plots / "joint_histograms.png")
        written += [plots / "hue_histograms.png", plots / "joint_histograms.png"]
    return written


def read_samples(npz: Path) -> dict[str, np.ndarray]:
    """The arrays of a training run's sample file, read without unpickling anything; a file that is not one (an
    object array, a missing array, not an .npz) raises a ValueError naming it."""
    try:
        with np.load(npz, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{str(npz)!r} is not a readable sample file ({err})") from None
    missing = [name for name in ("source", "target", "output", "step") if name not in arrays]
    if missing:
        raise ValueError(f"{str(npz)!r} is not a huenet sample file (no {', '.join(missing)} array)")
    return arrays


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m huenet.plots", description="Regenerate all plots of a huenet training run from its log."
    )
    parser.add_argument("run_dir", help="the run folder (the --out of huenet.train)")
    args = parser.parse_args(argv)
    try:
        written = regenerate(args.run_dir)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print("\n".join(str(p) for p in written))


if __name__ == "__main__":
    main()
