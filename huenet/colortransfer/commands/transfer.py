"""Repaint images with another image's colours: a fitted colour LUT (no training), a trained Hue-Net, or a
classical baseline.

``python -m huenet.transfer --source a.jpg --target b.jpg --out c.png`` fits a colour LUT for the pair
(:func:`huenet.recolor.fit`) and applies it at full resolution. Other methods: ``--method reinhard``,
``histogram-matching`` or ``mkl``, and ``huenet`` (formerly ``gan``) with ``--checkpoint RUN_OR_FILE`` (the default when a
checkpoint is given), whose output is refined by ``--refine N`` steps of the fit (:mod:`~.refine`; 0 = off). ``--cube`` also writes the fitted LUT as a .cube file; ``--lut in.cube`` applies a saved
one without fitting.

With ``--source DIR`` and one ``--target`` image, ONE LUT is fitted on all the folder's images together and
applied to each (flicker-free for video frames); ``--per-image`` fits each on its own. ``--out`` is then a
folder. 16-bit sources give 16-bit PNG/TIFF outputs; an alpha channel is kept, and its transparent pixels take
no part in the fit. Every input is read and checked before anything is written, and each output file appears
complete or not at all.

With a checkpoint of a paired task the target is the exemplar whose colours the output takes, and the source
is the task's input: a colorize checkpoint takes grey photos (a colour one is converted, with a note), an
edges2photo checkpoint edge maps, black lines on white. A source of the other kind is refused with a message
naming the run's task.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ... import recolor
from .. import runtime
from ..cli import RunError, exit_with
from ..data.images import UNREADABLE_ERRORS, Picture, check_writable, read_image, write_image
from ..data.tasks import PAIRED_TASKS, paired_input
from ..methods.lut import measure_lut
from ..methods.refine import REFINE_STEPS, refine
from ..methods.registry import METHODS, NETWORK, canonical, method

#: What ``--method`` takes (the source unchanged is no transfer).
TRANSFER_METHODS = tuple(name for name in METHODS if name != "identity")
PROG = "huenet.transfer"

# The generator's working resolution (longer side) by default: larger sources get its colour mapping through a LUT.
WORK_SIDE = 512


def _shrink(image: torch.Tensor, side: int) -> torch.Tensor:
    """(1, 3, H, W) scaled (area) so that its longer side is at most ``side``."""
    h, w = image.shape[2:]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    return F.interpolate(image, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")


@torch.no_grad()
def network_transfer(
    generator,
    source: torch.Tensor,
    target: torch.Tensor,
    max_side: int | None = WORK_SIDE,
    paired: bool = False,
    refine_steps: int = 0,
) -> torch.Tensor:
    """Paint ``source`` (3, H, W) with ``target``'s colours using a trained generator; (3, H, W) in [0, 1].

    Images of any size work. A source longer than ``max_side`` is recoloured at that working size and the
    colour mapping measured there is carried to full resolution through a 3D LUT (:func:`~huenet.colortransfer.methods.lut.measure_lut`),
    which keeps full-resolution detail sharp and bounds time and memory (a 12 MP photo: bench/); the target is
    read at that size at most too. ``max_side=None`` runs the network at full size.

    ``paired``: the source is a paired task's input (grey or edges), whose colours say nothing about the
    output's, so no colour mapping can carry them: the working-size output is resized (bicubic) instead.

    ``refine_steps`` > 0 refines the working-size output by that many steps of the training-free fit
    (:func:`~.refine.refine`) before it is carried to full size.
    """
    src = source[None] if max_side is None else _shrink(source[None], max_side)
    tgt = target[None] if max_side is None else _shrink(target[None], max_side)
    out = refine(generator(src, generator.target_statistics(tgt)).clamp(0, 1), tgt, refine_steps)
    if out.shape[2:] == source.shape[1:]:
        return out[0]
    if paired:
        return F.interpolate(out, size=tuple(source.shape[1:]), mode="bicubic", align_corners=False)[0].clamp(0, 1)
    return recolor.ColorLUT(measure_lut(src, out))(source[None])[0].clamp(0, 1)


def _method(name: str) -> str:
    """``--method``'s value by its one name (``gan`` is the network's old name)."""
    name = canonical(name) if name != "identity" else name
    if name not in TRANSFER_METHODS:
        raise argparse.ArgumentTypeError(f"invalid choice: {name!r} (choose from {', '.join(TRANSFER_METHODS)})")
    return name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m huenet.transfer",
        description="Repaint source images with a target image's colours: fit a colour LUT against huenet's "
        "histogram losses (default, no training), apply a saved .cube LUT, use a trained Hue-Net "
        "(--checkpoint) or a classical method.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--source", required=True, help="the image (or folder of images) to repaint")
    parser.add_argument(
        "--target", default=None, help=f"the image whose colours to use (a folder only with --method {NETWORK})"
    )
    parser.add_argument(
        "--out", required=True, help="output image file for one source; a folder when --source is a folder"
    )
    parser.add_argument(
        "--method",
        type=_method,
        default=None,
        metavar="{" + ",".join(TRANSFER_METHODS) + "}",
        help=f"default: {NETWORK} with --checkpoint, else fit",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="RUN_OR_FILE",
        help=f"a trained run folder (its checkpoint.pt) or checkpoint file, for --method {NETWORK}",
    )
    parser.add_argument("--cube", default=None, metavar="OUT.cube", help="also write the fitted LUT here")
    parser.add_argument("--lut", default=None, metavar="IN.cube", help="apply this saved LUT instead of fitting")
    parser.add_argument(
        "--mask",
        default=None,
        metavar="IMAGE",
        help="greyscale image of the source's size: white pixels count in the fit",
    )
    parser.add_argument(
        "--target-mask",
        default=None,
        metavar="IMAGE",
        help="greyscale image of the target's size: white pixels count in the fit",
    )
    parser.add_argument("--strength", type=float, default=1.0, help="0 = the source unchanged, 1 = full transfer")
    parser.add_argument(
        "--per-image",
        action="store_true",
        help="with a source folder: fit one LUT per image instead of one for the whole folder",
    )
    parser.add_argument("--steps", type=int, default=recolor.DEFAULTS["steps"], help="fit: optimisation steps")
    parser.add_argument("--lut-size", type=int, default=recolor.DEFAULTS["size"], help="fit: LUT resolution N")
    parser.add_argument(
        "--max-side",
        type=int,
        default=None,
        help=f"{NETWORK}: the network's working size (longer side; default {WORK_SIDE}); larger "
        "sources get its colour mapping through a 3D LUT, at full resolution",
    )
    parser.add_argument(
        "--refine",
        type=int,
        default=None,
        metavar="N",
        help=f"{NETWORK}, transfer runs: refine the network's output by N steps of the training-free fit towards the "
        f"target's colours (default {REFINE_STEPS}; 0 = the network's output as it is)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    return parser


def _check_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Combinations of flags that cannot work (exit 2); fills in the default method."""
    if args.method is None:
        args.method = NETWORK if args.checkpoint else "fit"
    error = parser.error
    if args.method == NETWORK and not args.checkpoint:
        error(f"--method {NETWORK} needs --checkpoint RUN_OR_FILE (a trained run)")
    if args.checkpoint and args.method != NETWORK:
        error(f"--checkpoint is only used by --method {NETWORK}; got --method {args.method}")
    if args.lut and args.method != "fit":
        error(f"--lut applies a saved LUT; it cannot be combined with --method {args.method}")
    if args.lut and args.target:
        error("--lut applies a saved LUT; --target is not used with it")
    if not args.lut and not args.target:
        error("--target is required (or give --lut IN.cube)")
    fit_only = [
        flag
        for flag, value in (("--cube", args.cube), ("--mask", args.mask), ("--target-mask", args.target_mask))
        if value
    ]
    if args.method != "fit" and fit_only:
        error(f"{fit_only[0]} only works with --method fit; got --method {args.method}")
    if args.lut and (args.cube or args.target_mask or args.mask):
        error("--lut applies a saved LUT; --cube, --mask and --target-mask belong to fitting one")
    if args.cube and Path(args.cube).suffix.lower() != ".cube":
        error(f"--cube: {args.cube!r} must end in .cube")
    if not 0 <= args.strength <= 1:
        error(f"--strength must be in [0, 1]; got {args.strength}")
    for flag, value, low in (
        ("--steps", args.steps, 0),
        ("--lut-size", args.lut_size, 2),
        ("--max-side", args.max_side, 8),
    ):
        if value is not None and value < low:
            error(f"{flag} must be >= {low}; got {value}")
    if args.refine is not None and args.refine < 0:
        error(f"--refine must be >= 0; got {args.refine}")
    for flag, value in (("--max-side", args.max_side), ("--refine", args.refine)):
        if value is not None and args.method != NETWORK:
            error(f"{flag} only works with --method {NETWORK}; got --method {args.method}")
    source = Path(args.source)
    many = source.is_dir()
    if args.per_image and not many:
        error("--per-image needs --source to be a folder")
    if args.per_image and args.cube:
        error("--cube writes one LUT; it cannot be combined with --per-image")
    if args.target and Path(args.target).is_dir() and args.method != NETWORK:
        error(f"--target: {args.target!r} is a folder; give one image (its colours are fitted)")
    out = Path(args.out)
    if many and out.exists() and not out.is_dir():
        error(f"--out: {args.out!r} is an existing file, but --source is a folder (give a folder)")
    if not many:
        try:
            check_writable(out, "--out")
        except ValueError as err:
            error(str(err))


