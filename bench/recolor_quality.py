"""Quality of the default LUT fit against color-matcher's four methods, on every ordered pair of real photos.

    python -m bench.recolor_quality [--max-side 256] [--pairs N] [--cache FILE] [--out docs]

Photos come from installed packages only (never downloaded): matplotlib's sample_data (grace_hopper.jpg,
Minduka_Present_Blue_Pack.png) and scikit-learn's load_sample_images() (china, flower; scikit-learn is used for
this measurement only, it is not a dependency), each whole and as its four quadrants: 20 images, 380 ordered
pairs, scaled to ``--max-side`` on the longest side. The metrics are bench/recolor_metrics.py's (written from
their definitions, independently of the fit). color-matcher (GPL, never a dependency of huenet) gives the
Reinhard, HM, MKL and HM-MVGD-HM rows when it is installed; otherwise those rows are left out, with the reason.

Writes docs/recolor_quality.md (mean and worst pair of every metric, fit time) and docs/recolor_grid.png (the six
worst pairs of the fit by artefacts and the six by invented colours, beside MKL and HM-MVGD-HM). ``--cache`` keeps
each (method, pair) score in a JSON file, so that reruns compute only what is missing (the fit is always rerun).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from huenet.recolor import fit

from .recolor_metrics import METRICS, score

FIT = "huenet fit"
# color-matcher's method names, and how the table calls them.
COLOR_MATCHER = {"reinhard": "reinhard", "hm": "hm", "mkl": "mkl", "hm-mvgd-hm": "hm-mvgd-hm"}
# The metrics where higher is better; the others are better lower.
HIGHER_IS_BETTER = {"L-SSIM"}


def load_photos() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """name -> (3, H, W) in [0, 1], and name -> why it is missing."""
    photos, missing = {}, {}
    try:
        import matplotlib.cbook as cbook
        from PIL import Image

        for name, file in (("grace_hopper", "grace_hopper.jpg"), ("minduka", "Minduka_Present_Blue_Pack.png")):
            with Image.open(cbook.get_sample_data(file)) as image:
                photos[name] = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 255
    except (ImportError, OSError) as err:
        missing.update(grace_hopper=str(err), minduka=str(err))
    try:
        from sklearn.datasets import load_sample_images

        for name, array in zip(("china", "flower"), load_sample_images().images):
            photos[name] = torch.from_numpy(np.array(array)).permute(2, 0, 1).float() / 255
    except ImportError as err:
        missing.update(china=f"scikit-learn not installed ({err})", flower=f"scikit-learn not installed ({err})")
    return photos, missing


def with_quadrants(photos: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each photo and its four quadrant crops (name_tl, _tr, _bl, _br)."""
    images = {}
    for name, photo in photos.items():
        images[name] = photo
        h, w = photo.shape[1] // 2, photo.shape[2] // 2
        for tag, (top, left) in {"tl": (0, 0), "tr": (0, w), "bl": (h, 0), "br": (h, w)}.items():
            images[f"{name}_{tag}"] = photo[:, top : top + h, left : left + w]
    return images


def _shrink(image: torch.Tensor, max_side: int) -> torch.Tensor:
    scale = min(1.0, max_side / max(image.shape[1:]))
    size = (round(image.shape[1] * scale), round(image.shape[2] * scale))
    return F.interpolate(image[None], size=size, mode="area")[0] if scale < 1 else image


def _methods() -> dict:
    """method -> fn((3, H, W), (3, H', W')) -> (3, H, W): the fit, and color-matcher's when it is importable."""
    methods = {FIT: lambda s, t: fit(s, t)(s)}
    try:
        from color_matcher import ColorMatcher
    except ImportError as err:
        print(f"no color-matcher rows: color-matcher is not installed ({err}); it is GPL, so never a dependency")
        return methods

    def matcher(method):
        def run(source, target):
            src, ref = (t.permute(1, 2, 0).double().numpy() for t in (source, target))
            out = ColorMatcher().transfer(src=src, ref=ref, method=method)
            return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).float().clamp(0, 1)

        return run

    methods.update({f"color-matcher {label}": matcher(name) for name, label in COLOR_MATCHER.items()})
    return methods


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image.clamp(0, 1).permute(1, 2, 0).double().numpy()


