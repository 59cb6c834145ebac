"""The realism study: tally statistics by hand, study generation, malformed answer files, and the page itself
driven in a real browser (Debian's chromium + chromedriver through selenium; skipped, with the reason, where
they are not installed)."""

import json
import math
import os
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import pil_to_tensor, train_tiny
from huenet.colortransfer import baselines
from huenet.colortransfer.commands import study, study_tally
from huenet.colortransfer.training.checkpoint import load_generator

Z = 1.959963984540054


# ------------------------------------------------------------------------------------------- statistics
def _wilson_by_hand(k, n):
    # The interval's other closed form: the roots of (k/n - p)^2 = z^2 p (1 - p) / n.
    root = Z * math.sqrt(k * (n - k) / n + Z * Z / 4)
    return (k + Z * Z / 2 - root) / (n + Z * Z), (k + Z * Z / 2 + root) / (n + Z * Z)


@pytest.mark.parametrize(
    "k, n, published",
    [
        # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (Wilson score without correction).
        (81, 263, (0.2553, 0.3662)),
        (15, 148, (0.0624, 0.1605)),
        (0, 20, (0.0, 0.1611)),
        (1, 29, (0.0061, 0.1718)),
        (68, 100, None),
        (101, 200, None),
        (7, 7, None),
        (1, 1, None),
    ],
)
def test_wilson_interval(k, n, published):
    low, high = study_tally.wilson_interval(k, n)
    assert (low, high) == pytest.approx(_wilson_by_hand(k, n), abs=1e-12)
    if published:
        assert (low, high) == pytest.approx(published, abs=5e-5)
    assert 0 <= low <= k / n <= high <= 1


@pytest.mark.parametrize(
    "k, n", [(1, 10), (9, 10), (5, 10), (0, 1), (1, 1), (68, 100), (101, 200), (3, 7), (4, 7), (0, 30)]
)
def test_binomial_test(k, n):
    # Two-sided: the total probability under p = 1/2 of the counts no more likely than k.
    pmf = [math.comb(n, i) / 2**n for i in range(n + 1)]
    by_hand = sum(p for p in pmf if p <= pmf[k] * (1 + 1e-12))
    assert study_tally.binomial_test(k, n) == pytest.approx(min(1.0, by_hand), rel=1e-12)


def test_statistics_reject_impossible_counts():
    with pytest.raises(ValueError, match="successes"):
        study_tally.wilson_interval(3, 2)
    with pytest.raises(ValueError, match="n >= 1"):
        study_tally.binomial_test(0, 0)


# ------------------------------------------------------------------------------------------------ tally
def _answers(method, truth, real, n, tag):
    return [
        {
            "image": f"images/{tag}{method}{i}.png",
            "method": method,
            "truth": truth,
            "answer": "real" if i < real else "fake",
            "ms": 800 + i,
        }
        for i in range(n)
    ]


def test_tally_reproduces_the_papers_table(tmp_path, capsys):
    # The seed's table: targets judged real 68% of the time, outputs 50.5%; split over two participants, one
    # file as the page downloads it, one a bare list.
    first = _answers("target", "real", 40, 50, "a") + _answers("huenet", "fake", 50, 100, "a")
    second = (
        _answers("target", "real", 28, 50, "b")
        + _answers("huenet", "fake", 51, 100, "b")
        + _answers("reinhard", "fake", 3, 10, "b")
    )
    (tmp_path / "p1.json").write_text(json.dumps({"study": "x", "trials": len(first), "answers": first}))
    (tmp_path / "p2.json").write_text(json.dumps(second))
    study.main(["tally", str(tmp_path / "p1.json"), str(tmp_path / "p2.json"), "--out", str(tmp_path / "t")])
    printed = capsys.readouterr().out
    rows = json.loads((tmp_path / "t" / "tally.json").read_text())["rows"]
    assert [r["label"] for r in rows] == [
        "Target (real image)",
        "Output (painted image): huenet",
        "Output (painted image): reinhard",
    ]
    for row, (real, n) in zip(rows, [(68, 100), (101, 200), (3, 10)]):
        assert (row["n"], row["real"], row["fake"]) == (n, real, n - real)
        assert row["real_percent"] == pytest.approx(100 * real / n)
        assert row["fake_percent"] == pytest.approx(100 * (n - real) / n)
        assert row["real_percent_ci95"] == pytest.approx([100 * v for v in _wilson_by_hand(real, n)])
        pmf = [math.comb(n, i) / 2**n for i in range(n + 1)]
        assert row["p_value"] == pytest.approx(min(1, sum(p for p in pmf if p <= pmf[real] * (1 + 1e-12))))
    # 68/100: Wilson [58.34, 76.33] %; two-sided p = 0.00041 (by the formulas above, printed to 4 places).
    assert "| Target (real image) | 100 | 68.0 (68) | 32.0 (32) | 58.3 – 76.3 | 0.0004 |" in printed
    assert "| Output (painted image): huenet | 200 | 50.5 (101) | 49.5 (99) | 43.6 – 57.4 | 0.9437 |" in printed
    assert (tmp_path / "t" / "tally.md").read_text().strip() in printed


