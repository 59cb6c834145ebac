"""The nn.Module losses against the float64 oracle, gradcheck, reductions and bad input.

Colour conversion is tested on its own against colorsys (test_color.py); here each loss is rebuilt from the
converted channels with the oracle's histograms, EMD and MI, so every loss-level choice (which channels,
ranges, boundaries, hue weights, cyclic EMD, which image is X in H(X|Y), the lambdas, the reductions) is
checked independently of the backends.
"""
import numpy as np
import pytest
import torch

import oracle
from huenet import color
from huenet.losses import HUE_WEIGHT_FLOOR, HistogramEMDLoss, HueNetLoss, MutualInformationLoss

BACKENDS = ("eager", "reference")


def _rgb(seed, shape=(2, 3, 6, 5)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64)


def _oracle_channel_emd(inp, tgt, space, ch, bins, order, hue_weight):
    """EMD of one colour channel's soft histograms, per sample, from the oracle."""
    conv = {"hsv": color.rgb_to_hsv, "yuv": color.rgb_to_yuv, "rgb": lambda t: t}[space]
    i = color.CHANNEL_NAMES[space].index(ch)
    lo_hi = color.CHANNEL_RANGES[space][i]
    periodic = color.PERIODIC[space][i]
    hists = []
    for img in (inp, tgt):
        c = conv(img)
        weight = None
        if periodic and hue_weight is not None:
            sat = color.rgb_to_hsv(img)[:, 1:2]
            weight = (sat if hue_weight == "saturation" else sat * img.amax(1, keepdim=True)) + HUE_WEIGHT_FLOOR
        hists.append(oracle.soft_histogram(c[:, i:i + 1], bins, lo_hi, 0.4, "circular" if periodic else "reflect",
                                           weight)[:, 0])
    return oracle.emd(hists[0], hists[1], order, periodic)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("space,channels", [("hsv", "h"), ("hsv", "hsv"), ("yuv", "yuv"), ("rgb", "gb")])
@pytest.mark.parametrize("order", [1, 2])
def test_histogram_emd_loss_matches_oracle(space, channels, order, backend):
    inp, tgt = _rgb(1), _rgb(2, (2, 3, 7, 4))
    loss = HistogramEMDLoss(space, channels, bins=24, order=order, reduction="none", backend=backend)
    got = loss(inp, tgt).numpy()
    want = np.stack([_oracle_channel_emd(inp, tgt, space, ch, 24, order, "saturation") for ch in channels], 1)
    np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)
    summed = HistogramEMDLoss(space, channels, bins=24, order=order, reduction="sum", backend=backend)(inp, tgt)
    mean = HistogramEMDLoss(space, channels, bins=24, order=order, backend=backend)(inp, tgt)
    np.testing.assert_allclose([summed.item(), mean.item()], [want.sum(), want.mean()], atol=1e-12, rtol=0)


@pytest.mark.parametrize("hue_weight", ["chroma", None])
def test_hue_weight_options(hue_weight):
    inp, tgt = _rgb(3), _rgb(4)
    got = HistogramEMDLoss(hue_weight=hue_weight, bins=24, reduction="none")(inp, tgt)[:, 0].numpy()
    np.testing.assert_allclose(got, _oracle_channel_emd(inp, tgt, "hsv", "h", 24, 1, hue_weight), atol=1e-12)


