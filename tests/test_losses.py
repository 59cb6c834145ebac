"""The nn.Module losses against the float64 oracle, gradcheck, reductions and bad input.

Each loss is rebuilt in NumPy from the oracle's colour conversions, channel ranges and periodicity
(oracle.CHANNELS, written from the definitions, never read from huenet.color) and its histograms, EMD and MI,
so every loss-level choice (which channels, ranges, boundaries, hue weights, cyclic EMD, which image is X in
H(X|Y), the lambdas, the reductions) is checked independently of the implementation.
"""

import colorsys

import numpy as np
import pytest
import torch

import oracle
from conftest import BACKENDS
from huenet.losses import HistogramEMDLoss, HueNetLoss, MutualInformationLoss

# The losses' documented defaults, written here rather than read from huenet.
BANDWIDTH = 0.4
HUE_FLOOR = 1e-6  # added to every hue weight so that a grey image still has a positive total weight
HUENET_CHANNELS = {"hsv": ("h", "v"), "yuv": ("yuv", "yuv")}  # (EMD channels, D_MI channels)


def _rgb(seed, shape=(2, 3, 6, 5)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64)


def _channel(img, space, ch):
    """One channel (B, 1, *sp) of the image in ``space``, with its range and periodicity."""
    (i,) = [i for i, (name, _, _) in enumerate(oracle.CHANNELS[space]) if name == ch]
    _, value_range, periodic = oracle.CHANNELS[space][i]
    return oracle.convert(img, space)[:, i : i + 1], value_range, periodic


def _hue_weight(img, hue_weight, const=None):
    """Saturation or chroma (saturation x value) of ``const`` (default: the image itself) plus the floor."""
    if hue_weight is None:
        return None
    hsv = oracle.rgb_to_hsv(img if const is None else const)
    sat = hsv[:, 1:2]
    return (sat if hue_weight == "saturation" else sat * hsv[:, 2:3]) + HUE_FLOOR


def _oracle_hist(img, space, ch, bins, hue_weight, const=None, pixel_weight=None):
    values, value_range, periodic = _channel(img, space, ch)
    weight = _hue_weight(img, hue_weight, const) if periodic else None
    if pixel_weight is not None:
        weight = pixel_weight if weight is None else weight * pixel_weight
    return oracle.soft_histogram(values, bins, value_range, BANDWIDTH, "circular" if periodic else "reflect", weight)[
        :, 0
    ]


def _oracle_channel_emd(inp, tgt, space, ch, bins, order, hue_weight, inp_weight=None, tgt_weight=None):
    """EMD of one colour channel's soft histograms, per sample, from the oracle."""
    periodic = _channel(inp, space, ch)[2]
    return oracle.emd(
        _oracle_hist(inp, space, ch, bins, hue_weight, pixel_weight=inp_weight),
        _oracle_hist(tgt, space, ch, bins, hue_weight, pixel_weight=tgt_weight),
        order,
        periodic,
    )


def _oracle_mi(out, src, space, ch, bins, weight=None):
    x, value_range, periodic = _channel(out, space, ch)
    y = _channel(src, space, ch)[0]
    return oracle.mi_distance(x, y, bins, value_range, BANDWIDTH, "circular" if periodic else "reflect", weight)[:, 0]


def _oracle_huenet(out, src, tgt, space, bins, src_weight=None, tgt_weight=None):
    """Hue-Net's per-sample terms with the default channels and saturation hue weights; the source's pixel
    weights apply to the output too (it is the source repainted)."""
    hist_channels, mi_channels = HUENET_CHANNELS[space]
    hist = np.mean(
        [
            _oracle_channel_emd(out, tgt, space, ch, bins, 1, "saturation", src_weight, tgt_weight)
            for ch in hist_channels
        ],
        0,
    )
    return hist, np.mean([_oracle_mi(out, src, space, ch, bins, src_weight) for ch in mi_channels], 0)


def test_oracle_helpers_see_the_documented_channels():
    # Guards the test's own lookups: a typo in a channel letter must not make every comparison vacuous.
    assert [name for name, _, _ in oracle.CHANNELS["hsv"]] == ["h", "s", "v"]
    assert _channel(_rgb(0), "yuv", "v")[1][1] == 0.61497538


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


@pytest.mark.parametrize("space", ["hsv", "yuv"])
def test_histograms_span_each_channels_range(space):
    # Pure colours at the extremes of every channel: a histogram built on too narrow a range would push their
    # mass into the reflected images, one built on too wide a range would leave the end bins nearly empty.
    corners = torch.tensor(
        [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 0, 1]], dtype=torch.float64
    ).T.reshape(1, 3, 2, 4)
    loss = HistogramEMDLoss(space, space, bins=16, hue_weight=None, reduction="none")
    for got, ch in zip(loss.histograms(corners), space):
        np.testing.assert_allclose(got.numpy(), _oracle_hist(corners.numpy(), space, ch, 16, None), atol=1e-12, rtol=0)


@pytest.mark.parametrize("hue_weight", ["chroma", None])
def test_hue_weight_options(hue_weight):
    inp, tgt = _rgb(3), _rgb(4)
    got = HistogramEMDLoss(hue_weight=hue_weight, bins=24, reduction="none")(inp, tgt)[:, 0].numpy()
    np.testing.assert_allclose(got, _oracle_channel_emd(inp, tgt, "hsv", "h", 24, 1, hue_weight), atol=1e-12)


def _rotate_hue(img, turns):
    """Every pixel's hue moved by ``turns`` (colorsys, pixel by pixel)."""
    pixels = img.permute(0, 2, 3, 1).reshape(-1, 3).tolist()
    rotated = []
    for r, g, b in pixels:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        rotated.append(colorsys.hsv_to_rgb((h + turns) % 1.0, s, v))
    return torch.tensor(rotated, dtype=img.dtype).reshape(img.shape[0], *img.shape[2:], 3).permute(0, 3, 1, 2)


