"""huenet.recolor: LUT application against a float64 trilinear reference, .cube files, fitting, masks."""

import math
import shutil
import subprocess
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from huenet import losses
from huenet.recolor import ColorLUT, apply_lut, fit

FAST = dict(steps=8, fit_size=48)


def _trilinear_reference(table: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Trilinear interpolation written from the formula: table (3, N, N, N) indexed [c, b, g, r], rgb (3, P)."""
    n = table.shape[-1]
    out = np.zeros_like(rgb, dtype=np.float64)
    for p in range(rgb.shape[1]):
        u = np.clip(rgb[:, p], 0, 1) * (n - 1)
        base = np.minimum(np.floor(u).astype(int), n - 2)
        frac = u - base
        for dr in (0, 1):
            for dg in (0, 1):
                for db in (0, 1):
                    w = (
                        (frac[0] if dr else 1 - frac[0])
                        * (frac[1] if dg else 1 - frac[1])
                        * (frac[2] if db else 1 - frac[2])
                    )
                    out[:, p] += w * table[:, base[2] + db, base[1] + dg, base[0] + dr]
    return out


def _random_table(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, n, n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("n", [2, 5, 17])
def test_apply_matches_the_trilinear_formula(n):
    table = _random_table(n)
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 5, 7, generator=g, dtype=torch.float64)
    image[0, :, 0, 0] = torch.tensor([0.0, 1.0, 0.5])  # corners and faces of the cube
    image[0, :, 0, 1] = 1.0
    expected = np.stack(
        [_trilinear_reference(table.numpy(), im.reshape(3, -1).numpy()).reshape(3, 5, 7) for im in image]
    )
    np.testing.assert_allclose(apply_lut(table, image).numpy(), expected, rtol=0, atol=1e-12)


def test_apply_in_chunks_equals_one_pass_and_keeps_shape_dtype():
    table = _random_table(9).float()
    image = torch.rand(3, 31, 17, generator=torch.Generator().manual_seed(2))
    whole = apply_lut(table, image)
    torch.testing.assert_close(apply_lut(table, image, chunk=100), whole, rtol=0, atol=0)
    assert whole.shape == image.shape and whole.dtype == torch.float32
    half = apply_lut(table, image.half())
    assert half.dtype == torch.float16 and (half.float() - whole).abs().max() < 2e-3


def test_apply_gradcheck_through_table_and_image():
    table = _random_table(4).requires_grad_()
    # Points away from the cell faces, where trilinear interpolation is smooth in the image as well.
    image = (
        torch.rand(1, 3, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 0.2
        + torch.tensor([0.1, 0.4, 0.7], dtype=torch.float64).view(1, 3, 1, 1)
    ).requires_grad_()
    assert torch.autograd.gradcheck(lambda t, x: apply_lut(t, x), (table, image))


def test_identity_is_exact():
    image = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for n in (2, 17, 33):
        table = ColorLUT.identity(n).table.double()
        torch.testing.assert_close(apply_lut(table, image), image, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="`size`"):
        ColorLUT.identity(1)


def test_cube_round_trip_to_the_printed_precision(tmp_path):
    lut = ColorLUT(_random_table(5).float(), title="round trip")
    path = tmp_path / "a.cube"
    lut.save_cube(path)
    lines = path.read_text().splitlines()
    assert lines[:4] == ['TITLE "round trip"', "LUT_3D_SIZE 5", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    assert len(lines) == 4 + 125
    # Row order: red fastest, then green, then blue.
    r, g, b = (float(v) for v in lines[4 + 1].split())
    assert (r, g, b) == pytest.approx(lut.table[:, 0, 0, 1].tolist(), abs=5e-7)
    r, g, b = (float(v) for v in lines[4 + 25].split())
    assert (r, g, b) == pytest.approx(lut.table[:, 1, 0, 0].tolist(), abs=5e-7)
    loaded = ColorLUT.load_cube(path)
    assert loaded.size == 5 and loaded.title == "round trip"
    assert (loaded.table - lut.table).abs().max() <= 5e-7 + 1e-7  # half a unit of the 6th decimal
    # Saving what was loaded reproduces the file exactly.
    loaded.save_cube(tmp_path / "b.cube")
    assert (tmp_path / "b.cube").read_text() == path.read_text()


def test_cube_identity_file_from_another_writer(tmp_path):
    # Comments, blank lines and Resolve's 8-decimal rows are accepted.
    rows = [f"{r / 2:.8f} {g / 2:.8f} {b / 2:.8f}" for b in range(3) for g in range(3) for r in range(3)]
    (tmp_path / "id.cube").write_text("# made elsewhere\n\nLUT_3D_SIZE 3\n" + "\n".join(rows) + "\n")
    image = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(ColorLUT.load_cube(tmp_path / "id.cube")(image), image, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("LUT_3D_SIZE 2\n0 0 0\n1 0 0\n0 1 0\n1 1 0\n0 0 1\n1 0 1\n0 1 1\n", 8, "ends after 7 rows"),
        ("LUT_3D_SIZE 2\n0 0 0\n1 0 zero\n", 3, "3 finite numbers"),
        ("LUT_3D_SIZE 2\n0 0 0\n1 0\n", 3, "3 finite numbers"),
        ('TITLE "x"\nLUT_3D_SIZE two\n', 2, "LUT_3D_SIZE must be an integer"),
        ("0 0 0\n", 1, "before LUT_3D_SIZE"),
        ("LUT_1D_SIZE 4\n", 1, "1D LUT"),
        ("LUT_3D_SIZE 2\nDOMAIN_MAX 2 2 2\n", 2, "only DOMAIN_MAX"),
        ("LUT_3D_SIZE 2\nFOO 1\n", 2, "unknown keyword"),
        ("# only a comment\n", 1, "no LUT_3D_SIZE"),
    ],
)
def test_corrupt_cube_names_the_line(tmp_path, text, line, message):
    path = tmp_path / "bad.cube"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"line {line}: .*{message}"):
        ColorLUT.load_cube(path)


def test_ffmpeg_reads_our_cube_and_maps_like_we_do(tmp_path):
    """Interoperability: ffmpeg's lut3d filter (an independent reader and interpolator) applies a saved .cube
    like ColorLUT does, to within one 8-bit level (ffmpeg truncates its float result to 8 bits)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not on PATH (apt-get install ffmpeg to run this interoperability check)")
    from PIL import Image

    n, g = 17, torch.Generator().manual_seed(5)
    smooth = F.interpolate(torch.rand(1, 3, 4, 4, 4, generator=g) - 0.5, size=(n, n, n), mode="trilinear")[0]
    lut = ColorLUT((ColorLUT.identity(n).table ** 1.3 + 0.3 * smooth).clamp(0, 1))
    lut.save_cube(tmp_path / "look.cube")
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    command = [ffmpeg, "-v", "error", "-y", "-i", str(tmp_path / "in.png"), "-pix_fmt", "rgb24"]
    command += ["-vf", f"lut3d=file={tmp_path / 'look.cube'}:interp=trilinear", str(tmp_path / "out.png")]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    theirs = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"), dtype=np.float64)
    ours = lut(torch.from_numpy(rgb).permute(2, 0, 1).double() / 255).permute(1, 2, 0).numpy() * 255
    assert np.abs(theirs - ours).max() <= 1 + 1e-3
    assert np.abs(ours - rgb).max() > 20  # the LUT really moves colours


def test_cube_that_is_not_text(tmp_path):
    path = tmp_path / "bin.cube"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValueError, match="not a text .cube"):
        ColorLUT.load_cube(path)