def _tile(image: torch.Tensor, height: int) -> np.ndarray:
    width = round(image.shape[2] * height / image.shape[1])
    resized = F.interpolate(image[None], size=(height, width), mode="area")[0]
    return (resized.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def summary(scores: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table: per method, each metric's mean over pairs and its worst pair."""
    names = list(METRICS)
    lines = [
        "| method | " + " | ".join(f"{n} {'↑' if n in HIGHER_IS_BETTER else '↓'} (mean / worst)" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for method, per_pair in scores.items():
        cells = []
        for n in names:
            values = np.array([s[n] for s in per_pair.values()])
            worst = values.min() if n in HIGHER_IS_BETTER else values.max()
            digits = 4 if n == "hue EMD" else 3 if n == "L-SSIM" else 2
            cells.append(f"{np.nanmean(values):.{digits}f} / {worst:.{digits}f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _grid(images, outputs_of, worst: list[tuple[str, str]], columns: list[str]) -> np.ndarray:
    rows = []
    for src, tgt in worst:
        tiles = [images[src], images[tgt]] + [outputs_of(m, src, tgt) for m in columns]
        rows.append(np.concatenate([_tile(t, 128) for t in tiles], 1))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recolor_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--max-side", type=int, default=256, help="images are scored at this longest side")
    parser.add_argument("--pairs", type=int, default=0, help="score this many random pairs (0: all ordered pairs)")
    parser.add_argument("--cache", default="", help="JSON file of scores kept between runs (the fit is always rerun)")
    parser.add_argument("--out", default="docs", help="folder for recolor_grid.png and recolor_quality.md")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a fit's ops are small: 1 is fastest)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    photos, missing = load_photos()
    for name, why in missing.items():
        print(f"{name} is unavailable: {why}")
    images = {n: _shrink(t, args.max_side) for n, t in with_quadrants(photos).items()}
    pairs = [(s, t) for s in images for t in images if s != t]
    if not pairs:
        raise SystemExit("bench.recolor_quality: no photo pair available")
    if args.pairs:
        pairs = random.Random(0).sample(pairs, min(args.pairs, len(pairs)))
    methods = _methods()
    cache_path = Path(args.cache) if args.cache else None
    cache = json.loads(cache_path.read_text()) if cache_path and cache_path.is_file() else {}
    scores = {m: {} for m in methods}
    times = []
    for i, (src, tgt) in enumerate(pairs):
        source, target = images[src], images[tgt]
        for method, fn in methods.items():
            key = f"{method}|{src}|{tgt}|{args.max_side}"
            if method != FIT and key in cache:
                scores[method][(src, tgt)] = cache[key]
                continue
            start = time.perf_counter()
            out = fn(source, target)
            if method == FIT:
                times.append(time.perf_counter() - start)
            scores[method][(src, tgt)] = cache[key] = score(_hwc(out), _hwc(source), _hwc(target))
        if cache_path and (i % 20 == 19 or i == len(pairs) - 1):
            cache_path.write_text(json.dumps(cache))
        fit_scores = scores[FIT][(src, tgt)]
        print(f"[{i + 1}/{len(pairs)}] {src} -> {tgt}: " + ", ".join(f"{k} {v:.4g}" for k, v in fit_scores.items()))

    table = summary(scores)
    note = (
        f"{len(pairs)} ordered pairs of {len(images)} images (4 packaged photos and their quadrants) at a longest side "
        f"of {args.max_side} px; the fit through `huenet.recolor.fit` with its defaults took {np.median(times):.2f} s "
        f"median per pair (max {max(times):.2f} s; {torch.get_num_threads()} threads, 2-core CPU, load average "
        f"{os.getloadavg()[0]:.1f})."
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shown = [m for m in (FIT, "color-matcher mkl", "color-matcher hm-mvgd-hm") if m in methods]

    def output_of(method, src, tgt):
        return methods[method](images[src], images[tgt])

    fits = scores[FIT]
    by_artefacts = sorted(fits, key=lambda p: -fits[p]["artefacts %"])[:6]
    by_invented = sorted(fits, key=lambda p: -fits[p]["invented %"])[:6]
    from PIL import Image

    Image.fromarray(_grid(images, output_of, by_artefacts + by_invented, shown)).save(out / "recolor_grid.png")
    worst = "\n".join(
        f"- {kind}: " + ", ".join(f"{s} -> {t} ({fits[(s, t)][metric]:.2f} %)" for s, t in chosen)
        for kind, metric, chosen in (
            ("worst by artefacts", "artefacts %", by_artefacts),
            ("worst by invented colours", "invented %", by_invented),
        )
    )
    grid_note = (
        "docs/recolor_grid.png: source | target | " + " | ".join(shown) + "; the first six rows are the fit's six "
        "worst pairs by artefacts, the last six its six worst by invented colours."
    )
    (out / "recolor_quality.md").write_text("\n\n".join([table, note, grid_note, worst]) + "\n")
    print("\n\n".join([table, note, grid_note, worst]))


if __name__ == "__main__":
    main()
