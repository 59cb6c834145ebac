"""The paired tasks: input derivation, paired/AB data, the conditional D, per-task losses, PSNR and SSIM."""

import numpy as np
import pytest
import torch
from PIL import Image

from huenet.color import rgb_to_lab
from huenet.colortransfer.data.paired import ABFolder, PairedImages, make_paired_image_set
from huenet.colortransfer.data.synthetic import SyntheticImages
from huenet.colortransfer.data.tasks import check_task, edge_map, grey, is_grey, looks_like_edge_map, task_defaults
from huenet.colortransfer.methods.registry import method
from huenet.colortransfer.methods.scoring import evaluate_paired
from huenet.colortransfer.metrics import PAIRED_METRICS, psnr, rgb_ssim
from huenet.colortransfer.training.models import HueNetGenerator, PatchDiscriminator
from huenet.losses import HueNetLoss

try:
    import kornia  # noqa: F401

    HAVE_KORNIA = True
except ImportError:
    HAVE_KORNIA = False
needs_kornia = pytest.mark.skipif(not HAVE_KORNIA, reason="edge maps from photos need kornia (the [edges] extra)")


# ------------------------------------------------------------------------------------------- derivation
def test_grey_is_the_bt601_luma_in_three_channels():
    photo = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.4, 0.6]]).T.reshape(1, 3, 2, 2)
    want = torch.tensor([0.299, 0.587, 0.114, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6]).reshape(2, 2)
    out = grey(photo)
    assert out.shape == photo.shape
    for c in range(3):
        torch.testing.assert_close(out[0, c], want, atol=1e-6, rtol=0)


@needs_kornia
def test_edge_map_of_a_square_is_black_lines_on_white():
    photo = torch.zeros(1, 3, 48, 48)
    photo[:, :, 12:36, 12:36] = 1.0  # a white square on black
    edges = edge_map(photo)
    assert edges.shape == photo.shape
    assert set(edges.unique().tolist()) <= {0.0, 1.0}
    black = edges[0, 0] == 0
    assert torch.equal(edges[0, 0], edges[0, 2])
    # Edges lie on the square's outline (within the blur's reach), nowhere else, and surround it.
    ys, xs = torch.nonzero(black, as_tuple=True)
    ys, xs = ys.float(), xs.float()
    dist_to_outline = torch.stack([(ys - 11.5).abs(), (ys - 35.5).abs(), (xs - 11.5).abs(), (xs - 35.5).abs()]).amin(0)
    assert len(ys) > 4 * 20
    assert bool((dist_to_outline <= 2).all())
    assert black[24, 8:16].any() and black[24, 32:40].any() and black[8:16, 24].any() and black[32:40, 24].any()
    # A flat photo has no edges: all white.
    assert bool((edge_map(torch.full((1, 3, 32, 32), 0.4)) == 1).all())


def test_synthetic_edges_are_where_the_colours_jump():
    images = SyntheticImages(6, 64, seed=1)
    for i in range(6):
        photo = images.picture(i).rgb.permute(1, 2, 0).double().numpy()
        edge_image = images.edges(i)
        assert edge_image.shape == (1, 64, 64) and set(edge_image.unique().tolist()) <= {0.0, 1.0}
        edges = edge_image[0].numpy() == 0
        # A jump of a quarter of the range between horizontal neighbours is a shape boundary (shading and
        # noise move far less): such a pixel, or its right neighbour, must be marked.
        jump = np.abs(np.diff(photo, axis=1)).max(2) > 0.25
        near = edges[:, :-1] | edges[:, 1:]
        assert near[jump].mean() > 0.97
        # And most marked pixels border a visible change (shapes of equal colour are the exception).
        assert 0.0 < edges.mean() < 0.5


# --------------------------------------------------------------------------------------------- data
def _ab_file(path, a, b):
    Image.fromarray(np.concatenate([a, b], 1)).save(path)


def test_paired_crops_line_up(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "ab"
    folder.mkdir()
    for k in range(4):
        b = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        _ab_file(folder / f"{k}.png", 255 - b, b)  # A is B's negative, so alignment is checkable
    images = make_paired_image_set(str(folder), 32, 0)
    assert isinstance(images, ABFolder)
    for train in (True, False):
        pairs = PairedImages(images, [0, 1, 2, 3], 32, "edges2photo", train=train)
        for epoch in (0, 1):
            pairs.set_epoch(epoch)
            for i in range(4):
                inp, photo = pairs[i][:2]
                assert inp.shape == photo.shape == (3, 32, 32)
                # Bicubic resampling commutes with x -> 1 - x up to rounding.
                torch.testing.assert_close(inp, 1 - photo, atol=1.5 / 255, rtol=0)


@needs_kornia
def test_colorize_and_edges_from_photos(tmp_path):
    for k in range(3):
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (50, 60, 3), dtype=np.uint8)).save(
            tmp_path / f"{k}.png"
        )
    images = make_paired_image_set(str(tmp_path), 32, 0)
    inp, photo = PairedImages(images, [0, 1, 2], 32, "colorize")[1][:2]
    torch.testing.assert_close(inp, grey(photo[None])[0])
    inp, photo = PairedImages(images, [0, 1, 2], 32, "edges2photo")[1][:2]
    torch.testing.assert_close(inp, edge_map(photo[None])[0])


