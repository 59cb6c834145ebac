"""The generator's global matching curves, the full-resolution LUT carry, and readable sample grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from huenet.colortransfer.methods.lut import measure_lut
from huenet.colortransfer.training.models import HueNetGenerator, apply_curves, matching_curves
from huenet.colortransfer.training.plots import MIN_TILE, sample_grid
from huenet.recolor import ColorLUT


def _peak(k: int, at: int, width: int = 1) -> torch.Tensor:
    h = torch.zeros(1, k)
    h[0, at : at + width] = 1.0 / width
    return h


@pytest.mark.parametrize("shift", [3, 10, 15])
def test_cyclic_curve_moves_a_peak_round_the_circle(shift):
    # A one-bin source peak and a one-bin target peak: the optimal circle map is a rotation by the gap,
    # also when the way round crosses hue 0 (bins 14 -> 1 at shift 3).
    k = 16
    src_bin = 14
    curves = matching_curves(_peak(k, src_bin), _peak(k, (src_bin + shift) % k), cyclic=True)
    hue = torch.tensor([[(src_bin + 0.5) / k]])
    assert apply_curves(hue, curves, cyclic=True).item() == pytest.approx(((src_bin + shift) % k + 0.5) / k)


def test_same_histograms_give_the_identity():
    hist = torch.rand(3, 32) + 0.05
    hist = hist / hist.sum(1, keepdim=True)
    values = 0.02 + 0.96 * torch.rand(3, 100)  # inside the outer half-bins, where the curve is held flat
    for cyclic in (False, True):
        out = apply_curves(values, matching_curves(hist, hist, cyclic=cyclic), cyclic=cyclic)
        assert torch.allclose(out, values, atol=1e-5)


def test_slope_is_capped_where_the_source_has_pixels():
    # A 2-bin source peak matched to a 16-bin-wide target: unbounded matching has slope 8 there.
    k, cap = 32, 3.0
    curves = matching_curves(_peak(k, 10, 2), _peak(k, 8, 16), cyclic=False, max_slope=cap)
    steps = curves.diff(dim=1)[0] * k  # slopes between bin centres
    assert steps[9:11].max() <= cap + 1e-5
    assert steps.max() > 1.0  # the source does move


def test_generator_starts_near_reinhard_and_the_curves_can_be_switched_off():
    torch.manual_seed(0)
    s, t = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 40, 24)
    plain = HueNetGenerator(32, 4, global_mapping="none").eval()
    assert torch.allclose(plain(s, plain.target_statistics(t)), s, atol=5e-3)  # identity start (logit clamped at 1/255)
    curved = HueNetGenerator(32, 4).eval()
    out = curved(s, curved.target_statistics(t))
    assert out.shape == s.shape and not torch.allclose(out, s, atol=2e-2)
    with pytest.raises(ValueError, match="global_mapping"):
        HueNetGenerator(32, 4, global_mapping="lut")


def test_lut_carries_a_colour_function_to_full_resolution():
    torch.manual_seed(0)
    small = torch.rand(1, 3, 256, 256)
    lut = ColorLUT(measure_lut(small, small.flip(1)))  # swap R and B
    big = torch.rand(1, 3, 300, 400)
    assert (lut(big) - big.flip(1)).abs().mean() < 0.01
    assert torch.allclose(ColorLUT(measure_lut(small, small))(big), big, atol=1e-5)


def test_sample_grid_tiles_are_large_and_labelled():
    imgs = np.random.default_rng(0).integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    grid = np.asarray(sample_grid(imgs, imgs, imgs, step=0))
    assert grid.shape[1] >= 3 * MIN_TILE and grid.shape[0] >= 2 * MIN_TILE
    header = grid[:20]
    assert (header < 128).any()  # the column labels are drawn