def _inputs(path: str, flag: str) -> list[Path]:
    from ..data.folders import find_images

    p = Path(path)
    if p.is_dir():
        try:
            return find_images(p)
        except ValueError as err:
            raise RunError(f"{flag}: {err}") from err
    if not p.is_file():
        raise RunError(f"{flag}: no file or folder at {path!r}")
    return [p]


def _read(path: Path, flag: str) -> Picture:
    try:
        return read_image(path)
    except UNREADABLE_ERRORS as err:
        raise RunError(f"{flag}: cannot read {str(path)!r} as an image ({err})") from None


def _read_mask(path: str | None, flag: str, picture: Picture | None, image_path: Path | None) -> torch.Tensor | None:
    """The fit weights of one image: the mask's grey level times the image's alpha (transparent = 0)."""
    weight = None
    if path is not None:
        weight = _read(Path(path), flag).rgb.mean(0, keepdim=True)
        if picture is not None and weight.shape[1:] != picture.rgb.shape[1:]:
            h, w = picture.rgb.shape[1:]
            raise RunError(
                f"{flag}: {path!r} is {weight.shape[2]}x{weight.shape[1]} but {str(image_path)!r} is "
                f"{w}x{h}; the mask must have its image's size"
            )
    if picture is not None and picture.alpha is not None:
        weight = picture.alpha if weight is None else weight * picture.alpha
    return weight


