"""Evaluation metrics and the classical baselines (huenet.metrics, huenet.baselines)."""
import pytest
import torch

from huenet.colortransfer.baselines import BASELINES, histogram_matching, lab_to_rgb, reinhard, rgb_to_lab
from huenet.color import hsv_to_rgb
from huenet.colortransfer.metrics import hue_emd, hue_histogram, hue_intersection, transfer_metrics, v_mi_distance, v_ssim


def _hsv_image(hue, sat=0.8, size=(16, 16), seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.full((1, 1, *size), float(hue))
    s = torch.full((1, 1, *size), float(sat))
    v = torch.rand(1, 1, *size, generator=g) * 0.6 + 0.3
    return hsv_to_rgb(torch.cat([h, s, v], 1))


def test_metrics_of_an_image_with_itself():
    x = torch.rand(3, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    m = transfer_metrics(x, x, x)
    assert set(m) == {"hue_emd", "hue_intersection", "v_mi_distance", "v_ssim"}
    assert all(v.shape == (3,) for v in m.values())
    torch.testing.assert_close(m["hue_emd"], torch.zeros(3))
    torch.testing.assert_close(m["hue_intersection"], torch.ones(3))
    torch.testing.assert_close(m["v_mi_distance"], torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(m["v_ssim"], torch.ones(3))


def test_hue_emd_is_cyclic_and_ignores_grey():
    red, magenta, green = _hsv_image(0.02), _hsv_image(0.98), _hsv_image(1 / 3)
    # 0.02 and 0.98 are 0.04 turns apart across 0, not 0.96.
    assert hue_emd(red, magenta).item() == pytest.approx(0.04, abs=2 / 256)
    assert hue_emd(red, green).item() == pytest.approx(1 / 3 - 0.02, abs=2 / 256)
    assert hue_intersection(red, green).item() == pytest.approx(0, abs=1e-4)
    # Grey pixels (saturation 0) have no say in the hue histogram.
    mixed = torch.cat([red, _hsv_image(0.6, sat=0.0)], -1)
    assert hue_emd(mixed, red).item() == pytest.approx(0, abs=1e-4)
    hist = hue_histogram(red)
    assert hist.shape == (1, 256) and hist.sum().item() == pytest.approx(1)


def test_structure_metrics_see_structure_not_colour():
    source = _hsv_image(0.1, seed=1)
    recoloured = _hsv_image(0.6, seed=1)  # same V, other hue
    noise = _hsv_image(0.1, seed=2)       # same hue, unrelated V
    assert v_ssim(recoloured, source).item() == pytest.approx(1, abs=1e-4)
    assert v_mi_distance(recoloured, source).item() == pytest.approx(0, abs=1e-6)
    assert v_ssim(noise, source).item() < 0.5
    assert v_mi_distance(noise, source).item() > 0.5
    with pytest.raises(ValueError, match="`output`"):
        v_ssim(torch.rand(1, 1, 8, 8), source)
    with pytest.raises(TypeError, match="`image`"):
        hue_histogram(torch.zeros(1, 3, 4, 4, dtype=torch.int64))


def test_lab_round_trip_and_reference_values():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-6, rtol=0)
    white = rgb_to_lab(torch.ones(1, 3, 1, 1, dtype=torch.float64)).flatten()
    torch.testing.assert_close(white, torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64), atol=1e-3, rtol=0)
    red = rgb_to_lab(torch.tensor([1.0, 0, 0], dtype=torch.float64).view(1, 3, 1, 1)).flatten()
    torch.testing.assert_close(red, torch.tensor([53.24, 80.09, 67.20], dtype=torch.float64), atol=0.05, rtol=0)


def test_reinhard_matches_lab_statistics():
    g = torch.Generator().manual_seed(0)
    source = torch.rand(2, 3, 32, 32, generator=g) * 0.5 + 0.25
    target = torch.rand(2, 3, 20, 24, generator=g) * 0.3 + 0.35
    out_lab, tgt_lab = rgb_to_lab(reinhard(source, target)), rgb_to_lab(target)
    # Mild colours stay in gamut, so the match is exact up to the 8-bit-free float maths.
    torch.testing.assert_close(out_lab.mean((2, 3)), tgt_lab.mean((2, 3)), atol=0.05, rtol=0)
    torch.testing.assert_close(out_lab.std((2, 3)), tgt_lab.std((2, 3)), atol=0.05, rtol=0)


def test_histogram_matching_takes_the_target_values_and_keeps_the_order():
    g = torch.Generator().manual_seed(0)
    source, target = torch.rand(2, 1, 3, 16, 16, generator=g).unbind(0)
    out = histogram_matching(source, target)
    # Same pixel count: the output is a permutation of the target's values, in the source's rank order.
    torch.testing.assert_close(out.flatten(2).sort(-1).values, target.flatten(2).sort(-1).values)
    assert torch.equal(out.flatten(2).argsort(-1), source.flatten(2).argsort(-1))
    # Equal source values get equal outputs.
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert histogram_matching(flat, target[..., :8, :8]).flatten(2).std(-1).max() == 0


def test_baselines_shapes_and_range():
    g = torch.Generator().manual_seed(0)
    source, target = torch.rand(2, 3, 16, 24, generator=g), torch.rand(2, 3, 30, 10, generator=g)
    for name, method in BASELINES.items():
        out = method(source, target)
        assert out.shape == source.shape, name
        assert out.min() >= 0 and out.max() <= 1, name
    assert BASELINES["identity"](source, target) is source