def test_hue_emd_is_invariant_to_a_common_hue_rotation():
    inp, tgt = _rgb(5), _rgb(6)
    loss = HistogramEMDLoss(bins=32, reduction="none")
    # A rotation by whole bins moves both soft histograms by the same number of bins.
    rotated = loss(_rotate_hue(inp, 5 / 32), _rotate_hue(tgt, 5 / 32))
    torch.testing.assert_close(rotated, loss(inp, tgt), atol=1e-10, rtol=0)
    assert not torch.allclose(loss(_rotate_hue(inp, 5 / 32), tgt), loss(inp, tgt), atol=1e-6)


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
    want_hist, want_mi = _oracle_huenet(out, src, tgt, space, 16)
    terms = loss.terms(out, src, tgt)
    np.testing.assert_allclose(terms["hist"].numpy(), want_hist, atol=1e-12, rtol=0)
    np.testing.assert_allclose(terms["mi"].numpy(), want_mi, atol=1e-12, rtol=0)
    np.testing.assert_allclose(loss(out, src, tgt).numpy(), 7.0 * want_hist + 0.5 * want_mi, atol=1e-10, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("space", ["hsv", "yuv"])
def test_pixel_weights_match_oracle_and_transparent_pixels_take_no_part(space, backend):
    out, src, tgt = _rgb(18), _rgb(19), _rgb(20, (2, 3, 5, 8))
    src_w = (_rgb(21, (2, 1, 6, 5)) > 0.3).double()  # an alpha mask: 0 transparent, 1 opaque
    tgt_w = _rgb(22, (2, 1, 5, 8)) + 0.1
    terms = HueNetLoss(space, bins=16, reduction="none", backend=backend).terms(out, src, tgt, src_w, tgt_w)
    want_hist, want_mi = _oracle_huenet(out, src, tgt, space, 16, src_w.numpy(), tgt_w.numpy())
    np.testing.assert_allclose(terms["hist"].numpy(), want_hist, atol=1e-12, rtol=0)
    np.testing.assert_allclose(terms["mi"].numpy(), want_mi, atol=1e-12, rtol=0)
    # Whatever colour the transparent pixels have, the terms stay the same.
    repainted = [torch.where(src_w.bool(), img, _rgb(23)) for img in (out, src)]
    again = HueNetLoss(space, bins=16, reduction="none", backend=backend).terms(*repainted, tgt, src_w, tgt_w)
    for key in ("hist", "mi"):
        torch.testing.assert_close(again[key], terms[key], atol=1e-12, rtol=0)


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
    out = _rgb(15, (1, 3, 4, 4)).requires_grad_()
    tgt = _rgb(16, (1, 3, 4, 4))
    attached = HistogramEMDLoss(bins=24)(out, tgt)
    detached = HistogramEMDLoss(bins=24, detach_hue_weight=True)(out, tgt)
    assert torch.equal(attached.detach(), detached.detach())
    (g_attached,) = torch.autograd.grad(attached, out)
    (g_detached,) = torch.autograd.grad(detached, out)

    # Oracle for both gradients: central differences of the oracle loss, with the hue weights either following
    # the perturbed image or held at the unperturbed one.
    x0, q = out.detach().numpy(), _oracle_hist(tgt.numpy(), "hsv", "h", 24, "saturation")

    def numeric_grad(hold_weight):
        grad, eps = np.zeros_like(x0), 1e-6
        for idx in np.ndindex(x0.shape):
            f = []
            for step in (eps, -eps):
                x = x0.copy()
                x[idx] += step
                p = _oracle_hist(x, "hsv", "h", 24, "saturation", const=x0 if hold_weight else None)
                f.append(oracle.emd(p, q, 1, True).mean())
            grad[idx] = (f[0] - f[1]) / (2 * eps)
        return grad

    np.testing.assert_allclose(g_detached.numpy(), numeric_grad(True), atol=1e-7, rtol=0)
    np.testing.assert_allclose(g_attached.numpy(), numeric_grad(False), atol=1e-7, rtol=0)
    assert not torch.allclose(g_attached, g_detached)


def test_grey_images_give_the_oracle_loss_and_finite_gradients():
    grey = torch.full((2, 3, 4, 4), 0.5, dtype=torch.float64, requires_grad=True)
    tgt = _rgb(17, (2, 3, 4, 4))
    loss = HueNetLoss(bins=16, reduction="none")(grey, grey.detach(), tgt)
    want_hist, want_mi = _oracle_huenet(grey.detach(), grey.detach(), tgt, "hsv", 16)
    np.testing.assert_allclose(loss.detach().numpy(), 100.0 * want_hist + want_mi, atol=1e-10, rtol=0)
    # A constant image has a single-spike joint histogram: zero information, D_MI = 1.
    np.testing.assert_allclose(want_mi, 1.0, atol=1e-12)
    (grad,) = torch.autograd.grad(loss.sum(), grey)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize(
    "make,exc,arg",
    [
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
    ],
)
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


def test_grey_target_check_does_not_stop_the_host_on_cuda():
    # The CPU path (warning and zeroed hue column) is tested in test_recolor; on a GPU the check must stay on the
    # device: a host sync per step would forbid CUDA-graph capture (bench.gpu_check counts a whole step's syncs).
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    coloured = torch.rand(1, 3, 16, 16, device="cuda")
    grey = coloured.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    loss = HistogramEMDLoss(channels="hs", bins=32)
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        per = loss.per_channel(torch.cat([coloured, coloured]), torch.cat([grey, coloured]))
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert per[0, 0].item() == 0 and per[0, 1].item() > 0
