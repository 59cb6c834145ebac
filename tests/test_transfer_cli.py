"""python -m huenet.transfer: every method, .cube in and out, masks, folders, 16-bit and RGBA, every error."""

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli import _image, run_dir  # noqa: F401  (the tiny trained run, shared with the other CLI tests)

from huenet.colortransfer.commands import transfer
from huenet.colortransfer.data.images import read_image
from huenet.colortransfer.metrics import hue_emd
from huenet.recolor import ColorLUT

FAST = ["--steps", "15"]


def _hue_emd(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(hue_emd(a[None], b[None]))


@pytest.fixture
def pair(tmp_path):
    return _image(tmp_path / "source.png", (60, 40), (40, 170, 40)), _image(
        tmp_path / "target.jpg", (30, 50), (200, 50, 40)
    )


def _run(*argv):
    transfer.main([str(a) for a in argv])


@pytest.mark.parametrize("method", ["fit", "reinhard", "histogram-matching", "mkl"])
def test_methods_move_the_hues_toward_the_target(pair, tmp_path, method, capsys):
    source, target = pair
    out = tmp_path / f"{method}.png"
    _run("--source", source, "--target", target, "--out", out, "--method", method, *FAST)
    assert capsys.readouterr().out.split()[-1] == str(out)
    result, src, tgt = read_image(out).rgb, read_image(source).rgb, read_image(target).rgb
    assert result.shape == src.shape
    assert _hue_emd(result, tgt) < 0.5 * _hue_emd(src, tgt), method


def test_fit_is_the_default_and_strength_zero_keeps_the_source(pair, tmp_path):
    source, target = pair
    _run("--source", source, "--target", target, "--out", tmp_path / "s0.png", "--strength", "0", *FAST)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "s0.png")), np.asarray(Image.open(source)))


def test_cube_out_then_lut_in_gives_the_same_image(pair, tmp_path):
    source, target = pair
    _run("--source", source, "--target", target, "--out", tmp_path / "a.png", "--cube", tmp_path / "a.cube", *FAST)
    lut = ColorLUT.load_cube(tmp_path / "a.cube")
    assert lut.size == 17
    _run("--source", source, "--out", tmp_path / "b.png", "--lut", tmp_path / "a.cube")
    a, b = (np.asarray(Image.open(tmp_path / n), dtype=int) for n in ("a.png", "b.png"))
    assert np.abs(a - b).max() <= 1  # the .cube's 6 decimals


def test_gan_method_with_a_checkpoint(run_dir, pair, tmp_path):  # noqa: F811
    source, target = pair
    out = tmp_path / "sub" / "gan.png"
    _run("--checkpoint", run_dir, "--source", source, "--target", target, "--out", out, "--max-side", "40")
    result = read_image(out).rgb
    assert result.shape == read_image(source).rgb.shape
    assert _hue_emd(result, read_image(target).rgb) < _hue_emd(read_image(source).rgb, read_image(target).rgb)
    # The default refines G's output with the training-free fit; --refine 0 is the network alone. (That the
    # refinement moves hues towards the target is tests/test_refine.py's; on this flat two-colour pair the network
    # alone can already be as close as the fit's smoothness allows, so only the difference is checked here.)
    raw = tmp_path / "raw.png"
    _run(
        "--checkpoint", run_dir, "--source", source, "--target", target, "--out", raw, "--max-side", "40", "--refine", 0
    )
    assert not torch.equal(result, read_image(raw).rgb)


