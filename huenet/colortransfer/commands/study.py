r"""A perceptual realism study: a static two-alternative (real / fake) web page, and the tally of its answers.

``python -m huenet.study --checkpoint RUN --out DIR [--data DIR] [--n N] [--methods huenet,fit,...] [--seed S]``
writes a self-contained study into DIR: ``index.html`` (works from ``file://`` and from any static server;
nothing is fetched from elsewhere), ``images/`` and ``study.json`` (which image is what, for the researcher).
Half of the trials show a real image (a target), half a fake (a source painted with another image's colours by
one of the methods, in turn). Both kinds are centre crops of the same size, written the same way (PNG), so
only their content can give them away. Trials come in a seeded random order.

``python -m huenet.study tally FILE...`` pools the answer files the page downloads into a table
(:mod:`~huenet.colortransfer.commands.study_tally`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import warnings
from importlib import resources
from pathlib import Path

from ..cli import RunError, UsageError, clean_warnings, exit_with
from ..methods.registry import METHODS, NETWORK, method
from .study_tally import PROG, TARGET, tally_main

PAGE_TEMPLATE = "study_page.html"
DATA_MARK = "/*STUDY_DATA*/null"


# ---------------------------------------------------------------------------------------------- generation
#: The methods that can make the fakes (the source unchanged would be a real photo).
FAKE_METHODS = tuple(name for name in METHODS if name != "identity")


def _available(name: str) -> bool:
    try:
        method(name, generator=lambda *args: None)
    except ImportError:
        return False
    return True


def default_methods() -> list[str]:
    """``huenet``, and the training-free ``fit`` where it is installed."""
    return [NETWORK] + (["fit"] if _available("fit") else [])


def build_methods(names: list[str], generator) -> dict:
    """The method functions of ``names``; raises UsageError for an unknown or unavailable one."""
    methods = {}
    for name in names:
        if name not in FAKE_METHODS:
            raise UsageError(f"--methods: unknown method {name!r}; choose from {', '.join(FAKE_METHODS)}")
        try:
            methods[name] = method(name, generator)
        except ImportError as err:
            raise UsageError(f"--methods: method {name!r} is not available in this installation ({err})") from err
    return methods


def plan_trials(count: int, n: int, methods: list[str], seed: int) -> list[dict]:
    """n/2 real and n/2 fake trials over ``count`` images (methods in turn), in seeded random order.

    Each trial is ``{"truth", "method", "position"}``: the position of its image (a fake's source) among the
    ``count``. Real images take positions 0, 1, ... and fakes' sources the next ones, cycling only when the
    study needs more images than there are: shuffle the images first and no scene is shown both as a real image
    and as a fake's source unless it must be.
    """
    trials = [{"truth": "real", "method": TARGET, "position": k % count} for k in range(n // 2)]
    trials += [
        {"truth": "fake", "method": methods[k % len(methods)], "position": (n // 2 + k) % count}
        for k in range(n - n // 2)
    ]
    random.Random(f"study-order:{seed}").shuffle(trials)
    return trials


def _on_white(rgb, alpha):
    """Composite a (3, S, S) image over white by its (1, S, S) alpha: every image is shown opaque alike."""
    return rgb * alpha + (1 - alpha)


def render_page(study: dict) -> str:
    """``index.html`` of a study: the page template with the study's trials inlined (no fetch: file:// works)."""
    template = resources.files(__package__).joinpath(PAGE_TEMPLATE).read_text(encoding="utf-8")
    # Inside <script>, "</" could close the element early: escape "<" (JSON keeps the value unchanged).
    return template.replace(DATA_MARK, json.dumps(study, sort_keys=True).replace("<", "\\u003c"))


def write_study(
    out: Path,
    images,
    indices: list[int],
    methods: dict,
    n: int,
    size: int,
    seed: int,
    about: dict | None = None,
    device="cpu",
) -> dict:
    """Render the trials' images into ``out/images``, then write ``study.json`` (with ``about``: where the
    images and the model came from) and ``index.html``.

    Images (``indices`` of the image set ``images``) are shuffled by ``seed``; each is paired with a fixed
    other one as its target, and both are resized and centre-cropped to ``size`` as validation pairs are
    (:class:`~huenet.colortransfer.data.folders.UnpairedPairs`).
    """
    import torch
    from tqdm import tqdm

    from ..data.folders import UnpairedPairs
    from ..data.images import write_image

    order = list(indices)
    random.Random(f"study-images:{seed}").shuffle(order)
    pairs = UnpairedPairs(images, order, size, train=False, seed=seed)
    (out / "images").mkdir(parents=True)
    digest = hashlib.sha256()
    records = []
    for k, trial in enumerate(tqdm(plan_trials(len(order), n, list(methods), seed), desc=PROG, unit="image")):
        position = trial["position"]
        pair = pairs[position]
        if pair.skipped:
            raise RunError("--data: cannot decode " + "; ".join(pair.skipped.replace("\t", ": ").split("\n")))
        record = {
            "image": f"images/{k + 1:03d}.png",
            "truth": trial["truth"],
            "method": trial["method"],
            "source": images.name(order[position]),
        }
        if trial["truth"] == "real":
            rgb = pair.source
        else:
            record["target"] = images.name(order[pairs.target_position(position)])
            with torch.no_grad():
                rgb = methods[trial["method"]](pair.source[None].to(device), pair.target[None].to(device))
            rgb = rgb[0].float().cpu()
        path = out / record["image"]
        write_image(path, _on_white(rgb.clamp(0, 1), pair.source_alpha))
        digest.update(path.read_bytes() + json.dumps(record, sort_keys=True).encode())
        records.append(record)
    study = {
        "id": digest.hexdigest()[:16],
        "size": size,
        "seed": seed,
        **(about or {}),
        "methods": list(methods),
        "trials": records,
    }
    (out / "study.json").write_text(json.dumps(study, indent=2) + "\n", encoding="utf-8")
    # The page needs only what it shows and records: not the source and target names.
    page_trials = [{k: r[k] for k in ("image", "truth", "method")} for r in records]
    (out / "index.html").write_text(
        render_page({"id": study["id"], "size": size, "trials": page_trials}), encoding="utf-8"
    )
    return study


def _image_source(args, device):
    """(generator or None, image set, indices, description) for the flags."""
    from ..data.folders import ImageFolder, make_image_set, split_indices
    from ..training.checkpoint import load_generator

    generator = config = None
    if args.checkpoint is not None:
        try:
            generator, config = load_generator(args.checkpoint, device)
        except (OSError, ValueError) as err:
            raise RunError(f"--checkpoint: {err}") from err
    if args.data is not None:
        try:
            images = ImageFolder(args.data)
        except (OSError, ValueError) as err:
            raise RunError(f"--data: {err}") from err
        return generator, images, list(range(len(images))), str(args.data)
    if config is None:
        raise UsageError("--data: give a folder of images, or --checkpoint to use the run's validation split")
    try:
        images = make_image_set(config["data"], config["image_size"], config["seed"], config["synthetic_images"])
    except (OSError, ValueError) as err:
        raise RunError(f"the run's data: {err}") from err
    _, val_idx = split_indices(len(images), config["val_fraction"], config["seed"])
    name = config["data"] or f"built-in synthetic ({config['synthetic_images']} images)"
    return generator, images, val_idx, f"the validation split of {name}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m huenet.study",
        description="Write a static real/fake (2AFC) realism study: DIR/index.html shows real images and "
        "recoloured fakes one at a time, records answers and times, and downloads them as JSON. "
        "Then `python -m huenet.study tally FILE...` makes the table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="RUN",
        help="a run folder or checkpoint file; needed for the method huenet and the default --data",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) folder for the study")
    parser.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="draw the images from this folder; default: the run's validation split",
    )
    parser.add_argument("--n", type=int, default=40, help="number of trials (even: half real, half fake)")
    parser.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated methods making the fakes, of {', '.join(FAKE_METHODS)}; "
        "default: huenet, and fit where it is installed",
    )
    parser.add_argument("--size", type=int, default=256, help="side of the square images shown, in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seeds which images are drawn, the pairs and the order")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["tally"]:
        tally_main(argv[1:])
        return
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n < 2 or args.n % 2:
        parser.error(f"--n must be an even number >= 2 (half real, half fake); got {args.n}")
    if args.size < 16:
        parser.error(f"--size must be >= 16; got {args.size}")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        parser.error(
            f"--out: {str(out)!r} exists and is not an empty folder (a study's answers may depend on "
            "it); choose a new folder"
        )
    names = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else default_methods()
    if not names or len(set(names)) != len(names):
        parser.error(f"--methods must name distinct methods; got {args.methods!r}")
    with clean_warnings(PROG):
        try:
            _run(args, out, names)
        except RunError as err:
            exit_with(PROG, err)


