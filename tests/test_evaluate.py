"""Evaluation metrics and the classical baselines (huenet.colortransfer.metrics, huenet.colortransfer.baselines)."""

import numpy as np
import pytest
import torch

from huenet.color import hsv_to_rgb, lab_to_rgb, rgb_to_lab
from huenet.colortransfer.baselines import histogram_matching, mkl, reinhard
from huenet.colortransfer.methods.registry import method
from huenet.colortransfer.methods.scoring import BASELINES
from huenet.colortransfer.metrics import (
    ab_swd,
    hue_emd,
    hue_histogram,
    hue_intersection,
    lightness_ssim,
    transfer_metrics,
    v_mi_distance,
    v_ssim,
)


def _hsv_image(hue, sat=0.8, size=(16, 16), seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.full((1, 1, *size), float(hue))
    s = torch.full((1, 1, *size), float(sat))
    v = torch.rand(1, 1, *size, generator=g) * 0.6 + 0.3
    return hsv_to_rgb(torch.cat([h, s, v], 1))


def test_metrics_of_an_image_with_itself():
    x = torch.rand(3, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    m = transfer_metrics(x, x, x)
    assert set(m) == {"hue_emd", "hue_intersection", "v_mi_distance", "v_ssim", "ab_swd", "lightness_ssim"}
    assert all(v.shape == (3,) for v in m.values())
    torch.testing.assert_close(m["hue_emd"], torch.zeros(3))
    torch.testing.assert_close(m["hue_intersection"], torch.ones(3))
    torch.testing.assert_close(m["v_mi_distance"], torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(m["v_ssim"], torch.ones(3))
    torch.testing.assert_close(m["lightness_ssim"], torch.ones(3))
    torch.testing.assert_close(m["ab_swd"], torch.zeros(3))


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
    noise = _hsv_image(0.1, seed=2)  # same hue, unrelated V
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
    for name in BASELINES:
        out = method(name)(source, target)
        assert out.shape == source.shape, name
        assert out.min() >= 0 and out.max() <= 1, name
    assert method("identity")(source, target) is source


def _lab_reference(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) sRGB -> CIE Lab with the textbook D65 constants (Xn = 0.95047, Zn = 1.08883), float64."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = np.einsum("ij,jhw->ihw", m, lin) / np.array([0.95047, 1.0, 1.08883])[:, None, None]
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _w1_by_cdf(x: np.ndarray, y: np.ndarray) -> float:
    """W1 of two 1-D samples as the integral of |F(t) - G(t)| dt over the merged support."""
    grid = np.sort(np.concatenate([x, y]))
    f = np.searchsorted(np.sort(x), grid[:-1], side="right") / len(x)
    g = np.searchsorted(np.sort(y), grid[:-1], side="right") / len(y)
    return float(np.sum(np.abs(f - g) * np.diff(grid)))


def test_ab_swd_matches_a_float64_cdf_reference():
    g = torch.Generator().manual_seed(3)
    output, target = torch.rand(1, 3, 9, 7, generator=g), torch.rand(1, 3, 5, 11, generator=g) * 0.6
    ab_out = _lab_reference(output[0].double().numpy())[1:].reshape(2, -1)
    ab_tgt = _lab_reference(target[0].double().numpy())[1:].reshape(2, -1)
    k = 16
    expected = np.mean(
        [
            _w1_by_cdf(np.array([np.cos(t), np.sin(t)]) @ ab_out, np.array([np.cos(t), np.sin(t)]) @ ab_tgt)
            for t in np.pi * (np.arange(k) + 0.5) / k
        ]
    )
    assert ab_swd(output, target, directions=k).item() == pytest.approx(expected, rel=2e-3)
    # A pure shift of every colour by d along a* gives d * mean |cos| over the half circle = 2d/pi.
    shifted = _hsv_image(0.1, sat=0.3, seed=4)
    lab = rgb_to_lab(shifted.double())
    moved = lab_to_rgb(lab + torch.tensor([0.0, 5.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1))
    assert ab_swd(moved, shifted.double(), directions=256).item() == pytest.approx(2 * 5 / np.pi, rel=2e-2)


def _ssim_reference(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two (H, W) images, range 1: 11x11 Gaussian (sigma 1.5) windows, valid positions, float64."""
    r = np.arange(11) - 5.0
    w = np.exp(-(r**2) / 4.5)
    w = np.outer(w, w) / np.outer(w, w).sum()
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb, cov = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum(), (w * (a - ma) * (b - mb)).sum()
            values.append((2 * ma * mb + 1e-4) * (2 * cov + 9e-4) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)))
    return float(np.mean(values))


def test_lightness_ssim_matches_a_float64_reference():
    g = torch.Generator().manual_seed(5)
    source = torch.rand(1, 3, 16, 19, generator=g)
    output = (source * 0.7 + 0.3 * torch.rand(1, 3, 16, 19, generator=g)).flip(1)  # other colours, similar L
    expected = _ssim_reference(
        _lab_reference(output[0].double().numpy())[0] / 100, _lab_reference(source[0].double().numpy())[0] / 100
    )
    assert lightness_ssim(output, source).item() == pytest.approx(expected, abs=2e-4)
    # A hue change at constant lightness leaves it at 1 where V-SSIM may not be.
    mild = source.double() * 0.1 + 0.45  # low chroma: the rotated colours stay in gamut (no clipping)
    lab = rgb_to_lab(mild)
    rotated = lab_to_rgb(torch.stack([lab[:, 0], lab[:, 2], -lab[:, 1]], 1))
    torch.testing.assert_close(rgb_to_lab(rotated)[:, 0], lab[:, 0])
    assert lightness_ssim(rotated, mild).item() == pytest.approx(1, abs=1e-5)


def test_mkl_is_the_monge_kantorovitch_linear_map():
    g = torch.Generator().manual_seed(6)
    # Mild, correlated colours, so that the mapped colours stay inside [0, 1] and no clipping interferes.
    mix = torch.tensor([[1.0, 0.3, 0.1], [0.2, 1.0, 0.4], [0.1, 0.2, 1.0]], dtype=torch.float64)
    source = (
        torch.einsum("ij,bjhw->bihw", mix, torch.rand(2, 3, 20, 20, generator=g, dtype=torch.float64)) / 1.6 * 0.5 + 0.2
    )
    target = torch.rand(2, 3, 24, 16, generator=g, dtype=torch.float64) * 0.4 + 0.3
    out = mkl(source, target)
    assert 0 < out.min() and out.max() < 1
    for s, t, o in zip(source.flatten(2), target.flatten(2), out.flatten(2)):
        s, t, o = s.numpy(), t.numpy(), o.numpy()
        # The output has the target's mean and covariance ...
        np.testing.assert_allclose(o.mean(1), t.mean(1), atol=1e-10)
        np.testing.assert_allclose(np.cov(o, bias=True), np.cov(t, bias=True), atol=1e-10)
        # ... through a symmetric positive-definite linear map: the unique optimal (Monge-Kantorovitch) one.
        transform = np.linalg.lstsq((s - s.mean(1, keepdims=True)).T, (o - o.mean(1, keepdims=True)).T, rcond=None)[0].T
        np.testing.assert_allclose(transform, transform.T, atol=1e-9)
        assert np.linalg.eigvalsh(transform).min() > 0
    # A flat source (singular covariance) still gives a finite output in range.
    flat = mkl(torch.full((1, 3, 4, 4), 0.5), target[:1].float())
    assert torch.isfinite(flat).all() and flat.min() >= 0 and flat.max() <= 1
