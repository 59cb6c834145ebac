"""The Hue-Net generator, the PatchGAN discriminator and the GAN losses (huenet.colortransfer.training.models)."""

import math

import pytest
import torch

from huenet.colortransfer.training.models import (
    CURVE_BINS,
    GANLoss,
    HueNetGenerator,
    PatchDiscriminator,
    generator_depth,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return HueNetGenerator(image_size=64, ngf=8, cond_bins=16)


@pytest.mark.parametrize("size", [(64, 64), (96, 96), (128, 80), (80, 128), (37, 53)])
def test_generator_any_size(generator, size):
    # Trained at 64, run at other sizes, non-square and not multiples of 2^depth: output = source's size.
    g = torch.Generator().manual_seed(1)
    source = torch.rand(2, 3, *size, generator=g)
    target = torch.rand(2, 3, 50, 70, generator=g)
    out = generator(source, generator.target_statistics(target))
    assert out.shape == source.shape
    assert out.dtype == torch.float32
    assert bool(((out > 0) & (out < 1)).all())


def test_generator_eval_mode_tiny_input(generator):
    # Inputs smaller than the padding multiple fall back to replicate padding (reflect would fail).
    generator.eval()
    try:
        out = generator(torch.rand(1, 3, 5, 7), generator.target_statistics(torch.rand(1, 3, 9, 9)))
    finally:
        generator.train()
    assert out.shape == (1, 3, 5, 7)


def test_generator_starts_as_identity():
    # The colour transform starts at A = I, b = 0: output = source (up to the logit clamp at 1/255). The
    # default global mapping (a Reinhard stage and a hue curve) comes before it; without it, the identity.
    torch.manual_seed(0)
    g = HueNetGenerator(image_size=32, ngf=4, global_mapping="none")
    source = torch.rand(2, 3, 32, 32) * 0.9 + 0.05
    out = g(source, g.target_statistics(torch.rand(2, 3, 32, 32)))
    torch.testing.assert_close(out, source, atol=1e-5, rtol=0)


def test_generator_depends_on_the_target_histograms():
    # Once its output layers are not zero, different targets must give different outputs.
    torch.manual_seed(0)
    g = HueNetGenerator(image_size=32, ngf=4, cond_bins=8)
    with torch.no_grad():
        for p in (g.head[-1].weight, g.global_coef.weight):
            p.normal_(0, 0.1)
    source = torch.rand(1, 3, 32, 32)
    red = torch.zeros(1, 3, 16, 16)
    red[:, 0] = 1
    blue = torch.zeros(1, 3, 16, 16)
    blue[:, 2] = 1
    g.eval()
    out_red, out_blue = (g(source, g.target_statistics(t)) for t in (red, blue))
    assert (out_red - out_blue).abs().max() > 1e-3


def test_generator_histograms_are_normalised(generator):
    hist = generator.target_statistics(torch.rand(3, 3, 20, 30))
    # The soft histograms, then (global curves) 6 Lab moments and a hard hue histogram.
    assert hist.shape == (3, generator.cond_size) and generator.cond_size == 3 * 16 + 6 + CURVE_BINS
    torch.testing.assert_close(hist[:, :48].view(3, 3, 16).sum(-1), torch.ones(3, 3))
    torch.testing.assert_close(hist[:, 54:].sum(-1), torch.ones(3))
    assert not hist.requires_grad


def test_generator_gradients_reach_every_parameter():
    torch.manual_seed(0)
    g = HueNetGenerator(image_size=32, ngf=4, cond_bins=8)
    source, target = torch.rand(2, 2, 3, 32, 32).unbind(0)
    # Two steps: at the identity start the zero output layers block the gradient to everything below them.
    opt = torch.optim.SGD(g.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        g(source, g.target_statistics(target)).square().mean().backward()
        opt.step()
    missing = [n for n, p in g.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_generator_depth_follows_image_size():
    assert [generator_depth(s) for s in (32, 64, 128, 256, 512)] == [3, 4, 5, 6, 7]
    widths = [m[0].out_channels for m in HueNetGenerator(image_size=256, ngf=4).down]
    assert widths == [4, 8, 16, 32, 32, 32]


def test_generator_bad_arguments(generator):
    with pytest.raises(ValueError, match="`ngf`"):
        HueNetGenerator(ngf=0)
    with pytest.raises(ValueError, match="`colorspace`"):
        HueNetGenerator(colorspace="lab")
    with pytest.raises(ValueError, match="`dropout`"):
        HueNetGenerator(dropout=1.0)
    with pytest.raises(ValueError, match="`hist`"):
        generator(torch.rand(2, 3, 64, 64), torch.rand(2, 10))
    with pytest.raises(ValueError, match="`source`"):
        generator(torch.rand(2, 1, 64, 64), torch.rand(2, 48))


def test_generator_under_cpu_autocast(generator):
    # bf16 autocast on the CPU: the conditioning histograms stay fp32 (the core ops upcast), output finite.
    source, target = torch.rand(2, 2, 3, 64, 64).unbind(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hist = generator.target_statistics(target)
        out = generator(source, hist)
    assert hist.dtype == torch.float32
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("size, patches", [(32, 2), (64, 6), (128, 14)])
def test_discriminator_output_shape(size, patches):
    d = PatchDiscriminator(ndf=4)
    assert d(torch.rand(2, 3, size, size)).shape == (2, 1, patches, patches)


def test_discriminator_receptive_field_is_70():
    # The gradient of one interior logit reaches exactly a 70x70 window of the input.
    torch.manual_seed(0)
    d = PatchDiscriminator(ndf=4).eval()
    image = torch.rand(1, 3, 128, 128, requires_grad=True)
    logits = d(image)
    logits[0, 0, 7, 7].backward()
    support = image.grad[0].abs().sum(0) > 0
    rows, cols = support.any(1).nonzero(), support.any(0).nonzero()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


def test_discriminator_conditional():
    d = PatchDiscriminator(ndf=4, conditional=True)
    image, condition = torch.rand(2, 2, 3, 64, 64).unbind(0)
    assert d(image, condition).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="`condition`"):
        d(image)
    with pytest.raises(ValueError, match="`condition`"):
        PatchDiscriminator(ndf=4)(image, condition)


def test_gan_losses():
    zeros, big = torch.zeros(2, 1, 3, 3), torch.full((2, 1, 3, 3), 20.0)
    bce = GANLoss("bce")
    assert math.isclose(bce.generator(zeros).item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(bce.discriminator(zeros, zeros).item(), 2 * math.log(2), rel_tol=1e-6)
    # Non-saturating: a confident D (fake logits -20) still gives G a large loss and gradient.
    fake = (-big).requires_grad_()
    loss = bce.generator(fake)
    loss.backward()
    assert loss.item() > 19 and fake.grad.abs().sum() > 0.9
    assert bce.discriminator(big, -big).item() < 1e-6
    lsgan = GANLoss("lsgan")
    assert lsgan.generator(torch.ones(2, 1, 3, 3)).item() == 0
    assert lsgan.discriminator(torch.ones(2, 1, 3, 3), zeros).item() == 0
    assert lsgan.discriminator(zeros, torch.ones(2, 1, 3, 3)).item() == 2
    # fp16 logits are scored in fp32.
    assert bce.generator(zeros.half()).dtype == torch.float32
    with pytest.raises(ValueError, match="`mode`"):
        GANLoss("wgan")