def _fails(argv, capsys, code):
    """The error line a command prints last on stderr when it exits with ``code`` (never a traceback)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        study.main(argv)
    assert err.value.code == code
    printed = capsys.readouterr().err
    assert "Traceback" not in printed, printed
    return printed.strip().splitlines()[-1]


MALFORMED = [
    ('{"answers": [{"image": "a", ', "not a JSON file, or a truncated one"),
    ("[1, 2]", "answer 1: must be an object"),
    ('{"trials": 3}', 'expected {"answers": [...]}'),
    ('{"rows": []}', "looks like a tally"),
    ('{"answers": {}}', '"answers" must be a list'),
    ("[]", "holds no answers"),
    ('{"trials": "8", "answers": []}', '"trials" must be a whole number'),
]


def _good(i, **change):
    return {"image": f"images/{i:03d}.png", "method": "huenet", "truth": "fake", "answer": "real", "ms": 900, **change}


@pytest.mark.parametrize(
    "text, message",
    MALFORMED
    + [
        (
            json.dumps([_good(1), _good(2), {k: v for k, v in _good(3).items() if k != "ms"}]),
            "answer 3: lacks 'ms' (a partial entry?)",
        ),
        (json.dumps([_good(1), _good(2, answer="maybe")]), 'answer 2: \'answer\' must be "real" or "fake"'),
        (json.dumps([_good(1, truth="real")]), "answer 1: truth 'real' does not fit method 'huenet'"),
        (json.dumps([_good(1, ms=-3)]), "answer 1: 'ms' must be a number"),
        (json.dumps([_good(1, ms=True)]), "answer 1: 'ms' must be a number"),
        (json.dumps([_good(1, method="")]), "answer 1: 'method' must be a non-empty string"),
        (
            json.dumps([_good(1), _good(2), _good(1)]),
            "answer 3: image 'images/001.png' was already answered in answer 1",
        ),
        (json.dumps({"trials": 40, "answers": [_good(1), _good(2)]}), "partial: 2 of 40 trials answered"),
    ],
)
def test_tally_rejects_malformed_files(tmp_path, capsys, text, message):
    good = tmp_path / "good.json"
    good.write_text(json.dumps([_good(7)]))
    bad = tmp_path / "participant-2.json"
    bad.write_text(text)
    error = _fails(["tally", str(good), str(bad), "--out", str(tmp_path)], capsys, 1)
    assert error.startswith(f"huenet.study tally: error: {bad}: ")
    assert message in error
    assert not (tmp_path / "tally.json").exists()


def test_tally_partial_files_on_request_and_missing_files(tmp_path, capsys):
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"trials": 40, "answers": [_good(1), _good(2, answer="fake")]}))
    study.main(["tally", str(partial), "--allow-partial", "--out", str(tmp_path)])
    assert "| Output (painted image): huenet | 2 | 50.0 (1) | 50.0 (1) |" in capsys.readouterr().out
    assert f"{tmp_path / 'missing.json'}: cannot be read" in _fails(
        ["tally", str(tmp_path / "missing.json")], capsys, 1
    )
    # One participant twice (the same file, or a copy of it) is refused.
    (tmp_path / "copy.json").write_text(partial.read_text())
    for second in (partial, tmp_path / "copy.json"):
        error = _fails(["tally", str(partial), str(second), "--allow-partial"], capsys, 1)
        assert f"{second}: holds the same answers as {partial}" in error


def test_the_command_line_door(tmp_path):
    import subprocess

    (tmp_path / "a.json").write_text(json.dumps([_good(1), _good(2, answer="fake")]))
    result = subprocess.run(
        [sys.executable, "-m", "huenet.study", "tally", "a.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| Output (painted image): huenet | 2 | 50.0 (1) | 50.0 (1) |" in result.stdout
    assert (tmp_path / "tally.md").exists()


# ------------------------------------------------------------------------------------------- generation
def _photo(path, size, seed):
    """A smooth random colour field with a dark band: a picture with structure, of any size."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (3, 4, 3))
    array = np.asarray(Image.fromarray(low.astype(np.uint8)).resize(size, Image.BICUBIC)).copy()
    array[size[1] // 3 : size[1] // 2] //= 3
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for i, size in enumerate([(80, 60), (50, 90), (64, 64), (120, 70), (70, 70), (90, 48), (60, 100), (75, 75)]):
        _photo(folder / f"photo{i}.{'png' if i % 2 else 'jpg'}", size, i)
    return folder


def _crop(image, size):
    """An independent centre crop: PIL's (antialiased) bicubic resize of the short side to ``size``, then the
    middle square, as a (3, size, size) tensor."""
    scale = size / min(image.size)
    w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    left, top = (w - size) // 2, (h - size) // 2
    return pil_to_tensor(
        image.convert("RGB").resize((w, h), Image.BICUBIC).crop((left, top, left + size, top + size))
    ).contiguous()


def _levels(a, b):
    """Mean absolute difference in 8-bit levels."""
    return float((a - b).abs().mean()) * 255


def test_study_with_baselines_on_a_folder(photos, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["--data", str(photos), "--methods", "reinhard,histogram-matching,mkl", "--n", "8", "--size", "32"]
    study.main(["--out", str(out), *args])
    printed = capsys.readouterr()
    assert "8 trials (4 target, 2 reinhard, 1 histogram-matching, 1 mkl)" in printed.out
    assert "8/8" in printed.err  # tqdm's progress
    manifest = json.loads((out / "study.json").read_text())
    assert (manifest["data"], manifest["checkpoint"], manifest["size"]) == (str(photos), None, 32)
    trials = manifest["trials"]
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{i:03d}.png" for i in range(1, 9)]
    assert [t["image"] for t in trials] == [f"images/{i:03d}.png" for i in range(1, 9)]
    assert sum(t["truth"] == "real" for t in trials) == 4
    # With as many images as trials, no scene is shown twice (as a real image or as a fake's source).
    assert len({t["source"] for t in trials}) == 8
    ops = {"reinhard": baselines.reinhard, "histogram-matching": baselines.histogram_matching, "mkl": baselines.mkl}
    for t in trials:
        shown = Image.open(out / t["image"])
        assert shown.size == (32, 32) and shown.mode == "RGB"
        shown = pil_to_tensor(shown)
        source = _crop(Image.open(photos / t["source"]), 32)
        if t["truth"] == "real":
            assert t["method"] == "target" and "target" not in t
            assert _levels(shown, source) < 3, t  # the real image itself, up to resampling
        else:
            assert t["target"] != t["source"]
            target = _crop(Image.open(photos / t["target"]), 32)
            expected = ops[t["method"]](source[None], target[None])[0]
            assert _levels(shown, expected) < 3, t  # the named method, on the named source and target
            assert _levels(shown, source) > 10, t  # recoloured
    page = (out / "index.html").read_text()
    # Self-contained: no address outside the folder, and the page holds the trials but not the file names.
    assert "http://" not in page and "https://" not in page and "//" + "cdn" not in page
    assert manifest["id"] in page and not any(t["source"] in page for t in trials)
    # The same seed makes the same study; another seed another order.
    study.main(["--out", str(tmp_path / "again"), *args])
    assert json.loads((tmp_path / "again" / "study.json").read_text()) == manifest
    study.main(
        [
            "--out",
            str(tmp_path / "other"),
            "--data",
            str(photos),
            "--methods",
            "reinhard",
            "--n",
            "8",
            "--size",
            "32",
            "--seed",
            "1",
        ]
    )
    assert [t["truth"] for t in json.loads((tmp_path / "other" / "study.json").read_text())["trials"]] != [
        t["truth"] for t in trials
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny(
        tmp_path_factory.mktemp("run"),
        batch_size=2,
        bins=32,
        cond_bins=8,
        synthetic_images=40,
        max_steps=2,
        sample_every=1000,
    )


def test_study_of_a_trained_run_on_its_validation_split(run_dir, tmp_path, capsys):
    out = tmp_path / "study"
    study.main(
        ["--checkpoint", str(run_dir), "--out", str(out), "--methods", "huenet,reinhard", "--n", "6", "--size", "40"]
    )
    printed = capsys.readouterr()
    assert (
        "6 trials (3 target, 2 huenet, 1 reinhard) from the validation split of built-in synthetic (40 images)"
        in printed.out
    )
    assert "huenet.study: warning: 6 trials from 4 images: images repeat" in printed.err  # 10% of 40
    from huenet.colortransfer.data.folders import make_image_set, split_indices

    images = make_image_set(None, 32, 0, 40)
    _, val = split_indices(40, 0.1, 0)
    by_name = {images.name(i): i for i in val}
    generator, _ = load_generator(run_dir)
    manifest = json.loads((out / "study.json").read_text())
    assert manifest["checkpoint"] == str(run_dir) and manifest["methods"] == ["huenet", "reinhard"]
    for t in manifest["trials"]:
        assert t["source"] in by_name
        source = _crop(images.load(by_name[t["source"]]), 40)
        shown = pil_to_tensor(Image.open(out / t["image"]))
        if t["method"] == "huenet":
            target = _crop(images.load(by_name[t["target"]]), 40)
            with torch.no_grad():
                expected = generator(source[None], generator.target_statistics(target[None]))[0].clamp(0, 1)
            assert _levels(shown, expected) < 3, t
        elif t["method"] == "target":
            assert _levels(shown, source) < 3, t


def test_study_command_line_errors(photos, run_dir, tmp_path, monkeypatch, capsys):
    base = ["--data", str(photos), "--methods", "reinhard"]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "answers.json").write_text("[]")
    for argv, message, code in [
        (["--n", "7"], "--n must be an even number >= 2", 2),
        (["--size", "4"], "--size must be >= 16", 2),
        (["--out", str(busy)], f"--out: {str(busy)!r} exists and is not an empty folder", 2),
        (["--methods", "sepia"], "--methods: unknown method 'sepia'", 2),
        (["--methods", "reinhard,reinhard"], "--methods must name distinct methods", 2),
        (["--methods", "huenet"], "--checkpoint: the method huenet needs a trained run", 2),
        (["--device", "tpu"], "--device", 2),
        (["--data", str(tmp_path / "nothing")], "--data: the folder", 1),
        (["--checkpoint", str(tmp_path)], "--checkpoint: no checkpoint at", 1),
    ]:
        error = _fails(["--out", str(tmp_path / "y"), *base, *argv], capsys, code)
        assert message in error, error
        assert not (tmp_path / "y" / "index.html").exists()
    # Without --data, the run's validation split needs a run.
    assert "--data: give a folder of images, or --checkpoint" in _fails(
        ["--out", str(tmp_path / "y"), "--methods", "reinhard"], capsys, 2
    )
    # A method whose code is not installed: a clear error, and the default leaves it out.
    monkeypatch.setitem(sys.modules, "huenet.recolor", None)
    assert "--methods: method 'fit' is not available in this installation" in _fails(
        ["--out", str(tmp_path / "z"), *base[:2], "--methods", "fit"], capsys, 2
    )
    assert study.default_methods() == ["huenet"]


def _garbled_png(path):
    """A PNG whose chunks are well formed (checksums right, so PIL's verify passes) but whose pixel data is not
    a zlib stream: it fails only when decoded."""
    import struct
    import zlib

    data = path.read_bytes()
    at = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[at : at + 4])[0]
    junk = bytes(range(256)) * (length // 256 + 1)
    junk = junk[:length]
    chunk = struct.pack(">I", length) + b"IDAT" + junk + struct.pack(">I", zlib.crc32(b"IDAT" + junk))
    path.write_bytes(data[:at] + chunk + data[at + 12 + length :])


def test_the_training_free_fit_method(photos, tmp_path, monkeypatch, capsys):
    # huenet.recolor.fit(source, target) returns a LUT, applied by calling it; a stand-in LUT that inverts the
    # colours shows that the study fits on the pair and paints the source with the result.
    import types

    seen = []

    def fit(source, target):
        seen.append((source.shape, target.shape))
        return lambda image: 1 - image

    monkeypatch.setitem(sys.modules, "huenet.recolor", types.SimpleNamespace(fit=fit))
    assert study.default_methods() == ["huenet", "fit"]
    study.main(["--out", str(tmp_path / "s"), "--data", str(photos), "--methods", "fit", "--n", "4", "--size", "32"])
    fakes = [t for t in json.loads((tmp_path / "s" / "study.json").read_text())["trials"] if t["method"] == "fit"]
    assert len(fakes) == 2 and seen == [((1, 3, 32, 32), (1, 3, 32, 32))] * 2
    for t in fakes:
        source = _crop(Image.open(photos / t["source"]), 32)
        assert _levels(pil_to_tensor(Image.open(tmp_path / "s" / t["image"])), 1 - source) < 3


def test_transparent_images_are_shown_over_white(tmp_path):
    for i in range(2):
        array = np.zeros((40, 40, 4), np.uint8)
        array[..., :3] = (30, 200 - 100 * i, 90)
        array[:, 20:, 3] = 255  # the left half transparent (its colour black), the right half opaque
        Image.fromarray(array, "RGBA").save(tmp_path / f"cutout{i}.png")
    study.main(
        ["--out", str(tmp_path / "s"), "--data", str(tmp_path), "--methods", "reinhard", "--n", "2", "--size", "40"]
    )
    for t in json.loads((tmp_path / "s" / "study.json").read_text())["trials"]:
        shown = np.asarray(Image.open(tmp_path / "s" / t["image"]), float)
        assert shown.shape == (40, 40, 3)
        assert np.abs(shown[:, :18] - 255).max() <= 1, t  # white where transparent, real and fake alike
        assert shown[:, 22:].mean() < 200, t  # the picture where opaque


def test_unreadable_images(tmp_path, capsys):
    for i in range(3):
        _photo(tmp_path / f"ok{i}.png", (40, 40), i)
    broken = _photo(tmp_path / "broken.jpg", (64, 64), 9)
    broken.write_bytes(broken.read_bytes()[:40])  # a torn file: found unreadable up front, left out
    study.main(
        ["--out", str(tmp_path / "s"), "--data", str(tmp_path), "--methods", "reinhard", "--n", "6", "--size", "32"]
    )
    assert "huenet.study: warning: skipped 1 unreadable image file(s)" in capsys.readouterr().err
    assert {t["source"] for t in json.loads((tmp_path / "s" / "study.json").read_text())["trials"]} == {
        "ok0.png",
        "ok1.png",
        "ok2.png",
    }
    # A file that fails only when its pixels are decoded stops the study, named.
    _garbled_png(_photo(tmp_path / "ok1.png", (40, 40), 1))
    error = _fails(
        ["--out", str(tmp_path / "t"), "--data", str(tmp_path), "--methods", "reinhard", "--n", "6", "--size", "32"],
        capsys,
        1,
    )
    assert error.startswith("huenet.study: error: --data: cannot decode ok1.png: "), error


# ---------------------------------------------------------------------------------------------- browser
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def chrome_factory(tmp_path_factory):
    """Makes headless Debian chromium sessions (never a downloaded browser); skips, saying why, without one."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            pytest.skip(f"no browser for the page tests: {path} missing (apt-get install {package})")
    drivers = []

    def make(phone=None):
        """A desktop-sized window, or with ``phone=(width, height)`` a touch screen of that many CSS pixels."""
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1000,900",
        ):
            options.add_argument(arg)
        if phone:
            # A headless window is at least 500 pixels wide: a phone's viewport needs device emulation.
            options.add_experimental_option(
                "mobileEmulation",
                {"deviceMetrics": {"width": phone[0], "height": phone[1], "pixelRatio": 3, "touch": True}},
            )
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        drivers.append(driver)
        return driver

    # Selenium must never fetch a browser or driver: both paths are given, and Selenium Manager is told so.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        yield make
        for driver in drivers:
            driver.quit()


@pytest.fixture(scope="module")
def page(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "study"
    study.main(
        [
            "--out",
            str(out),
            "--data",
            str(photos),
            "--methods",
            "reinhard,histogram-matching",
            "--n",
            "8",
            "--size",
            "64",
        ]
    )
    return out


READY = "return document.getElementById('real').getAttribute('aria-disabled') === 'false'"


def _wait(driver, condition, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(condition)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _visible(driver, element_id):
    return driver.execute_script(f"return !document.getElementById('{element_id}').closest('.screen').hidden")


def _answer(driver, how, choice):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    before = driver.execute_script("return studyAnswers().length")
    _wait(driver, READY, "the image to load")
    if how == "key":
        ActionChains(driver).send_keys(choice[0]).perform()
    elif how == "tab":  # move the focus to the button with Tab, press it with Enter
        from selenium.webdriver.common.keys import Keys

        for _ in range(4):
            if driver.execute_script("return document.activeElement.id") == choice:
                break
            ActionChains(driver).send_keys(Keys.TAB).perform()
        ActionChains(driver).send_keys(Keys.ENTER).perform()
    else:
        driver.find_element(By.ID, choice).click()
    _wait(driver, f"return studyAnswers().length === {before + 1}", "the answer to be recorded")


def _errors(driver):
    """The console's errors and warnings since the last call (reading the log empties it)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def test_page_in_a_browser(chrome_factory, page, tmp_path, capsys):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = chrome_factory()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.get((page / "index.html").as_uri())
    trials = json.loads((page / "study.json").read_text())["trials"]
    assert _visible(driver, "start") and driver.execute_script("return studyAnswers()") == []
    ActionChains(driver).send_keys("\n").perform()  # Enter starts, from the keyboard alone
    _wait(driver, "return !document.getElementById('trial').hidden", "the first trial")
    plan = [
        ("key", "real"),
        ("click", "fake"),
        ("tab", "real"),
        ("click", "real"),
        ("key", "fake"),
        ("tab", "fake"),
        ("tab", "fake"),
        ("click", "fake"),
    ]
    for i, (how, choice) in enumerate(plan[:4]):
        assert driver.find_element(By.ID, "progress").text == f"{i + 1} / 8"
        assert driver.find_element(By.ID, "image").get_attribute("src").endswith(trials[i]["image"])
        _answer(driver, how, choice)
    # Reload halfway: the answers persist and the study resumes where it stopped.
    driver.refresh()
    _wait(driver, "return !document.getElementById('intro').hidden", "the intro after the reload")
    assert "4 of 8 answered" in driver.find_element(By.ID, "resume").text
    assert len(driver.execute_script("return studyAnswers()")) == 4
    ActionChains(driver).send_keys("\n").perform()
    _wait(driver, "return document.getElementById('progress').textContent === '5 / 8'", "trial 5")
    for how, choice in plan[4:]:
        _answer(driver, how, choice)
    assert _visible(driver, "download")
    answers = driver.execute_script("return studyAnswers()")
    assert [(a["image"], a["method"], a["truth"]) for a in answers] == [
        (t["image"], t["method"], t["truth"]) for t in trials
    ]
    assert [a["answer"] for a in answers] == [choice for _, choice in plan]
    assert all(isinstance(a["ms"], int) and 0 <= a["ms"] < 60_000 for a in answers)
    assert set(answers[0]) == {"image", "method", "truth", "answer", "ms"}
    # Download with the keyboard (D) and tally the file.
    ActionChains(driver).send_keys("d").perform()
    _wait(driver, "return document.getElementById('saved').hidden === false", "the download")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (files := list(downloads.glob("answers-*.json"))):
        time.sleep(0.1)
    assert len(files) == 1, list(downloads.iterdir())
    saved = json.loads(files[0].read_text())
    assert saved["answers"] == answers and saved["trials"] == 8
    errors = _errors(driver)
    assert not errors, errors
    capsys.readouterr()
    study.main(["tally", str(files[0]), "--out", str(tmp_path)])
    rows = {r["method"]: r for r in json.loads((tmp_path / "tally.json").read_text())["rows"]}
    for method, row in rows.items():
        mine = [a for a in answers if a["method"] == method]
        assert (row["n"], row["real"]) == (len(mine), sum(a["answer"] == "real" for a in mine))
    assert sum(r["n"] for r in rows.values()) == 8
    # A new participant: two clicks on "start over" clear the stored answers.
    driver.find_element(By.ID, "reset").click()
    assert len(driver.execute_script("return studyAnswers()")) == 8
    driver.find_element(By.ID, "reset").click()
    driver.refresh()
    _wait(driver, "return !document.getElementById('intro').hidden", "the intro")
    assert driver.execute_script("return studyAnswers()") == []
    errors = _errors(driver)
    assert not errors, errors


def test_page_on_a_phone_sized_screen_and_a_static_server(chrome_factory, page):
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(page))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        driver = chrome_factory(phone=(360, 640))
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        driver.execute_script("document.getElementById('start').click()")
        _wait(driver, READY, "the first image")
        geometry = driver.execute_script("""
            const box = (id) => document.getElementById(id).getBoundingClientRect();
            return {width: innerWidth, height: innerHeight, scroll: document.documentElement.scrollWidth,
                    image: box('image'), real: box('real'), fake: box('fake')};""")
        assert (geometry["width"], geometry["height"]) == (360, 640)
        assert geometry["scroll"] <= geometry["width"]  # nothing sticks out sideways
        for part in ("image", "real", "fake"):
            box = geometry[part]
            assert 0 <= box["left"] and box["right"] <= geometry["width"] and box["bottom"] <= geometry["height"]
        assert geometry["image"]["width"] == 64  # the images' own size fits: shown at exactly that size
        assert geometry["real"]["height"] >= 44  # a finger-sized target
        _answer(driver, "click", "real")
        errors = _errors(driver)
        assert not errors, errors  # no 404 (e.g. a favicon) on a web server either
    finally:
        server.shutdown()
        server.server_close()


def test_a_large_image_is_shrunk_to_fit_a_phone(chrome_factory, photos, tmp_path):
    out = tmp_path / "big"
    study.main(["--out", str(out), "--data", str(photos), "--methods", "reinhard", "--n", "2", "--size", "400"])
    driver = chrome_factory(phone=(360, 640))
    driver.get((out / "index.html").as_uri())
    driver.execute_script("document.getElementById('start').click()")
    _wait(driver, READY, "the first image")
    width, image, fake = driver.execute_script(
        "return [innerWidth, document.getElementById('image').getBoundingClientRect(),"
        " document.getElementById('fake').getBoundingClientRect()]"
    )
    assert width == 360 and 250 <= image["width"] <= width - 16 and image["width"] == image["height"]
    assert fake["bottom"] <= driver.execute_script("return innerHeight")