def test_synthetic_pairs_use_the_exact_edges():
    images = SyntheticImages(4, 36, seed=0)
    inp, photo = PairedImages(images, [0, 1], 32, "edges2photo", train=False)[0][:2]
    # Validation takes the centre crop at the training scale, so the edge map is cut, never resampled.
    torch.testing.assert_close(inp, images.edges(0).expand(3, -1, -1)[:, 2:34, 2:34])
    torch.testing.assert_close(photo, images.picture(0).rgb[:, 2:34, 2:34])


def test_ab_folder_errors(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for k in range(3):
        _ab_file(folder / f"{k}.png", np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8))
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / "odd.png")
    with pytest.raises(ValueError, match="odd.png' is 30x20.*--data-format photos"):
        make_paired_image_set(str(folder), 32, 0)
    with pytest.raises(ValueError, match="odd.png.*twice as wide as high"):
        make_paired_image_set(str(folder), 32, 0, data_format="ab")
    assert not isinstance(make_paired_image_set(str(folder), 32, 0, data_format="photos"), ABFolder)
    with pytest.raises(ValueError, match="--data-format"):
        make_paired_image_set(str(folder), 32, 0, data_format="pairs")


def test_task_names_and_defaults():
    with pytest.raises(ValueError, match="--task must be one of transfer, colorize, edges2photo; got 'colourize'"):
        check_task("colourize")
    assert task_defaults("colorize")["lambda_hist"] == 20.0
    assert task_defaults("edges2photo")["lambda_hist"] == 100.0
    assert task_defaults("transfer") == dict(
        colorspace="hsv", hist_channels=None, mi_channels=None, lambda_hist=100.0, lambda_mi=4.0, epochs=6
    )
    # The paired tasks' default runs are half as long (a paired step costs more; docs/training.md).
    assert task_defaults("colorize")["epochs"] == task_defaults("edges2photo")["epochs"] == 3


def test_input_kind_detection():
    photo = torch.rand(3, 32, 32)
    lines = torch.ones(3, 32, 32)
    lines[:, 10, :] = 0
    assert looks_like_edge_map(lines) and not looks_like_edge_map(photo) and not looks_like_edge_map(grey(photo))
    assert is_grey(grey(photo)) and not is_grey(photo)


# -------------------------------------------------------------------------------------- model and loss
def test_conditional_discriminator_takes_input_and_image():
    d = PatchDiscriminator(ndf=4, conditional=True)
    assert d.net[0].in_channels == 6
    image, condition = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    assert d(image, condition).shape == (2, 1, 6, 6)
    # The verdict depends on the condition: a different input changes it.
    assert not torch.allclose(d(image, condition), d(image, torch.rand(2, 3, 64, 64)))
    with pytest.raises(ValueError, match="condition"):
        d(image)
    with pytest.raises(ValueError, match="condition"):
        PatchDiscriminator(ndf=4)(image, condition)


def _task_loss(task):
    d = task_defaults(task)
    return HueNetLoss(
        d["colorspace"], bins=32, hist_channels=d["hist_channels"], mi_channels=d["mi_channels"], reduction="none"
    )


def test_colorize_loss_compares_chroma_to_the_reference_and_luma_to_the_input():
    g = torch.Generator().manual_seed(0)
    loss = _task_loss("colorize")
    output = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) * 0.6 + 0.2
    reference = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) * 0.6 + 0.2
    inp = grey(output)
    base = loss.terms(output, inp, reference)
    # Adding a constant to R, G and B moves Y only (U and V rows sum to 0): the EMD term must not change.
    brighter = loss.terms(output + 0.1, inp, reference)
    torch.testing.assert_close(brighter["hist"], base["hist"])
    # A colouring whose luma equals the input's scores as its own grey on the MI term.
    torch.testing.assert_close(base["mi"], loss.terms(inp, inp, reference)["mi"])
    # The reference's chroma is what the EMD compares: the output's own colours give 0.
    assert bool((loss.terms(output, inp, output)["hist"] == 0).all()) and bool((base["hist"] > 0).all())


def test_edges_loss_also_matches_the_reference_brightness():
    g = torch.Generator().manual_seed(1)
    loss = _task_loss("edges2photo")
    output = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) * 0.6 + 0.2
    edges = torch.ones_like(output)
    edges[..., ::4, :] = 0
    base = loss.terms(output, edges, output)
    assert bool((base["hist"] == 0).all())
    assert bool((loss.terms(output + 0.1, edges, output)["hist"] > 0).all())


