r"""A perceptual realism study: a static two-alternative (real / fake) web page, and the tally of its answers.

``python -m huenet.study --checkpoint RUN --out DIR [--data DIR] [--n N] [--methods huenet,fit,...] [--seed S]``
writes a self-contained study into DIR: ``index.html`` (works from ``file://`` and from any static server;
nothing is fetched from elsewhere), ``images/`` and ``study.json`` (which image is what, for the researcher).
Half of the trials show a real image (a target), half a fake (a source painted with another image's colours by
one of the methods, in turn). Both kinds are centre crops of the same size, written the same way (PNG), so
only their content can give them away. Trials come in a seeded random order.

``python -m huenet.study tally FILE...`` pools the answer files the page downloads (one per participant) into
the table of the Hue-Net paper: per row, the share of "real" and "fake" answers, with counts, a 95% Wilson
interval of the "real" share and a two-sided exact binomial test of "answered real as often as chance (50%)".
It prints the table and writes ``tally.md`` and ``tally.json``.

Example:
    >>> round(wilson_interval(0, 20)[1], 4)  # no "real" answer in 20: the share is below 16.1%, 95% confidence
    0.1611
    >>> binomial_test(1, 10)  # 1 of 10 is as far from 5 as 9 of 10: 2 * (1 + 10) / 2**10
    0.021484375
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import runlog
from ..cli import RunError, UsageError, clean_warnings, exit_with
from ..methods.registry import METHODS, NETWORK, method

#: The "method" of the real images in the page's answers and in the tally.
TARGET = "target"
ANSWERS = ("real", "fake")
ANSWER_KEYS = ("image", "method", "truth", "answer", "ms")
# The two-sided 97.5% standard normal quantile: the z of a 95% interval.
Z95 = 1.959963984540054
PROG = "huenet.study"
PAGE_TEMPLATE = "study_page.html"
DATA_MARK = "/*STUDY_DATA*/null"


# ------------------------------------------------------------------------------------------------ statistics
def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    r"""Wilson score interval of a binomial proportion (Wilson, 1927).

    .. math:: \frac{\hat p + z^2/2n \pm z \sqrt{\hat p (1-\hat p)/n + z^2/4n^2}}{1 + z^2/n}

    Unlike the normal ("Wald") interval it stays inside [0, 1] and does not collapse to a point at 0 or n.
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: need 0 <= successes <= n and n >= 1; got {successes} of {n}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_test(successes: int, n: int) -> float:
    """Two-sided exact binomial test of p = 1/2: the probability of a count at least as far from n/2.

    Under p = 1/2 the distribution is symmetric, so this is twice the smaller tail (at most 1), and equals the
    "sum of the outcomes no more likely than the observed one" definition (R's binom.test, SciPy's).
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"binomial_test: need 0 <= successes <= n and n >= 1; got {successes} of {n}")
    low = min(successes, n - successes)
    tail = sum(math.comb(n, i) for i in range(low + 1))
    return min(1.0, 2 * tail / 2**n)


# --------------------------------------------------------------------------------------------------- tally
def _entry_error(path: Path, where: str, problem: str) -> RunError:
    return RunError(f"{path}: {where}: {problem}")


def read_answers(path: str | Path, allow_partial: bool = False) -> list[dict]:
    """The answers of one participant's file: ``{"answers": [...]}`` (as the page downloads it) or a bare list.

    Raises:
        RunError: the file cannot be read, is not JSON, an entry lacks a field or has a wrong value, an image
            is answered twice, or (unless ``allow_partial``) the file says the study had more trials than it
            holds answers. The message names the file and the entry.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RunError(f"{path}: cannot be read ({err.strerror or err})") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path}: not a JSON file, or a truncated one ({err})") from err
    if isinstance(data, dict):
        if "answers" not in data:
            hint = " (it looks like a tally, not a participant's answers)" if "rows" in data else ""
            raise RunError(f'{path}: expected {{"answers": [...]}} or a list of answers{hint}')
        answers, trials = data["answers"], data.get("trials")
    else:
        answers, trials = data, None
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise RunError(f'{path}: "trials" must be a whole number >= 1; got {trials!r}')
    if not isinstance(answers, list):
        raise RunError(f'{path}: "answers" must be a list; got {type(answers).__name__}')
    seen = {}
    for i, entry in enumerate(answers):
        where = f"answer {i + 1}"
        if not isinstance(entry, dict):
            raise _entry_error(path, where, f"must be an object with {', '.join(ANSWER_KEYS)}; got {entry!r}")
        missing = [k for k in ANSWER_KEYS if k not in entry]
        if missing:
            raise _entry_error(path, where, f"lacks {', '.join(repr(k) for k in missing)} (a partial entry?)")
        for key in ("truth", "answer"):
            if entry[key] not in ANSWERS:
                raise _entry_error(path, where, f'{key!r} must be "real" or "fake"; got {entry[key]!r}')
        if not isinstance(entry["method"], str) or not entry["method"]:
            raise _entry_error(path, where, f"'method' must be a non-empty string; got {entry['method']!r}")
        if (entry["truth"] == "real") != (entry["method"] == TARGET):
            raise _entry_error(
                path,
                where,
                f"truth {entry['truth']!r} does not fit method {entry['method']!r} "
                f"(real images have method {TARGET!r})",
            )
        ms = entry["ms"]
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
            raise _entry_error(path, where, f"'ms' must be a number of milliseconds >= 0; got {ms!r}")
        if not isinstance(entry["image"], str) or not entry["image"]:
            raise _entry_error(path, where, f"'image' must be a non-empty string; got {entry['image']!r}")
        if entry["image"] in seen:
            raise _entry_error(
                path, where, f"image {entry['image']!r} was already answered in answer {seen[entry['image']]}"
            )
        seen[entry["image"]] = i + 1
    if not answers:
        raise RunError(f"{path}: holds no answers")
    if trials is not None and not allow_partial and len(answers) < trials:
        raise RunError(
            f"{path}: partial: {len(answers)} of {trials} trials answered (finish the study, drop "
            "the file, or pass --allow-partial)"
        )
    return answers