def test_hue_emd_is_invariant_to_a_common_hue_rotation():
    inp, tgt = _rgb(5), _rgb(6)

    def rotate(img, turns):
        hsv = color.rgb_to_hsv(img)
        return color.hsv_to_rgb(torch.cat([(hsv[:, :1] + turns) % 1.0, hsv[:, 1:]], 1))

    loss = HistogramEMDLoss(bins=32, reduction="none")
    # A rotation by whole bins moves both soft histograms by the same number of bins.
    torch.testing.assert_close(loss(rotate(inp, 5 / 32), rotate(tgt, 5 / 32)), loss(inp, tgt), atol=1e-10, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mutual_information_loss_matches_oracle(backend):
    x, y = _rgb(7), _rgb(8)
    got = MutualInformationLoss(bins=16, reduction="none", backend=backend)(x, y).numpy()
    np.testing.assert_allclose(got, oracle.mi_distance(x, y, 16), atol=1e-12, rtol=0)
    # The official code's objective H(source | output): target plays X, input (the output) plays Y.
    got = MutualInformationLoss(bins=16, objective="conditional_entropy", reduction="none", backend=backend)(x, y)
    np.testing.assert_allclose(got.numpy(), oracle.conditional_entropy(y, x, 16), atol=1e-12, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("space", ["hsv", "yuv"])
def test_huenet_loss_combines_the_terms(space, backend):
    out, src, tgt = _rgb(9), _rgb(10), _rgb(11, (2, 3, 5, 8))
    loss = HueNetLoss(space, bins=16, lambda_hist=7.0, lambda_mi=0.5, reduction="none", backend=backend)
    hist_channels, mi_channels = ("h", "v") if space == "hsv" else ("yuv", "yuv")
    want_hist = np.mean([_oracle_channel_emd(out, tgt, space, ch, 16, 1, "saturation") for ch in hist_channels], 0)
    conv = color.rgb_to_hsv if space == "hsv" else color.rgb_to_yuv
    want_mi = []
    for ch in mi_channels:
        i = color.CHANNEL_NAMES[space].index(ch)
        boundary = "circular" if color.PERIODIC[space][i] else "reflect"
        want_mi.append(oracle.mi_distance(conv(out)[:, i:i + 1], conv(src)[:, i:i + 1], 16,
                                          color.CHANNEL_RANGES[space][i], 0.4, boundary)[:, 0])
    want_mi = np.mean(want_mi, 0)
    terms = loss.terms(out, src, tgt)
    np.testing.assert_allclose(terms["hist"].numpy(), want_hist, atol=1e-12, rtol=0)
    np.testing.assert_allclose(terms["mi"].numpy(), want_mi, atol=1e-12, rtol=0)
    np.testing.assert_allclose(loss(out, src, tgt).numpy(), 7.0 * want_hist + 0.5 * want_mi, atol=1e-10, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_losses(backend):
    out = (0.1 + 0.8 * _rgb(12, (1, 3, 3, 4))).requires_grad_()
    src, tgt = 0.1 + 0.8 * _rgb(13, (1, 3, 3, 4)), 0.1 + 0.8 * _rgb(14, (1, 3, 3, 4))
    emd_loss = HistogramEMDLoss(channels="hsv", bins=12, backend=backend)
    mi_loss = MutualInformationLoss(bins=12, backend=backend)
    huenet_loss = HueNetLoss(bins=12, backend=backend)
    assert torch.autograd.gradcheck(lambda o: emd_loss(o, tgt), (out,))
    assert torch.autograd.gradcheck(lambda o: mi_loss(o, src), (out,))
    assert torch.autograd.gradcheck(lambda o: huenet_loss(o, src, tgt), (out,))


def test_detached_hue_weight_only_drops_the_weight_gradient():
    out = _rgb(15).requires_grad_()
    tgt = _rgb(16)
    attached = HistogramEMDLoss(bins=24)(out, tgt)
    detached = HistogramEMDLoss(bins=24, detach_hue_weight=True)(out, tgt)
    assert torch.equal(attached.detach(), detached.detach())
    (g_attached,) = torch.autograd.grad(attached, out)
    (g_detached,) = torch.autograd.grad(detached, out)

    # Oracle for the detached gradient: the same loss with the weights built from a constant copy.
    def with_constant_weight(o):
        const = o.detach()
        sat = color.rgb_to_hsv(const)[:, 1:2] + HUE_WEIGHT_FLOOR
        from huenet import emd, soft_histogram
        p = soft_histogram(color.rgb_to_hsv(o)[:, :1], 24, boundary="circular", weight=sat)
        t_sat = color.rgb_to_hsv(tgt)[:, 1:2] + HUE_WEIGHT_FLOOR
        q = soft_histogram(color.rgb_to_hsv(tgt)[:, :1], 24, boundary="circular", weight=t_sat)
        return emd(p, q, cyclic=True).mean()

    (g_want,) = torch.autograd.grad(with_constant_weight(out), out)
    torch.testing.assert_close(g_detached, g_want, atol=1e-12, rtol=0)
    assert not torch.allclose(g_attached, g_detached)


def test_grey_images_give_finite_loss_and_gradients():
    grey = torch.full((2, 3, 4, 4), 0.5, dtype=torch.float64, requires_grad=True)
    loss = HueNetLoss(bins=16)(grey, grey.detach(), _rgb(17, (2, 3, 4, 4)))
    (grad,) = torch.autograd.grad(loss, grey)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


@pytest.mark.parametrize("make,exc,arg", [
    (lambda: HistogramEMDLoss(colorspace="lab"), ValueError, "colorspace"),
    (lambda: HistogramEMDLoss(channels="hx"), ValueError, "channels"),
    (lambda: HistogramEMDLoss(channels="hh"), ValueError, "channels"),
    (lambda: HistogramEMDLoss(hue_weight="value"), ValueError, "hue_weight"),
    (lambda: HistogramEMDLoss(order=3), ValueError, "order"),
    (lambda: HistogramEMDLoss(bins=1), ValueError, "bins"),
    (lambda: HistogramEMDLoss(bandwidth=0), ValueError, "bandwidth"),
    (lambda: HistogramEMDLoss(reduction="avg"), ValueError, "reduction"),
    (lambda: HistogramEMDLoss(detach_hue_weight="yes"), TypeError, "detach_hue_weight"),
    (lambda: MutualInformationLoss(objective="nmi"), ValueError, "objective"),
    (lambda: MutualInformationLoss(reduction="avg"), ValueError, "reduction"),
    (lambda: HueNetLoss(colorspace="rgb"), ValueError, "colorspace"),
    (lambda: HueNetLoss(mi_channels="q"), ValueError, "mi_channels"),
])
def test_bad_arguments(make, exc, arg):
    with pytest.raises(exc, match=rf"`{arg}`"):
        make()


def test_bad_images():
    loss = HistogramEMDLoss()
    with pytest.raises(ValueError, match="`input`"):
        loss(torch.rand(2, 4, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="`target`"):
        loss(torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8))
    with pytest.raises(TypeError, match="`target`"):
        loss(torch.rand(2, 3, 8, 8), torch.zeros(2, 3, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="`source`"):
        HueNetLoss()(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 6), torch.rand(2, 3, 8, 8))