def _fit(sources: list[Picture], source_masks, target: Picture, target_mask, args, device, label: str):
    bar = tqdm(total=args.steps, desc=f"fitting {label}", unit="step", disable=None, leave=False)
    try:
        return recolor.fit(
            [p.rgb for p in sources],
            target.rgb,
            size=args.lut_size,
            steps=args.steps,
            strength=args.strength,
            mask=source_masks,
            target_mask=target_mask,
            device=device,
            callback=lambda step: bar.update(1),
        )
    except ValueError as err:
        message = str(err).replace("`mask`", "--mask").replace("`target_mask`", "--target-mask")
        raise RunError(message.replace("fit: ", "", 1)) from None
    finally:
        bar.close()


def _paired_source(task: str, picture: Picture, path: Path) -> Picture:
    """The input of a ``task`` checkpoint from a source picture (grey for colorize, with a note), or a RunError
    naming the file and the task when the picture is of the other kind."""
    try:
        rgb, note = paired_input(task, picture.rgb)
    except ValueError as err:
        raise RunError(f"--source {str(path)!r}: {err}") from None
    if note:
        print(f"{PROG}: note: {path}: {note}", file=sys.stderr)
    return Picture(rgb, picture.alpha, picture.bits)


def _masks_or_none(masks: list):
    return (
        None if all(m is None for m in masks) else [m if m is not None else torch.ones(1, *shape) for m, shape in masks]
    )