def _scene(hue_shift: float, size=(40, 48), seed=0) -> torch.Tensor:
    """A smooth picture: hue varying across, value down, saturation 0.7; hues offset by hue_shift."""
    from huenet.color import hsv_to_rgb

    h, w = size
    g = torch.Generator().manual_seed(seed)
    hue = (torch.linspace(0, 0.15, w)[None].expand(h, w) + hue_shift + 0.02 * torch.rand(h, w, generator=g)) % 1
    val = torch.linspace(0.35, 0.95, h)[:, None].expand(h, w)
    return hsv_to_rgb(torch.stack([hue, torch.full((h, w), 0.7), val]))


def _hue_emd(a, b):
    from huenet.colortransfer.metrics import hue_emd

    return float(hue_emd(a[None], b[None]))


def test_fit_lowers_the_loss_and_moves_hues_to_the_target():
    source, target = _scene(0.0), _scene(0.55, size=(30, 36), seed=1)
    lut = fit(source, target, steps=30, fit_size=48)
    out = lut(source)
    assert out.shape == source.shape and 0 <= out.min() and out.max() <= 1 + 1e-6
    assert _hue_emd(out, target) < 0.3 * _hue_emd(source, target)
    # Structure: the output's lightness is still ordered like the source's (value runs down the rows).
    rows = out.amax(0).mean(1)
    assert bool((rows[1:] - rows[:-1] > -0.02).all())