def _run(args, out: Path, names: list[str]) -> None:
    from .. import runtime

    try:
        device = runtime.resolve_device(args.device)
    except ValueError as err:
        raise UsageError(f"--device: {err}") from err
    runtime.configure_threads(None)
    if NETWORK in names and args.checkpoint is None:
        raise UsageError("--checkpoint: the method huenet needs a trained run (or leave it out of --methods)")
    generator, images, indices, source_name = _image_source(args, device)
    if len(indices) < 2:
        raise RunError(
            f"--data: need at least 2 images to paint one with another's colours; {source_name} has {len(indices)}"
        )
    methods = build_methods(names, generator)
    if args.n > len(indices):
        warnings.warn(
            f"{args.n} trials from {len(indices)} images: images repeat, and a scene may be shown both "
            "real and as a fake's source",
            stacklevel=1,
        )
    try:
        about = {"data": source_name, "checkpoint": args.checkpoint}
        study = write_study(out, images, indices, methods, args.n, args.size, args.seed, about, device)
    except OSError as err:
        raise RunError(f"--out: cannot write the study into {str(out)!r} ({err.strerror or err})") from err
    counts = ", ".join(f"{sum(t['method'] == m for t in study['trials'])} {m}" for m in [TARGET, *methods])
    print(f"{PROG}: {args.n} trials ({counts}) from {source_name}")
    print(f"open {out / 'index.html'} in a browser (or serve {out} with any static web server)")


if __name__ == "__main__":
    main()
