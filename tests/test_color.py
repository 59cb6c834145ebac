"""huenet.color against independent oracles: Python's colorsys and the BT.601 matrices written out in numpy."""

from __future__ import annotations

import colorsys
import itertools

import numpy as np
import pytest
import torch

from huenet.color import CHANNEL_NAMES, CHANNEL_RANGES, PERIODIC, hsv_to_rgb, rgb_to_hsv, rgb_to_yuv, yuv_to_rgb

FUNCS = [rgb_to_hsv, hsv_to_rgb, rgb_to_yuv, yuv_to_rgb]

# tf.image.rgb_to_yuv / yuv_to_rgb kernels, as rows acting on column vectors.
TF_RGB_TO_YUV = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14714119, -0.28886916, 0.43601035],
        [0.61497538, -0.51496512, -0.10001026],
    ]
)
TF_YUV_TO_RGB = np.array(
    [
        [1.0, 0.0, 1.13988303],
        [1.0, -0.394642334, -0.58062185],
        [1.0, 2.03206185, 0.0],
    ]
)

EDGE_PIXELS = [
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),  # primaries
    (1.0, 1.0, 0.0),
    (0.0, 1.0, 1.0),
    (1.0, 0.0, 1.0),  # secondaries (ties of max)
    (0.0, 0.0, 0.0),
    (1.0, 1.0, 1.0),
    (0.5, 0.5, 0.5),
    (0.25, 0.25, 0.25),  # black, white, greys
    (1.0, 0.0, 1e-9),
    (1.0, 1e-9, 0.0),
    (1.0, 0.0, 1e-3),
    (0.7, 0.2, 0.2 + 1e-12),  # around the red wrap
    (0.3, 0.6, 0.6),
    (0.0, 0.5, 1.0),
    (1.0, 0.5, 0.0),
    (0.2, 0.2, 0.9),  # ties of min, 0/1 values
]


def as_image(pixels) -> torch.Tensor:
    """(N, 3) pixels -> (1, 3, N, 1) float64 image."""
    return torch.as_tensor(np.asarray(pixels, dtype=np.float64)).T.reshape(1, 3, -1, 1)


def as_pixels(image: torch.Tensor) -> np.ndarray:
    """(1, 3, N, 1) image -> (N, 3) numpy pixels."""
    return image.detach().reshape(3, -1).T.numpy()


def random_pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3))


def hue_distance(a, b):
    d = np.abs(np.asarray(a) - np.asarray(b)) % 1.0
    return np.minimum(d, 1.0 - d)


# ---------------------------------------------------------------------------------------------- values


def test_rgb_to_hsv_matches_colorsys():
    pixels = np.concatenate([random_pixels(500, 0), np.array(EDGE_PIXELS)])
    got = as_pixels(rgb_to_hsv(as_image(pixels)))
    want = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
    # colorsys can return exactly 1.0 for a hue a hair below 0; compare hues on the circle.
    assert hue_distance(got[:, 0], want[:, 0]).max() < 1e-12
    np.testing.assert_allclose(got[:, 1:], want[:, 1:], rtol=0, atol=1e-12)
    assert ((got[:, 0] >= 0) & (got[:, 0] < 1)).all()


def test_rgb_to_hsv_grey_and_black_conventions():
    hsv = as_pixels(rgb_to_hsv(as_image([(0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)])))
    np.testing.assert_array_equal(hsv, [[0, 0, 0], [0, 0, 0.5], [0, 0, 1]])


def test_hue_just_below_red_wraps_into_unit_interval():
    # sector + 6 rounds to exactly 6 here; the hue must come back as 0, not 1.
    for dtype in (torch.float32, torch.float64):
        eps = torch.finfo(dtype).eps
        hsv = rgb_to_hsv(torch.tensor([1.0, 0.0, eps / 64], dtype=dtype).view(3, 1, 1))
        assert 0.0 <= hsv[0].item() < 1.0


def test_hsv_to_rgb_matches_colorsys():
    hsv = random_pixels(500, 1)
    hsv = np.concatenate([hsv, [[0, 0, 0], [0, 0, 1], [0.5, 0, 0.3], [1 / 6, 1, 1], [5 / 6, 1, 0.5]]])
    got = as_pixels(hsv_to_rgb(as_image(hsv)))
    want = np.array([colorsys.hsv_to_rgb(*p) for p in hsv])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_hsv_to_rgb_takes_hue_modulo_one():
    hsv = as_image(random_pixels(100, 2))
    base = hsv_to_rgb(hsv)
    for shift in (-2.0, -1.0, 1.0, 3.0):
        shifted = hsv.clone()
        shifted[:, 0] += shift
        torch.testing.assert_close(hsv_to_rgb(shifted), base, rtol=0, atol=1e-12)


