"""Quality of the fitted LUT against Reinhard, histogram matching and MKL on real photos.

    python -m bench.recolor_quality [--max-side 384] [--out docs]

Photos come from installed packages only (never downloaded): matplotlib's sample_data (grace_hopper.jpg,
Minduka_Present_Blue_Pack.png) and scikit-learn's load_sample_images() (china, flower; scikit-learn is used
for this measurement only, it is not a dependency). A pair whose photo is not available is skipped with its
reason. Prints a markdown table (saturation-weighted hue EMD and a*b* sliced Wasserstein distance to the target,
L-SSIM to the source; mean over pairs) and writes the picture grid docs/recolor_grid.png
(source | target | fit | Reinhard | HM | MKL, one row per pair) and docs/recolor_quality.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from huenet.colortransfer.baselines import histogram_matching, mkl, reinhard
from huenet.colortransfer.metrics import ab_swd, hue_emd, lightness_ssim
from huenet.recolor import fit

PAIRS = [
    ("grace_hopper", "flower"),
    ("china", "flower"),
    ("flower", "china"),
    ("china", "minduka"),
    ("minduka", "grace_hopper"),
]
METHODS = {"fit": None, "reinhard": reinhard, "histogram matching": histogram_matching, "mkl": mkl}
HM_MVGD_HM = "hm-mvgd-hm (color-matcher)"


def _hm_mvgd_hm(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """color-matcher's HM-MVGD-HM on (1, 3, H, W) in [0, 1]. color-matcher is GPL-licensed: an optional row of
    this comparison when it happens to be installed, never a dependency of huenet."""
    from color_matcher import ColorMatcher

    src, ref = (t[0].permute(1, 2, 0).double().numpy() for t in (source, target))
    out = ColorMatcher().transfer(src=src, ref=ref, method="hm-mvgd-hm")
    return torch.from_numpy(out).permute(2, 0, 1).float().clamp(0, 1)[None]


def _methods() -> dict:
    """METHODS, plus HM-MVGD-HM when color-matcher is importable (and why not when it is absent)."""
    try:
        import color_matcher  # noqa: F401
    except ImportError as err:
        print(f"no {HM_MVGD_HM} row: color-matcher is not installed ({err}); it is GPL, so never a dependency")
        return dict(METHODS)
    return {**METHODS, HM_MVGD_HM: _hm_mvgd_hm}


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


def _shrink(image: torch.Tensor, max_side: int) -> torch.Tensor:
    scale = min(1.0, max_side / max(image.shape[1:]))
    size = (round(image.shape[1] * scale), round(image.shape[2] * scale))
    return F.interpolate(image[None], size=size, mode="area")[0] if scale < 1 else image


def _tile(image: torch.Tensor, height: int) -> np.ndarray:
    width = round(image.shape[2] * height / image.shape[1])
    resized = F.interpolate(image[None], size=(height, width), mode="area")[0]
    return (resized.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recolor_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--max-side", type=int, default=384, help="photos are scored at this longest side")
    parser.add_argument("--out", default="docs", help="folder for recolor_grid.png and recolor_quality.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    photos, missing = load_photos()
    methods = _methods()
    rows, scores, times = [], {m: [] for m in methods}, []
    for src_name, tgt_name in PAIRS:
        absent = [n for n in (src_name, tgt_name) if n not in photos]
        if absent:
            print(f"skipping {src_name} -> {tgt_name}: {absent[0]} unavailable ({missing.get(absent[0])})")
            continue
        source, target = _shrink(photos[src_name], args.max_side), _shrink(photos[tgt_name], args.max_side)
        outputs = {}
        for method, fn in methods.items():
            if fn is None:
                start = time.perf_counter()
                outputs[method] = fit(source, target)(source)
                times.append(time.perf_counter() - start)
            else:
                outputs[method] = fn(source[None], target[None])[0]
        for method, out in outputs.items():
            s = [
                float(hue_emd(out[None], target[None])),
                float(ab_swd(out[None], target[None])),
                float(lightness_ssim(out[None], source[None])),
            ]
            scores[method].append(s)
            print(
                f"{src_name} -> {tgt_name} {method}: hue EMD {s[0]:.4f}, a*b* SWD {s[1]:.2f}, L-SSIM {s[2]:.3f}",
                flush=True,
            )
        shown = [outputs[m] for m in METHODS]  # the grid keeps its six columns whatever is installed
        rows.append(np.concatenate([_tile(t, 160) for t in (source, target, *shown)], 1))
    if not rows:
        raise SystemExit("no photo pair available")
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(out / "recolor_grid.png")
    lines = ["| method | hue EMD to target ↓ | a*b* SWD to target ↓ | L-SSIM to source ↑ |", "|---|---|---|---|"]
    for method, values in scores.items():
        mean = np.mean(values, 0)
        lines.append(f"| {method} | {mean[0]:.4f} | {mean[1]:.2f} | {mean[2]:.3f} |")
    table = "\n".join(lines)
    note = (
        f"{len(rows)} pairs at a longest side of {args.max_side} px; fit median {np.median(times):.1f} s per pair "
        f"(1 thread, shared 2-core CPU, load average {os.getloadavg()[0]:.1f})."
    )
    (out / "recolor_quality.md").write_text(table + "\n\n" + note + "\n")
    print(table + "\n\n" + note)


if __name__ == "__main__":
    main()