# -------------------------------------------------------------------------------------------- metrics
def test_psnr_by_hand():
    a = torch.zeros(2, 3, 4, 4)
    b = a.clone()
    b[0, 0, 0, 0] = 0.5  # MSE = 0.25 / 48
    b[1] = 0.1  # MSE = 0.01
    torch.testing.assert_close(psnr(b, a), torch.tensor([10 * np.log10(48 / 0.25), 20.0], dtype=torch.float32))
    assert psnr(a, a).isinf().all()


def _ssim_reference(x, y):
    """SSIM of two (H, W) float64 arrays from its definition: Gaussian-weighted statistics of each valid
    11x11 window (sigma 1.5, weights summing to 1), C1 = 0.01^2, C2 = 0.03^2, averaged over windows."""
    k = np.arange(11) - 5.0
    w = np.exp(-(k**2) / (2 * 1.5**2))
    w = np.outer(w, w) / np.outer(w, w).sum()
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + 1e-4) * (2 * cov + 9e-4) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4)))
    return np.mean(values)


def test_rgb_ssim_against_a_float64_reference():
    g = torch.Generator().manual_seed(2)
    truth = torch.rand(2, 3, 20, 18, generator=g)
    output = (truth + 0.2 * torch.rand(2, 3, 20, 18, generator=g)).clamp(0, 1)
    want = [
        np.mean([_ssim_reference(output[b, c].double().numpy(), truth[b, c].double().numpy()) for c in range(3)])
        for b in range(2)
    ]
    np.testing.assert_allclose(rgb_ssim(output, truth).numpy(), want, atol=2e-5)
    torch.testing.assert_close(rgb_ssim(truth, truth), torch.ones(2))
    with pytest.raises(ValueError, match="truth"):
        rgb_ssim(output, truth[..., :10])


def test_fit_method_gives_each_grey_level_one_colour_from_the_exemplar():
    # A grey ramp and a saturated orange exemplar: the fitted LUT colours the ramp (its a*b* move towards the
    # exemplar's), and, being a function of the colour alone, equal grey levels get equal colours.
    ramp = torch.linspace(0.1, 0.9, 16).repeat(16, 1)
    source = torch.cat([ramp, ramp.flip(1)], 0).expand(1, 3, 32, 16).contiguous()
    target = torch.tensor([0.9, 0.5, 0.1]).view(1, 3, 1, 1).expand(1, 3, 24, 24) * torch.linspace(0.6, 1, 24)
    out = method("fit")(source, target)
    assert out.shape == source.shape and out.dtype == source.dtype
    assert torch.equal(out[..., :16, :], out[..., 16:, :].flip(-1))
    ab_out, ab_target = rgb_to_lab(out)[:, 1:].mean((2, 3)), rgb_to_lab(target)[:, 1:].mean((2, 3))
    assert ab_out.norm() > 0.25 * ab_target.norm()
    assert torch.cosine_similarity(ab_out, ab_target).item() > 0.9


def test_evaluate_paired_scores_the_fit_for_colorize_only():
    images = SyntheticImages(6, 40, seed=0)
    generator = HueNetGenerator(32, ngf=4, cond_bins=8, colorspace="yuv").eval()
    pairs = PairedImages(images, [0, 1], 32, "colorize", train=False)
    result = evaluate_paired(generator, pairs)
    assert list(result) == ["huenet", "identity", "reinhard", "fit"]
    for scores in result.values():
        assert set(scores) == set(PAIRED_METRICS)
        assert all(np.isfinite(v["mean"]) and np.isfinite(v["std"]) for v in scores.values())
    # The end-of-run validation of training leaves the slow fit out.
    assert "fit" not in evaluate_paired(generator, pairs, slow=False)
    edges = evaluate_paired(generator, PairedImages(images, [0, 1], 32, "edges2photo", train=False))
    assert list(edges) == ["huenet", "identity"]


def test_keep_luma_gives_the_output_the_input_luma():
    # Where no channel is clipped, the output's BT.601 luma (computed here from the formula) is the grey input's.
    torch.manual_seed(0)
    generator = HueNetGenerator(32, ngf=4, cond_bins=8, colorspace="yuv", keep_luma=True).eval()
    with torch.no_grad():
        generator.head[-1].bias.add_(torch.randn(12) * 0.3)  # a non-identity colour transform
        inputs = grey(torch.rand(2, 3, 32, 32) * 0.6 + 0.2)
        out = generator(inputs, generator.target_statistics(torch.rand(2, 3, 32, 32)))
    luma = 0.299 * out[:, 0] + 0.587 * out[:, 1] + 0.114 * out[:, 2]
    inside = ((out > 0) & (out < 1)).all(1)
    assert inside.float().mean() > 0.5 and not torch.equal(out[:, 0], out[:, 1])
    assert (luma - inputs[:, 0])[inside].abs().max() < 1e-5
    assert generator.config["keep_luma"] and not HueNetGenerator(32, ngf=4, cond_bins=8).keep_luma