def test_rgb_hsv_round_trip():
    rgb = as_image(np.concatenate([random_pixels(1000, 3), np.array(EDGE_PIXELS)]))
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, rtol=0, atol=1e-12)


def test_rgb_to_yuv_matches_bt601_matrix():
    pixels = np.concatenate([random_pixels(500, 4), np.array(EDGE_PIXELS)])
    got = as_pixels(rgb_to_yuv(as_image(pixels)))
    np.testing.assert_allclose(got, pixels @ TF_RGB_TO_YUV.T, rtol=0, atol=1e-14)


def test_yuv_to_rgb_matches_tf_kernel():
    # Ours is the exact inverse; TF's kernel is it rounded to 9 significant digits.
    yuv = as_pixels(rgb_to_yuv(as_image(random_pixels(500, 5))))
    got = as_pixels(yuv_to_rgb(as_image(yuv)))
    np.testing.assert_allclose(got, yuv @ TF_YUV_TO_RGB.T, rtol=0, atol=1e-8)


def test_rgb_yuv_round_trip():
    rgb = as_image(np.concatenate([random_pixels(1000, 6), np.array(EDGE_PIXELS)]))
    torch.testing.assert_close(yuv_to_rgb(rgb_to_yuv(rgb)), rgb, rtol=0, atol=1e-14)
    yuv = rgb_to_yuv(rgb)
    torch.testing.assert_close(rgb_to_yuv(yuv_to_rgb(yuv)), yuv, rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (2, 2, 3, 1, 1)])