def test_fit_objective_decreases():
    from huenet.recolor.fit import DEFAULTS, _mkl_table, _Objective
    from huenet.recolor.pixels import pooled_pixels

    source, target = _scene(0.0), _scene(0.4, seed=2)
    src, src_w = pooled_pixels([source], [None], 48, "cpu")
    tgt, tgt_w = pooled_pixels([target], [None], 48, "cpu")
    start = _mkl_table(DEFAULTS["size"], src, src_w, tgt, tgt_w)
    objective = _Objective(src, src_w, tgt, tgt_w, start, dict(DEFAULTS), "auto")
    lut = fit(source, target, steps=20, fit_size=48)
    with torch.no_grad():
        # Both halves of the direction pool, so that each value is the same function of the table.
        before = objective(start.clamp(0, 1), torch.zeros_like(start)) + objective(start.clamp(0, 1), 0 * start)
        after = objective(lut.table, lut.table - start) + objective(lut.table, lut.table - start)
    assert after < 0.8 * before


def test_strength_zero_is_identity_and_blends_linearly():
    source, target = _scene(0.0), _scene(0.5, seed=3)
    torch.testing.assert_close(fit(source, target, strength=0.0, **FAST)(source), source, rtol=0, atol=1e-6)
    full = fit(source, target, **FAST)
    half = full.blend(0.5)
    torch.testing.assert_close(half(source), (full(source) + source) / 2, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="`strength`"):
        fit(source, target, strength=1.5, **FAST)


def test_steps_zero_is_the_mkl_map():
    # The fit starts from the Monge-Kantorovich linear map: with no steps, the output's mean is the target's and its
    # covariance too, up to the small ridge that bounds the map's gain (where nothing clips), checked from the
    # moments themselves, not the fit's own matrices.
    g = torch.Generator().manual_seed(0)
    source = 0.35 + 0.3 * torch.rand(3, 40, 48, generator=g)
    mix = torch.tensor([[1.0, 0.2, 0.0], [0.1, 0.6, 0.1], [0.0, 0.3, 0.5]])
    target = 0.4 + 0.25 * torch.einsum("ij,jhw->ihw", mix, torch.rand(3, 36, 30, generator=g) - 0.5)
    out = fit(source, target, steps=0, fit_size=64)(source)

    def moments(image):
        flat = image.reshape(3, -1).double()
        return flat.mean(1), torch.cov(flat)

    (mean_out, cov_out), (mean_tgt, cov_tgt) = moments(out), moments(target)
    torch.testing.assert_close(mean_out, mean_tgt, rtol=0, atol=2e-3)
    cov_src = moments(source)[1]
    assert float((cov_out - cov_tgt).norm()) < 0.15 * float((cov_src - cov_tgt).norm())


def test_mkl_matrix_closed_form():
    # A S A^T = T with A symmetric positive definite: the Monge-Kantorovich solution, checked in float64.
    from huenet.recolor import mkl_matrix

    g = torch.Generator().manual_seed(1)
    s, t = (m @ m.T + 0.1 * torch.eye(3, dtype=torch.float64) for m in torch.randn(2, 3, 3, generator=g).double())
    a = mkl_matrix(s, t)
    torch.testing.assert_close(a @ s @ a.T, t)
    torch.testing.assert_close(a, a.T)
    assert bool((torch.linalg.eigvalsh(a) > 0).all())


def test_masks_exclude_pixels():
    # The source's left half is red-ish, its right half blue-ish; the target is green. With a mask on the left
    # half only, the fit sees only red pixels: its LUT must equal the one fitted on the left half alone.
    left, right, target = _scene(0.0, size=(32, 24)), _scene(0.62, size=(32, 24), seed=4), _scene(0.33, seed=5)
    source = torch.cat([left, right], -1)
    mask = torch.cat([torch.ones(32, 24), torch.zeros(32, 24)], -1)
    masked = fit(source, target, mask=mask, **FAST)
    alone = fit(left, target, **FAST)
    torch.testing.assert_close(masked.table, alone.table, rtol=0, atol=1e-5)
    # The same for the target mask: the masked part of the target decides alone (fit_size 96: no downscaling,
    # which would blend the two halves at their border).
    red_target = torch.cat([target, _scene(0.0, seed=6)], -1)
    target_mask = torch.cat([torch.ones(40, 48), torch.zeros(40, 48)], -1)
    torch.testing.assert_close(
        fit(left, red_target, target_mask=target_mask, steps=8, fit_size=96).table,
        fit(left, target, steps=8, fit_size=96).table,
        rtol=0,
        atol=1e-5,
    )