def _run(args) -> None:
    device = runtime.resolve_device(args.device)
    runtime.configure_threads(None)
    sources = _inputs(args.source, "--source")
    many = Path(args.source).is_dir()
    out = Path(args.out)
    dests = [out / f"{p.stem}.png" if many else out for p in sources]

    # Read and check everything first, so that a bad input stops the run before any file is written.
    pictures = [_read(p, "--source") for p in sources]
    source_weights = [(_read_mask(args.mask, "--mask", pic, p), pic.rgb.shape[1:]) for pic, p in zip(pictures, sources)]
    if args.method == NETWORK:
        pictures, dests, paint = _network_painter(args, sources, pictures, dests, device)
    elif args.lut:
        paint = _lut_painter(args)
    else:
        target = _read(Path(_inputs(args.target, "--target")[0]), "--target")
        if args.method == "fit":
            paint = _fit_painter(args, pictures, source_weights, target, device)
        else:
            transfer = method(args.method)
            paint = lambda i, path, rgb, weight: transfer(rgb[None], target.rgb[None].to(device))[0]  # noqa: E731

    if many:
        out.mkdir(parents=True, exist_ok=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
    frames = tqdm(
        list(zip(sources, pictures, source_weights, dests)),
        desc="transfer",
        unit="image",
        disable=None if many else True,
    )
    for i, (path, picture, weight, dest) in enumerate(frames):
        rgb = picture.rgb.to(device)
        result = paint(i, path, rgb, weight)
        if args.method != "fit":  # a fitted or loaded LUT has the strength blended in already
            result = torch.lerp(rgb, result, args.strength)
        write_image(dest, result.cpu(), picture.alpha, picture.bits)
        tqdm.write(str(dest))


def _network_painter(args, sources, pictures, dests, device):
    """The checkpoint's generator as a painter, with the sources made its task's input and the destinations
    named after the target each source is paired with."""
    from ..training.checkpoint import load_generator

    targets = _inputs(args.target, "--target")
    target_pictures = [_read(p, "--target") for p in targets]
    if Path(args.source).is_dir() and len(targets) > 1:
        # Sources pair with the targets in sorted order, cycling through the targets.
        out = Path(args.out)
        dests = [out / f"{p.stem}__{targets[i % len(targets)].stem}.png" for i, p in enumerate(sources)]
    try:
        generator, config = load_generator(args.checkpoint, device)
    except (OSError, ValueError) as err:
        message = str(err)
        raise RunError(message if message.startswith("--checkpoint") else f"--checkpoint: {message}") from None
    task = config.get("task", "transfer")  # runs from before --task were transfer runs
    paired = task in PAIRED_TASKS
    if paired:
        if args.refine is not None:
            raise RunError(f"--refine is for transfer runs; the checkpoint is a {task} run")
        pictures = [_paired_source(task, pic, path) for pic, path in zip(pictures, sources)]
    refine_steps = 0 if paired else REFINE_STEPS if args.refine is None else args.refine

    def paint(i, path, rgb, weight):
        target_rgb = target_pictures[i % len(target_pictures)].rgb.to(rgb.device)
        return network_transfer(generator, rgb, target_rgb, args.max_side or WORK_SIDE, paired, refine_steps)

    return pictures, dests, paint


def _lut_painter(args):
    try:
        lut = recolor.ColorLUT.load_cube(args.lut)
    except OSError as err:
        raise RunError(f"--lut: cannot read {args.lut!r} ({err.strerror or err})") from None
    except ValueError as err:
        raise RunError(f"--lut: {err}") from None
    lut = lut.blend(args.strength)
    return lambda i, path, rgb, weight: lut(rgb)


def _fit_painter(args, pictures, source_weights, target, device):
    """One LUT fitted on all sources together (written to --cube if asked), or with --per-image one per image."""
    target_weight = _read_mask(args.target_mask, "--target-mask", target, Path(args.target))
    if args.per_image:
        return lambda i, path, rgb, weight: _fit(
            [pictures[i]], _masks_or_none([weight]), target, target_weight, args, device, path.name
        )(rgb)
    label = f"one LUT on {len(pictures)} image(s)"
    lut = _fit(pictures, _masks_or_none(source_weights), target, target_weight, args, device, label)
    if args.cube:
        lut.save_cube(args.cube)
        print(args.cube)
    return lambda i, path, rgb, weight: lut(rgb)


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_usage(parser, args)
    try:
        _run(args)
    except RunError as err:
        exit_with(PROG, err)
    except (OSError, ValueError) as err:
        exit_with(PROG, RunError(str(err)))


if __name__ == "__main__":
    main()
