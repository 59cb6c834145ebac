r"""The tally of a realism study's answers: ``python -m huenet.study tally FILE...``.

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
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .. import runlog
from ..cli import RunError, exit_with

#: The "method" of the real images in the page's answers and in the tally.
TARGET = "target"
ANSWERS = ("real", "fake")
ANSWER_KEYS = ("image", "method", "truth", "answer", "ms")
# The two-sided 97.5% standard normal quantile: the z of a 95% interval.
Z95 = 1.959963984540054
PROG = "huenet.study"


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