def test_mask_errors():
    source, target = _scene(0.0), _scene(0.4)
    with pytest.raises(ValueError, match="`mask` must be non-empty"):
        fit(source, target, mask=torch.zeros(40, 48), **FAST)
    with pytest.raises(ValueError, match="`mask` must be of its image's size"):
        fit(source, target, mask=torch.ones(20, 48), **FAST)
    with pytest.raises(ValueError, match="`target_mask` must be finite and non-negative"):
        fit(source, target, target_mask=-torch.ones(40, 48), **FAST)
    with pytest.raises(TypeError, match="`source`"):
        fit(np.zeros((3, 4, 4)), target)
    with pytest.raises(ValueError, match="`size`"):
        fit(source, target, size=1)


def test_one_lut_for_several_frames_of_different_sizes():
    frames = [_scene(0.0, size=(30, 40)), _scene(0.05, size=(24, 24), seed=7)]
    target = _scene(0.6, seed=8)
    lut = fit(frames, target, **FAST)
    # Pooling: fitting the frames is fitting the pixels of both, whatever their split.
    batch = fit(torch.stack([frames[0][:, :24, :24], frames[1]]), target, **FAST)
    assert lut.size == batch.size
    for frame in frames:
        assert lut(frame).shape == frame.shape


def test_grey_target_leaves_hue_alone_with_a_warning():
    source = _scene(0.3)
    grey = source.mean(0, keepdim=True).expand(3, -1, -1).contiguous()
    with pytest.warns(UserWarning, match="no hue"):
        lut = fit(source, grey, steps=20, fit_size=48)
    out = lut(source)
    from huenet.color import rgb_to_hsv

    hsv_in, hsv_out = rgb_to_hsv(source), rgb_to_hsv(out)
    # No colour invented: no more saturation than the source had (up to the LUT's trilinear rounding), hue kept, and
    # no pull toward the red (hue 0) that a grey image's hue histogram would show if its hue counted.
    assert float(hsv_out[1].mean()) <= float(hsv_in[1].mean()) + 1e-3
    assert _hue_emd(out, source) < 0.01
    red = _scene(0.0)
    assert _hue_emd(out, red) >= _hue_emd(source, red) - 0.02


def test_grey_source_takes_the_targets_chroma():
    # A grey photo (colourisation): no hue to move, so the colours must come from the a*b* terms. The hue's
    # gradient is unbounded at zero chroma; with it, such fits threw colours far from the target's.
    from huenet.colortransfer.metrics import ab_swd

    target = _scene(0.55, seed=1)
    grey = _scene(0.1).mean(0, keepdim=True).expand(3, -1, -1).contiguous()
    out = fit(grey, target, fit_size=48)(grey)
    assert float(ab_swd(out[None], target[None])) < 0.5 * float(ab_swd(grey[None], target[None]))


def test_grey_target_gets_no_hue_weight_in_the_loss():
    loss = losses.HistogramEMDLoss(channels="hs", bins=32)
    coloured = _scene(0.3)[None]
    grey = coloured.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    with pytest.warns(UserWarning, match="no hue"):
        per = loss.per_channel(torch.cat([coloured, coloured]), torch.cat([grey, _scene(0.7)[None]]))
    assert per[0, 0] == 0 and per[1, 0] > 0.2  # hue column: zero only for the grey target
    assert per[0, 1] > 0  # its saturation term still counts
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss.per_channel(coloured, _scene(0.7)[None])  # no warning for a coloured target
    # HueNetLoss inherits it.
    with pytest.warns(UserWarning, match="no hue"):
        assert losses.HueNetLoss(bins=32).terms(coloured, coloured, grey)["hist"].item() == 0


def _finite_in_range(image):
    return bool(torch.isfinite(image).all()) and float(image.min()) >= 0 and float(image.max()) <= 1


def test_near_black_source_stays_dark_and_finite():
    # A night photo: dark noise has large HSV saturation but no chroma, so it must not be given the target's hues.
    g = torch.Generator().manual_seed(11)
    source = 0.04 * torch.rand(3, 40, 48, generator=g)
    target = _scene(0.3, seed=12)
    out = fit(source, target, **FAST)(source)
    assert _finite_in_range(out)
    from huenet.color import rgb_to_lab

    lab_out, lab_target = rgb_to_lab(out[None]), rgb_to_lab(target[None])
    # Its lightness follows the target's (matched distributions), and its order follows the source's.
    assert float(lab_out[:, 0].mean()) < float(lab_target[:, 0].max())
    assert float(torch.corrcoef(torch.stack([out.mean(0).flatten(), source.mean(0).flatten()]))[0, 1]) > 0.5