def test_gan_folders_pair_sources_with_cycling_targets(run_dir, tmp_path):  # noqa: F811
    (tmp_path / "src").mkdir()
    (tmp_path / "tgt").mkdir()
    for i, size in enumerate([(40, 40), (64, 36), (33, 70)]):
        _image(tmp_path / "src" / f"s{i}.png", size, (30, 30, 200))
    for i in range(2):
        _image(tmp_path / "tgt" / f"t{i}.png", (32, 32), (220, 200, 30))
    _run("--checkpoint", run_dir, "--source", tmp_path / "src", "--target", tmp_path / "tgt", "--out", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s0__t0.png", "s1__t1.png", "s2__t0.png"]
    assert Image.open(tmp_path / "out" / "s1__t1.png").size == (64, 36)


def test_folder_mode_applies_one_lut_to_every_frame(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        _image(frames / f"f{i}.png", (40, 30), (40 + 30 * i, 160, 60))
    target = _image(tmp_path / "t.png", (30, 30), (60, 60, 210))
    _run("--source", frames, "--target", target, "--out", tmp_path / "out", "--cube", tmp_path / "one.cube", *FAST)
    lut = ColorLUT.load_cube(tmp_path / "one.cube")
    for i in range(3):
        written = np.asarray(Image.open(tmp_path / "out" / f"f{i}.png"), dtype=int)
        expected = lut(read_image(frames / f"f{i}.png").rgb)
        expected = (expected.permute(1, 2, 0).numpy() * 255 + 0.5).astype(int)
        assert np.abs(written - expected).max() <= 1, i
    # --per-image fits each frame on its own: a frame's own LUT differs from the shared one.
    _run("--source", frames, "--target", target, "--out", tmp_path / "each", "--per-image", *FAST)
    shared = np.asarray(Image.open(tmp_path / "out" / "f0.png"), dtype=int)
    own = np.asarray(Image.open(tmp_path / "each" / "f0.png"), dtype=int)
    assert own.shape == shared.shape and np.abs(own - shared).max() > 1


def test_sixteen_bit_source_gives_sixteen_bit_output(tmp_path, pair):
    import png

    _, target = pair
    rng = np.random.default_rng(0)
    array = (rng.random((20, 24, 3)) * 20000 + np.array([5000, 30000, 8000])).astype(np.uint16)
    path = tmp_path / "deep.png"
    with open(path, "wb") as f:
        png.Writer(24, 20, greyscale=False, bitdepth=16).write(f, array.reshape(20, -1))
    _run("--source", path, "--target", target, "--out", tmp_path / "deep_out.png", *FAST)
    out = read_image(tmp_path / "deep_out.png")
    assert out.bits == 16 and out.rgb.shape == (3, 20, 24)
    # Real 16-bit content: values between the 8-bit levels, and not clipped to white.
    levels = np.unique((out.rgb.numpy() * 65535).round() % 257)
    assert len(levels) > 10 and float(out.rgb.mean()) < 0.9


def test_rgba_source_keeps_alpha_and_transparent_pixels_do_not_count(tmp_path):
    # Left half green and opaque, right half red and fully transparent; a blue target. If the transparent red
    # counted, the fit would be pulled by it; with zero weight, the result equals fitting the green half alone.
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[:, :20] = (40, 170, 40, 255)
    rgba[:, 20:] = (220, 30, 30, 0)
    rgba[..., :3] = np.clip(rgba[..., :3].astype(int) + np.random.default_rng(1).integers(-30, 30, (30, 40, 3)), 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(rgba[:, :20, :3]).save(tmp_path / "left.png")
    target = _image(tmp_path / "t.png", (30, 30), (40, 60, 210))
    _run(
        "--source",
        tmp_path / "a.png",
        "--target",
        target,
        "--out",
        tmp_path / "a_out.png",
        "--cube",
        tmp_path / "a.cube",
        *FAST,
    )
    _run(
        "--source",
        tmp_path / "left.png",
        "--target",
        target,
        "--out",
        tmp_path / "l_out.png",
        "--cube",
        tmp_path / "l.cube",
        *FAST,
    )
    out = Image.open(tmp_path / "a_out.png")
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    a, left = ColorLUT.load_cube(tmp_path / "a.cube").table, ColorLUT.load_cube(tmp_path / "l.cube").table
    assert (a - left).abs().max() < 1e-4


def test_masks_choose_the_pixels_that_count(tmp_path):
    source = _image(tmp_path / "s.png", (40, 30), (40, 170, 40))
    target = _image(tmp_path / "t.png", (30, 30), (40, 60, 210))
    mask = np.zeros((30, 40), np.uint8)
    mask[:, :10] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    Image.fromarray(np.full((30, 30), 255, np.uint8)).save(tmp_path / "tm.png")
    _run(
        "--source",
        source,
        "--target",
        target,
        "--out",
        tmp_path / "o.png",
        "--mask",
        tmp_path / "m.png",
        "--target-mask",
        tmp_path / "tm.png",
        "--cube",
        tmp_path / "m.cube",
        *FAST,
    )
    Image.fromarray(np.asarray(Image.open(source))[:, :10]).save(tmp_path / "strip.png")
    _run(
        "--source",
        tmp_path / "strip.png",
        "--target",
        target,
        "--out",
        tmp_path / "o2.png",
        "--cube",
        tmp_path / "strip.cube",
        *FAST,
    )
    masked, strip = (ColorLUT.load_cube(tmp_path / n).table for n in ("m.cube", "strip.cube"))
    assert (masked - strip).abs().max() < 1e-4


def _error(capsys, code, match, *argv):
    with pytest.raises(SystemExit) as exc:
        _run(*argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == code, (exc.value.code, err)
    # Usage errors: argparse's usage, then one "error:" line; run-time errors: one line.
    message = err.splitlines()[-1]
    assert match in message, message
    assert "Traceback" not in err and len(message.splitlines()) == 1


def test_usage_errors_exit_2(pair, tmp_path, capsys, run_dir):  # noqa: F811
    source, target = pair
    out = tmp_path / "o.png"
    cube = tmp_path / "x.cube"
    ColorLUT.identity(3).save_cube(cube)
    base = ["--source", source, "--target", target]
    _error(
        capsys,
        2,
        "--lut applies a saved LUT; it cannot be combined with --method huenet",
        "--source",
        source,
        "--out",
        out,
        "--lut",
        cube,
        "--method",
        "gan",
        "--checkpoint",
        run_dir,
    )
    _error(capsys, 2, "--method huenet needs --checkpoint", *base, "--out", out, "--method", "gan")
    _error(
        capsys,
        2,
        "--checkpoint is only used by --method huenet",
        *base,
        "--out",
        out,
        "--method",
        "fit",
        "--checkpoint",
        run_dir,
    )
    _error(capsys, 2, "--target is not used", *base, "--out", out, "--lut", cube)
    _error(capsys, 2, "--target is required", "--source", source, "--out", out)
    _error(capsys, 2, "--strength must be in [0, 1]", *base, "--out", out, "--strength", "2")
    _error(capsys, 2, "--out: ", *base, "--out", tmp_path / "out.txt")
    _error(capsys, 2, "--cube: ", *base, "--out", out, "--cube", tmp_path / "x.lut")
    _error(capsys, 2, "--mask only works with --method fit", *base, "--out", out, "--method", "mkl", "--mask", source)
    _error(capsys, 2, "--per-image needs --source to be a folder", *base, "--out", out, "--per-image")
    _error(capsys, 2, "--refine must be >= 0; got -1", *base, "--out", out, "--checkpoint", run_dir, "--refine", -1)
    _error(capsys, 2, "--refine only works with --method huenet", *base, "--out", out, "--refine", 5)
    _error(
        capsys, 2, "argument --refine: invalid int value", *base, "--out", out, "--checkpoint", run_dir, "--refine", "x"
    )
    (tmp_path / "tdir").mkdir()
    _error(capsys, 2, "--target: ", "--source", source, "--target", tmp_path / "tdir", "--out", out)
    (tmp_path / "sdir").mkdir()
    _image(tmp_path / "sdir" / "a.png", (20, 20), (10, 100, 10))
    out.write_bytes(b"x")
    _error(
        capsys,
        2,
        "is an existing file, but --source is a folder",
        "--source",
        tmp_path / "sdir",
        "--target",
        target,
        "--out",
        out,
    )


def test_run_time_errors_exit_1_and_write_nothing(pair, tmp_path, capsys):
    source, target = pair
    out = tmp_path / "never.png"
    base = ["--source", source, "--target", target, "--out", out, *FAST]
    _error(
        capsys, 1, "--source: no file or folder", "--source", tmp_path / "nope.png", "--target", target, "--out", out
    )
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    _error(capsys, 1, "--target: cannot read", "--source", source, "--target", tmp_path / "broken.png", "--out", out)
    bad_cube = tmp_path / "bad.cube"
    bad_cube.write_text("LUT_3D_SIZE 2\n0 0 0\n1 0 x\n")
    _error(capsys, 1, "line 3", "--source", source, "--out", out, "--lut", bad_cube)
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(tmp_path / "empty.png")
    _error(capsys, 1, "--mask must be non-empty", *base, "--mask", tmp_path / "empty.png")
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "small.png")
    _error(capsys, 1, "--mask: ", *base, "--mask", tmp_path / "small.png")
    _error(capsys, 1, "--target-mask: ", *base, "--target-mask", tmp_path / "small.png")
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
    # A folder with one unreadable frame: nothing is written for any frame.
    frames = tmp_path / "frames"
    frames.mkdir()
    _image(frames / "a.png", (20, 20), (10, 100, 10))
    (frames / "b.png").write_bytes(b"garbage")
    _error(capsys, 1, "b.png", "--source", frames, "--target", target, "--out", tmp_path / "fo", *FAST)
    assert not (tmp_path / "fo").exists() or not list((tmp_path / "fo").iterdir())


def _bad_checkpoints(tmp_path, run_dir):  # noqa: F811
    full = (run_dir / "checkpoint.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(full[: len(full) // 2])
    torch.save({"weights": torch.zeros(3)}, tmp_path / "unrelated.pt")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("readme.txt", "hello")
    (tmp_path / "archive.zip").write_bytes(buffer.getvalue())
    _image(tmp_path / "picture.png", (20, 20), (1, 2, 3))
    return ["truncated.pt", "unrelated.pt", "archive.zip", "picture.png"]


def test_bad_checkpoints_get_one_clean_line(pair, tmp_path, capsys, run_dir):  # noqa: F811
    source, target = pair
    for name in _bad_checkpoints(tmp_path, run_dir):
        _error(
            capsys,
            1,
            name,
            "--checkpoint",
            tmp_path / name,
            "--source",
            source,
            "--target",
            target,
            "--out",
            tmp_path / "o.png",
        )
    from huenet.colortransfer.training.checkpoint import load_generator

    for name in _bad_checkpoints(tmp_path, run_dir):
        with pytest.raises(ValueError, match=name):
            load_generator(tmp_path / name, "cpu")
    _error(
        capsys,
        1,
        "no checkpoint at",
        "--checkpoint",
        tmp_path / "nothing",
        "--source",
        source,
        "--target",
        target,
        "--out",
        tmp_path / "o.png",
    )


def test_grey_target_warns_and_invents_no_colour(tmp_path, capsys):
    source = _image(tmp_path / "s.png", (40, 30), (40, 170, 40))
    grey = np.asarray(Image.open(_image(tmp_path / "g0.png", (30, 30), (120, 120, 120)))).mean(2).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    with pytest.warns(UserWarning, match="no hue"):
        _run("--source", source, "--target", tmp_path / "grey.png", "--out", tmp_path / "o.png", *FAST)
    from huenet.color import rgb_to_hsv

    src, out = rgb_to_hsv(read_image(source).rgb), rgb_to_hsv(read_image(tmp_path / "o.png").rgb)
    assert float(out[1].mean()) <= float(src[1].mean()) + 1e-3