@pytest.mark.parametrize("fn", FUNCS)
def test_shapes_and_leading_dims(fn, shape):
    x = torch.rand(shape, dtype=torch.float64)
    out = fn(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    # Leading dims are independent: converting one image alone gives the same result.
    flat = x.reshape(-1, 3, *shape[-2:])
    torch.testing.assert_close(fn(flat[0]), out.reshape(-1, 3, *shape[-2:])[0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("fn", FUNCS)
def test_low_precision_dtypes(fn, dtype):
    x64 = as_image(random_pixels(200, 7))
    if fn is yuv_to_rgb:
        x64 = rgb_to_yuv(x64)
    out = fn(x64.to(dtype))
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    want = fn(x64.to(dtype).double())
    diff = (out.double() - want).abs()
    if fn is rgb_to_hsv:
        diff[:, 0] = torch.minimum(diff[:, 0], 1 - diff[:, 0])  # hue on the circle
    tol = {torch.float16: 2e-2, torch.bfloat16: 8e-2, torch.float32: 1e-5}[dtype]
    assert diff.max() < tol


# ---------------------------------------------------------------------------------------------- ranges


def test_channel_ranges_contain_and_attain_yuv_of_cube_corners():
    corners = as_image(list(itertools.product((0.0, 1.0), repeat=3)))
    yuv = as_pixels(rgb_to_yuv(corners))
    oracle = np.array(list(itertools.product((0.0, 1.0), repeat=3))) @ TF_RGB_TO_YUV.T
    for c, (lo, hi) in enumerate(CHANNEL_RANGES["yuv"]):
        assert lo <= yuv[:, c].min() and yuv[:, c].max() <= hi
        assert yuv[:, c].min() == pytest.approx(lo, abs=1e-15)
        assert yuv[:, c].max() == pytest.approx(hi, abs=1e-15)
        assert oracle[:, c].min() == pytest.approx(lo, abs=1e-15)
        assert oracle[:, c].max() == pytest.approx(hi, abs=1e-15)
    assert CHANNEL_RANGES["yuv"][1][1] == pytest.approx(0.436, abs=1e-3)
    assert CHANNEL_RANGES["yuv"][2][1] == pytest.approx(0.615, abs=1e-3)


def test_channel_ranges_contain_random_conversions():
    rgb = as_image(random_pixels(2000, 8))
    for space, convert in (("hsv", rgb_to_hsv), ("yuv", rgb_to_yuv), ("rgb", lambda t: t)):
        values = as_pixels(convert(rgb))
        for c, (lo, hi) in enumerate(CHANNEL_RANGES[space]):
            assert lo <= values[:, c].min() and values[:, c].max() <= hi


def test_channel_metadata_is_consistent():
    assert set(CHANNEL_RANGES) == set(PERIODIC) == set(CHANNEL_NAMES) == {"rgb", "hsv", "yuv"}
    for space in CHANNEL_RANGES:
        assert len(CHANNEL_RANGES[space]) == len(PERIODIC[space]) == len(CHANNEL_NAMES[space]) == 3
        assert all(lo < hi for lo, hi in CHANNEL_RANGES[space])
    assert PERIODIC["hsv"] == (True, False, False)
    assert not any(PERIODIC["yuv"]) and not any(PERIODIC["rgb"])
    with pytest.raises(TypeError):
        CHANNEL_RANGES["lab"] = ((0, 1),) * 3  # read-only


# ---------------------------------------------------------------------------------------------- gradients


def generic_rgb(n: int, seed: int, gap: float = 0.05) -> torch.Tensor:
    """Pixels whose channels differ pairwise by > gap: no max/min ties, so the hue is smooth there."""
    rng = np.random.default_rng(seed)
    pixels = []
    while len(pixels) < n:
        p = rng.uniform(0.05, 0.95, 3)
        if min(abs(p[0] - p[1]), abs(p[1] - p[2]), abs(p[0] - p[2])) > gap:
            pixels.append(p)
    return as_image(pixels)


def generic_hsv(n: int, seed: int) -> torch.Tensor:
    """HSV pixels away from the kinks of hsv_to_rgb (6h an integer)."""
    rng = np.random.default_rng(seed)
    sector = rng.integers(-6, 12, n) + rng.uniform(0.1, 0.9, n)  # hues outside [0, 1) too
    return as_image(np.stack([sector / 6, rng.uniform(0.1, 0.9, n), rng.uniform(0.1, 0.9, n)], 1))


@pytest.mark.parametrize("fn", FUNCS)
def test_gradcheck(fn):
    x = generic_hsv(12, 9) if fn is hsv_to_rgb else generic_rgb(12, 10)
    if fn is yuv_to_rgb:
        x = rgb_to_yuv(x)
    x = x.reshape(1, 3, 3, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (x,))


SPECIAL_PIXELS = {
    "grey": (0.5, 0.5, 0.5),
    "black": (0.0, 0.0, 0.0),
    "white": (1.0, 1.0, 1.0),
    "red": (1.0, 0.0, 0.0),
    "yellow": (1.0, 1.0, 0.0),
    "subnormal chroma": (1e-310, 0.0, 0.0),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", SPECIAL_PIXELS)
def test_finite_gradients_at_special_pixels(name, dtype):
    x = torch.tensor(SPECIAL_PIXELS[name], dtype=dtype).view(3, 1, 1).requires_grad_(True)
    hsv = rgb_to_hsv(x)
    for c in range(3):
        (grad,) = torch.autograd.grad(hsv[c].sum(), x, retain_graph=True)
        assert torch.isfinite(grad).all(), (name, "hsv"[c], grad)


def test_gradients_at_grey_and_black_are_the_documented_ones():
    for pixel in ((0.5, 0.5, 0.5), (0.0, 0.0, 0.0)):
        x = torch.tensor(pixel, dtype=torch.float64).view(3, 1, 1).requires_grad_(True)
        hsv = rgb_to_hsv(x)
        grads = [torch.autograd.grad(hsv[c].sum(), x, retain_graph=True)[0].flatten() for c in range(3)]
        torch.testing.assert_close(grads[0], torch.zeros(3, dtype=torch.float64))
        torch.testing.assert_close(grads[1], torch.zeros(3, dtype=torch.float64))
        torch.testing.assert_close(grads[2], torch.full((3,), 1 / 3, dtype=torch.float64))


def test_chroma_weighted_hue_gradient_stays_bounded_near_grey():
    # The hue gradient grows like 1/chroma near grey; chroma * hue does not.
    hue_norms, weighted_norms = [], []
    for chroma in (1e-2, 1e-5, 1e-8):
        x = torch.tensor([0.5 + chroma, 0.5, 0.5 + chroma / 3], dtype=torch.float64).view(3, 1, 1)
        x.requires_grad_(True)
        hsv = rgb_to_hsv(x)
        weight = x.amax(0) - x.amin(0)
        hue_norms.append(torch.autograd.grad(hsv[0].sum(), x, retain_graph=True)[0].norm().item())
        weighted_norms.append(torch.autograd.grad((weight * hsv[0]).sum(), x)[0].norm().item())
    assert hue_norms[-1] > 1e6
    assert max(weighted_norms) < 2.0


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("fn", FUNCS)
def test_rejects_non_tensor(fn):
    with pytest.raises(TypeError, match=rf"{fn.__name__}: `image` must be .*; got list"):
        fn([[[0.0]]] * 3)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool, torch.complex64])
@pytest.mark.parametrize("fn", FUNCS)
def test_rejects_non_float_dtype(fn, dtype):
    with pytest.raises(TypeError, match=rf"{fn.__name__}: `image` must be .*floating.*; got .*{dtype}"):
        fn(torch.zeros(1, 3, 2, 2, dtype=dtype))


@pytest.mark.parametrize("shape", [(3, 4), (3,), (2, 4, 8, 8), (1, 3, 8, 8, 2), (1, 1, 4, 4)])
@pytest.mark.parametrize("fn", FUNCS)
def test_rejects_bad_shape(fn, shape):
    pattern = rf"{fn.__name__}: `image` must be .*3 channels at dim -3.*; got shape \({shape[0]},"
    with pytest.raises(ValueError, match=pattern):
        fn(torch.zeros(shape))