def test_single_colour_target_maps_every_pixel_near_it():
    colour = torch.tensor([0.8, 0.4, 0.1])
    target = colour[:, None, None].expand(3, 20, 24).contiguous()
    source = _scene(0.5)
    out = fit(source, target, **FAST)(source)
    assert _finite_in_range(out)
    from huenet.color import rgb_to_lab

    distance = (rgb_to_lab(out[None]) - rgb_to_lab(target[:, :1, :1][None])).norm(dim=1)
    assert float(distance.median()) < 10  # CIELAB units: the palette has one colour, the output nearly too


def test_noise_source_gives_a_smooth_finite_map():
    g = torch.Generator().manual_seed(13)
    source = torch.rand(3, 64, 64, generator=g)
    target = _scene(0.2, seed=14)
    lut = fit(source, target, **FAST)
    assert _finite_in_range(lut(source))
    # The table stays smooth: no neighbouring entries far apart (a steep map turns noise into speckle).
    jumps = max(float(torch.diff(lut.table, dim=d).abs().max()) for d in (1, 2, 3))
    assert jumps < 0.5


def test_one_pixel_images():
    source, target = torch.tensor([0.2, 0.5, 0.7])[:, None, None], torch.tensor([0.9, 0.3, 0.2])[:, None, None]
    out = fit(source, target, **FAST)(source)
    assert _finite_in_range(out)
    torch.testing.assert_close(out, target, rtol=0, atol=0.05)


def _lab(image):
    from huenet.color import rgb_to_lab

    return rgb_to_lab(image[None].double())[0]


def test_dark_noisy_background_is_not_given_a_hue():
    # A portrait on a black, noisy background recoloured towards a warm photo with dark browns: the background must
    # stay dark and take the target's dark colours, not a hue the target lacks (HSV saturation of dark noise is
    # large; a saturation-weighted hue term used to turn such backgrounds green).
    g = torch.Generator().manual_seed(21)
    source = 0.03 + 0.03 * torch.rand(3, 48, 48, generator=g)
    source[:, 12:36, 12:36] = _scene(0.05, size=(24, 24), seed=22)
    target = _scene(0.08, seed=23) * torch.tensor([1.0, 0.75, 0.5])[:, None, None]
    target[:, :20] *= 0.12  # the dark half of a coffee photo
    out = fit(source, target, **FAST)(source)
    background = torch.ones(48, 48, dtype=torch.bool)
    background[12:36, 12:36] = False
    lab_out, lab_target = _lab(out).flatten(1)[:, background.flatten()], _lab(target).flatten(1)
    assert float(lab_out[0].mean()) < 25
    assert float(torch.cdist(lab_out.T, lab_target.T).amin(1).max()) < 15


def test_smooth_gradient_gets_no_false_edges():
    # The artefact criterion of bench/recolor_metrics.py in small: no pixel's output gradient exceeds three times
    # the overall contrast gain times the source's, plus 5 CIELAB units (here on plain neighbour differences).
    h, w = 40, 64
    x = torch.linspace(0, 1, w)[None].expand(h, w)
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    source = torch.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 - 0.3 * x * y])
    target = _scene(0.6, seed=24)
    out = fit(source, target, **FAST)(source)
    g_out, g_src = (_lab(img).diff(dim=-1).norm(dim=0) for img in (out, source))
    gain = max(1.0, float((g_out / g_src).median()))
    assert bool((g_out <= 3 * gain * g_src + 5).all())


def test_output_colours_come_from_the_target():
    # Invented colours: output pixels further than Delta E 15 from every target pixel.
    source, target = _scene(0.0), _scene(0.45, seed=25)
    out = fit(source, target, **FAST)(source)
    distance = torch.cdist(_lab(out).flatten(1).T, _lab(target).flatten(1).T).amin(1)
    assert float((distance > 15).double().mean()) < 0.02


def test_fit_runs_on_one_thread_and_restores_the_setting():
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fit(_scene(0.0), _scene(0.5), callback=lambda step: seen.append(torch.get_num_threads()), **FAST)
        assert seen == [1] * FAST["steps"] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_fit_runs_on_cuda_when_available():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    source, target = _scene(0.0).cuda(), _scene(0.5).cuda()
    lut = fit(source, target, **FAST)
    assert lut.table.device.type == "cuda" and lut(source).device.type == "cuda"
    assert math.isfinite(float(lut(source).sum()))