@dataclass
class Row:
    """One row of the table: how often the images of one kind were answered "real"."""

    label: str
    method: str
    n: int
    real: int

    @property
    def fake(self) -> int:
        return self.n - self.real

    def as_dict(self) -> dict:
        low, high = wilson_interval(self.real, self.n)
        return {
            "label": self.label,
            "method": self.method,
            "n": self.n,
            "real": self.real,
            "fake": self.fake,
            "real_percent": 100 * self.real / self.n,
            "fake_percent": 100 * self.fake / self.n,
            "real_percent_ci95": [100 * low, 100 * high],
            "p_value": binomial_test(self.real, self.n),
        }


def tally(answers: list[dict]) -> list[Row]:
    """Pool answers into rows: the real images first, then each method's outputs (in order of appearance)."""
    rows: dict[str, Row] = {TARGET: Row("Target (real image)", TARGET, 0, 0)}
    for entry in answers:
        method = entry["method"]
        if method not in rows:
            rows[method] = Row(f"Output (painted image): {method}", method, 0, 0)
        rows[method].n += 1
        rows[method].real += entry["answer"] == "real"
    return [row for row in rows.values() if row.n]


def _p_text(p: float) -> str:
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def format_tally(rows: list[Row], participants: int) -> str:
    """The table as markdown, with a line saying what the columns mean."""
    lines = [
        "| | n | Real % | Fake % | Real %, 95% Wilson CI | p (two-sided exact binomial, 50%) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        d = row.as_dict()
        low, high = d["real_percent_ci95"]
        lines.append(
            f"| {row.label} | {row.n} | {d['real_percent']:.1f} ({row.real}) | "
            f"{d['fake_percent']:.1f} ({row.fake}) | {low:.1f} – {high:.1f} | {_p_text(d['p_value'])} |"
        )
    lines.append("")
    lines.append(
        f"{participants} participant file(s), answers pooled. Real % / Fake %: share of the images of "
        'the row answered "real" / "fake" (counts in brackets). p: probability, were the answers '
        "coin flips, of a Real % at least this far from 50%."
    )
    return "\n".join(lines)


def tally_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m huenet.study tally",
        description="Pool the answer files of a realism study (one per participant) into a table of Real % and "
        "Fake % per kind of image, with counts, 95%% Wilson intervals and an exact binomial test.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="answer files downloaded from the study page")
    parser.add_argument("--out", default=".", metavar="DIR", help="where to write tally.md and tally.json")
    parser.add_argument(
        "--allow-partial", action="store_true", help="count the answers of participants who did not finish"
    )
    args = parser.parse_args(argv)
    try:
        answers = []
        seen: dict[str, str] = {}
        for path in args.files:
            mine = read_answers(path, args.allow_partial)
            # The same participant counted twice would narrow every interval: refuse a repeated file, and a
            # copy of one (answer times to the millisecond do not repeat by chance).
            key = json.dumps(mine, sort_keys=True)
            if key in seen:
                raise RunError(f"{path}: holds the same answers as {seen[key]} (one participant given twice?)")
            seen[key] = path
            answers += mine
        rows = tally(answers)
        table = format_tally(rows, len(args.files))
        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "tally.md").write_text(table + "\n", encoding="utf-8")
            runlog.write_json(
                out / "tally.json",
                {
                    "files": args.files,
                    "participants": len(args.files),
                    "answers": len(answers),
                    "rows": [row.as_dict() for row in rows],
                },
            )
        except OSError as err:
            raise RunError(f"--out {args.out!r}: cannot write there ({err.strerror or err})") from err
    except RunError as err:
        exit_with(f"{PROG} tally", err)
    print(table)
    print(f"\nwritten to {out / 'tally.md'} and {out / 'tally.json'}")


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
