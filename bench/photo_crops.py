"""Cut the real photos that ship inside packages into random square crops, for measuring on real photos.

``python bench/photo_crops.py OUT_DIR [--count 200] [--size 128] [--seed 0]``

Sources (never a download): every photo in matplotlib's ``mpl-data/sample_data`` (grace_hopper.jpg,
Minduka_Present_Blue_Pack.png) and, if scikit-learn is installed, ``sklearn.datasets.load_sample_images()``
(china.jpg, flower.jpg). Each crop is a random square of a random side between ``size`` and the photo's short
side, resized to ``size`` (so crops range from close-ups to whole-photo views), saved as PNG. The crops are
spread over the photos evenly; the names say which photo each came from.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# The sample_data files that are photographs (the others are logos, plots' data and masks).
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")


def package_photos() -> dict[str, Image.Image]:
    """The real photos available from installed packages: name -> RGB image."""
    import matplotlib

    photos = {}
    folder = Path(matplotlib.get_data_path()) / "sample_data"
    for name in MATPLOTLIB_PHOTOS:
        if (folder / name).is_file():
            with Image.open(folder / name) as image:
                photos[Path(name).stem] = image.convert("RGB")
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        print("photo_crops: scikit-learn is not installed; using matplotlib's photos only", file=sys.stderr)
    else:
        data = load_sample_images()
        for name, array in zip(data.filenames, data.images):
            photos[Path(name).stem] = Image.fromarray(np.asarray(array, np.uint8))
    return photos


def write_crops(out: str | Path, count: int = 200, size: int = 128, seed: int = 0) -> list[Path]:
    """Write ``count`` random ``size``² crops of :func:`package_photos` into ``out``; returns the files."""
    photos = package_photos()
    if not photos:
        raise RuntimeError("photo_crops: no sample photos found (is matplotlib installed?)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = sorted(photos)
    files = []
    for i in range(count):
        name = names[i % len(names)]
        image = photos[name]
        side = rng.randint(size, min(image.size))
        left, top = rng.randint(0, image.width - side), rng.randint(0, image.height - side)
        crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        path = out / f"{name}_{i:04d}.png"
        crop.save(path)
        files.append(path)
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to write the crops to")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    files = write_crops(args.out, args.count, args.size, args.seed)
    print(f"photo_crops: {len(files)} crops of {args.size}x{args.size} in {args.out}")


if __name__ == "__main__":
    main()
