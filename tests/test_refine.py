"""Test-time refinement (huenet.colortransfer.methods.refine): a few steps of the training-free fit from G's output."""

import pytest
import torch

from huenet.color import hsv_to_rgb
from huenet.colortransfer.methods.refine import refine
from huenet.colortransfer.metrics import hue_emd


def _hsv_image(hue_centre, size=32, seed=0):
    """A structured image (a V ramp plus noise) whose hues spread +-0.05 around ``hue_centre``."""
    g = torch.Generator().manual_seed(seed)
    hue = (hue_centre + 0.1 * (torch.rand(1, size, size, generator=g) - 0.5)) % 1
    sat = 0.5 + 0.4 * torch.rand(1, size, size, generator=g)
    val = torch.linspace(0.3, 0.95, size).expand(1, size, size).contiguous()
    return hsv_to_rgb(torch.cat([hue, sat, val])[None])[0]


def test_refinement_lowers_the_hue_emd_of_a_fixed_pair_and_keeps_structure():
    output, target = _hsv_image(0.6), _hsv_image(0.05, size=24, seed=1)  # a blue output, a red-orange target
    refined = refine(output, target, steps=30)
    assert refined.shape == output.shape and refined.min() >= 0 and refined.max() <= 1
    before, after = (float(hue_emd(x[None], target[None])) for x in (output, refined))
    assert after < 0.5 * before, (before, after)
    # Only hue and saturation move: the value channel (V = max of R, G, B) is the output's.
    torch.testing.assert_close(refined.amax(0), output.amax(0), atol=1e-5, rtol=0)


def test_zero_steps_is_the_output_and_batches_pair_element_by_element():
    outputs = torch.stack([_hsv_image(0.6), _hsv_image(0.3, seed=2)])
    targets = torch.stack([_hsv_image(0.05, seed=3), _hsv_image(0.8, seed=4)])
    assert torch.equal(refine(outputs, targets, steps=0), outputs)
    batch = refine(outputs, targets, steps=5)
    for i in range(2):
        torch.testing.assert_close(batch[i], refine(outputs[i], targets[i], steps=5))


@pytest.mark.parametrize("steps", [-1, 2.5, True, "3"])
def test_bad_steps_name_the_argument(steps):
    image = _hsv_image(0.5)
    with pytest.raises(ValueError, match=r"refine: `steps` must be an int >= 0; got"):
        refine(image, image, steps=steps)


def test_a_batch_of_other_length_is_refused():
    with pytest.raises(ValueError, match="refine: `target` must be a batch of 2 images"):
        refine(torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8), steps=1)
