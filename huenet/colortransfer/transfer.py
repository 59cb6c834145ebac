"""Repaint images with another image's colours using a trained Hue-Net generator.

``python -m huenet.transfer --checkpoint RUN_OR_FILE --source a.jpg --target b.jpg --out out.png``

Images of any size work (the generator pads to its depth's multiple and crops back); the output has the
source's size. ``--source`` and ``--target`` may also be folders: the sources, in sorted order, are paired
with the targets in sorted order (cycling through the targets when there are fewer), and ``--out`` is then
a folder receiving ``<source>__<target>.png`` for each pair.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch
from PIL import Image

from . import runtime
from .checkpoint import load_generator
from .data import UNREADABLE_ERRORS, find_images, load_rgb, pil_to_tensor, tensor_to_pil


@torch.no_grad()
def transfer(generator, source: Image.Image, target: Image.Image, max_side: int | None = None,
             device: str | torch.device = "cpu") -> Image.Image:
    """Paint ``source`` with ``target``'s colours; returns an RGB image of the source's size.

    Args:
        generator: a :class:`~huenet.models.HueNetGenerator` (in eval mode).
        source, target: RGB PIL images of any sizes.
        max_side: if given, the source is processed at most this long on its longer side (for speed and
            memory) and the output is resized back to the source's size.
    """
    size = source.size
    if max_side is not None and max(size) > max_side:
        scale = max_side / max(size)
        source = source.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), Image.BICUBIC)
    src = pil_to_tensor(source)[None].to(device)
    tgt = pil_to_tensor(target)[None].to(device)
    out = tensor_to_pil(generator(src, generator.histograms(tgt))[0])
    return out if out.size == size else out.resize(size, Image.BICUBIC)


def _inputs(path: str, flag: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        try:
            return find_images(p)
        except ValueError as err:
            raise ValueError(f"{flag}: {err}") from err
    if not p.is_file():
        raise FileNotFoundError(f"{flag}: no file or folder at {path!r}")
    return [p]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m huenet.transfer",
        description="Repaint source images with target images' colours using a trained Hue-Net generator.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--checkpoint", required=True, metavar="RUN_OR_FILE",
                        help="a run folder (its checkpoint.pt) or a checkpoint file")
    parser.add_argument("--source", required=True, help="the image (or folder of images) to repaint")
    parser.add_argument("--target", required=True, help="the image (or folder) whose colours to use")
    parser.add_argument("--out", required=True,
                        help="output image file for one source; a folder when --source is a folder")
    parser.add_argument("--max-side", type=int, default=None,
                        help="process sources at most this many pixels on their longer side")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    args = parser.parse_args(argv)
    if args.max_side is not None and args.max_side < 8:
        parser.error(f"--max-side must be >= 8; got {args.max_side}")
    try:
        device = runtime.resolve_device(args.device)
        runtime.configure_threads(None)
        sources, targets = _inputs(args.source, "--source"), _inputs(args.target, "--target")
        try:
            generator, _ = load_generator(args.checkpoint, device)
        except (OSError, ValueError) as err:
            raise ValueError(f"--checkpoint: {err}") from err
    except (OSError, ValueError) as err:
        sys.exit(f"huenet.transfer: error: {err}")

    many = Path(args.source).is_dir()
    out = Path(args.out)
    if many:
        out.mkdir(parents=True, exist_ok=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
    failed = 0
    for src_path, tgt_path in zip(sources, itertools.cycle(targets)):
        dest = out / f"{src_path.stem}__{tgt_path.stem}.png" if many else out
        try:
            result = transfer(generator, load_rgb(src_path), load_rgb(tgt_path), args.max_side, device)
        except UNREADABLE_ERRORS as err:
            failed += 1
            print(f"huenet.transfer: skipping {src_path} with {tgt_path}: {err}", file=sys.stderr)
            continue
        result.save(dest)
        print(dest)
    if failed:
        sys.exit(f"huenet.transfer: {failed} of {len(sources)} pair(s) could not be read")


if __name__ == "__main__":
    main()
