"""Differentiable colour-space conversions: RGB <-> HSV (hue in turns), RGB <-> YUV (BT.601), sRGB <-> CIE Lab.

All functions take and return float tensors of shape ``(*, 3, H, W)``: the channel dimension is ``-3``, so a
single image ``(3, H, W)`` and a batch ``(B, 3, H, W)`` both work. They compute in the input's dtype.

:data:`CHANNEL_RANGES`, :data:`PERIODIC` and :data:`CHANNEL_NAMES` describe each colour space's channels
(value range, whether the channel is an angle, its letter) for the histogram losses.
"""

from __future__ import annotations

from types import MappingProxyType

import torch

from ._checks import check_float_tensor, fail

__all__ = [
    "CHANNEL_NAMES",
    "CHANNEL_RANGES",
    "PERIODIC",
    "hsv_to_rgb",
    "lab_to_rgb",
    "rgb_to_hsv",
    "rgb_to_lab",
    "rgb_to_yuv",
    "yuv_to_rgb",
]

# The kernel of tf.image.rgb_to_yuv (BT.601 analogue YUV), written as rows: (Y, U, V) = M @ (R, G, B).
_RGB_TO_YUV = (
    (0.299, 0.587, 0.114),
    (-0.14714119, -0.28886916, 0.43601035),
    (0.61497538, -0.51496512, -0.10001026),
)
# The exact inverse rather than tf.image.yuv_to_rgb's kernel, which is this matrix rounded to 9 significant
# digits (entries differ by < 5e-9): the exact inverse makes rgb -> yuv -> rgb round trips exact to the
# dtype's precision.
_YUV_TO_RGB = tuple(tuple(row) for row in torch.linalg.inv(torch.tensor(_RGB_TO_YUV, dtype=torch.float64)).tolist())


def _row_range(row: tuple[float, float, float]) -> tuple[float, float]:
    # A linear form over the unit cube peaks at the corner that switches on exactly its positive
    # coefficients. Summing in row order (with the other terms 0) reproduces rgb_to_yuv's arithmetic at
    # that corner, so in float64 the bounds are attained exactly.
    lo = hi = 0.0
    for c in row:
        if c > 0:
            hi += c
        else:
            lo += c
    return lo, hi


CHANNEL_RANGES = MappingProxyType(
    {
        "rgb": ((0.0, 1.0), (0.0, 1.0), (0.0, 1.0)),
        "hsv": ((0.0, 1.0), (0.0, 1.0), (0.0, 1.0)),
        "yuv": tuple(_row_range(row) for row in _RGB_TO_YUV),
    }
)
"""Per-channel ``(lo, hi)`` value ranges of each colour space for RGB inputs in ``[0, 1]``.

The YUV bounds are the exact extremes of :func:`rgb_to_yuv` over the RGB unit cube (all attained at
corners): Y in ``[0, 1]``, U in about ``[-0.4360, 0.4360]``, V in about ``[-0.6150, 0.6150]``.
"""

PERIODIC = MappingProxyType(
    {
        "rgb": (False, False, False),
        "hsv": (True, False, False),
        "yuv": (False, False, False),
    }
)
"""Which channels of each colour space are periodic (hue: 0 and 1 are the same colour)."""

CHANNEL_NAMES = MappingProxyType({"rgb": "rgb", "hsv": "hsv", "yuv": "yuv"})
"""The one-letter name of each channel, in channel order (``CHANNEL_NAMES["hsv"].index("h") == 0``)."""


def _check_image(op: str, image: object) -> torch.Tensor:
    check_float_tensor(op, "image", image)
    if image.ndim < 3 or image.shape[-3] != 3:
        fail(op, "image", "of shape (*, 3, H, W) with 3 channels at dim -3", f"shape {tuple(image.shape)}")
    return image


def _linear(matrix: tuple[tuple[float, float, float], ...], image: torch.Tensor) -> torch.Tensor:
    # Written out per channel rather than as a matmul so any float dtype (half on CPU included) and any
    # leading shape work without moving the matrix to the image's dtype and device.
    a, b, c = image.unbind(-3)
    return torch.stack([m0 * a + m1 * b + m2 * c for m0, m1, m2 in matrix], dim=-3)


def rgb_to_hsv(image: torch.Tensor) -> torch.Tensor:
    r"""Convert an RGB image to HSV, with the hue in turns.

    The hue is the hexagonal HSV hue of :func:`colorsys.rgb_to_hsv` (kornia's, divided by :math:`2\pi`):
    red is 0, yellow 1/6, green 1/3, cyan 1/2, blue 2/3, magenta 5/6. With
    :math:`C = \max - \min` (the chroma), :math:`s = C / \max` and :math:`v = \max`.
    Grey pixels (:math:`C = 0`) get :math:`h = 0, s = 0`; black pixels get :math:`s = 0`.
    Pixels whose chroma (or max) is below the dtype's smallest normal number (``torch.finfo(dtype).tiny``:
    about 1e-38 for float32, 6e-5 for float16) are treated as grey (black), which keeps the gradient finite.

    Gradients are finite for every input, grey, black and white pixels included:

    - at an exactly grey pixel the gradient of ``h`` is 0 (the hue is undefined there and held at the
      constant 0) and so is that of ``s`` (``max - min`` has a kink with minimum 0 there, and ties of
      max/min share the gradient equally, which gives the zero subgradient); ``v`` passes 1/3 of its
      gradient to each channel. At black, ``s`` is the constant 0, so its gradient is 0.
    - near grey the hue is discontinuous in the limit and its gradient grows like ``1 / chroma``. A hue
      histogram should therefore weight each pixel by its chroma (``max - min``): ``chroma * dh`` stays
      bounded, so grey-ish pixels, whose hue is mostly noise, cannot dominate the loss or blow up the
      gradient. Weighting by saturation (``chroma / v``) bounds it by ``1 / v`` instead.

    Args:
        image: RGB image of shape :math:`(*, 3, H, W)`, floating point, values in ``[0, 1]``.

    Returns:
        HSV image of shape :math:`(*, 3, H, W)`, same dtype: hue in ``[0, 1)`` (turns), saturation and
        value in ``[0, 1]``.

    Raises:
        TypeError: ``image`` is not a floating-point tensor.
        ValueError: ``image`` is empty, or not of shape :math:`(*, 3, H, W)`.

    Example:
        >>> rgb = torch.tensor([1.0, 1.0, 0.0]).view(3, 1, 1)  # yellow
        >>> rgb_to_hsv(rgb).flatten()
        tensor([0.1667, 1.0000, 1.0000])
    """
    _check_image("rgb_to_hsv", image)
    tiny = torch.finfo(image.dtype).tiny
    r, g, b = image.unbind(-3)
    # amax/amin split the gradient evenly between tied channels (torch.max(dim) would pick one arbitrarily).
    maxc = image.amax(dim=-3)
    minc = image.amin(dim=-3)
    chroma = maxc - minc

    # Double-where: the masked-out branch is still differentiated, so it must never divide by ~0, or its
    # 0 * inf would poison the gradient with NaN. Substitute a safe denominator before dividing.
    coloured = chroma >= tiny
    safe_chroma = torch.where(coloured, chroma, torch.ones_like(chroma))
    # Channel priority r, g, b on ties, as in colorsys; the hue is continuous across those ties anyway.
    is_r = r == maxc
    is_g = (g == maxc) & ~is_r
    sector = torch.where(
        is_r,
        (g - b) / safe_chroma,
        torch.where(is_g, 2.0 + (b - r) / safe_chroma, 4.0 + (r - g) / safe_chroma),
    )
    # sector is in [-1, 5]; only the red sector goes negative.
    hue = torch.where(sector < 0, sector + 6.0, sector) / 6.0
    # sector + 6 rounds to 6 for a tiny negative sector; 1 turn is hue 0 (kept differentiable).
    hue = torch.where(hue >= 1.0, hue - 1.0, hue)
    hue = torch.where(coloured, hue, torch.zeros_like(hue))

    lit = maxc >= tiny
    safe_max = torch.where(lit, maxc, torch.ones_like(maxc))
    sat = torch.where(lit, chroma / safe_max, torch.zeros_like(maxc))
    return torch.stack([hue, sat, maxc], dim=-3)


def hsv_to_rgb(image: torch.Tensor) -> torch.Tensor:
    r"""Convert an HSV image (hue in turns) back to RGB; the inverse of :func:`rgb_to_hsv`.

    The hue is taken modulo 1, so any real hue is accepted (``-0.25`` is the same as ``0.75``). Uses the
    piecewise-linear form :math:`f(n) = v - v s \max(0, \min(k, 4 - k, 1))` with
    :math:`k = (n + 6h) \bmod 6` and :math:`n = 5, 3, 1` for R, G, B, which is differentiable almost
    everywhere (kinks where :math:`6h` is an integer) and has bounded gradients, as colorsys's sector
    formula would.

    Args:
        image: HSV image of shape :math:`(*, 3, H, W)`, floating point: hue in turns, saturation and value
            in ``[0, 1]``.

    Returns:
        RGB image of shape :math:`(*, 3, H, W)`, same dtype, values in ``[0, 1]``.

    Raises:
        TypeError: ``image`` is not a floating-point tensor.
        ValueError: ``image`` is empty, or not of shape :math:`(*, 3, H, W)`.

    Example:
        >>> hsv = torch.tensor([2 / 3, 1.0, 0.5]).view(3, 1, 1)  # dark blue
        >>> hsv_to_rgb(hsv).flatten()
        tensor([0.0000, 0.0000, 0.5000])
    """
    _check_image("hsv_to_rgb", image)
    hue, sat, val = image.unbind(-3)
    chroma = val * sat
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + 6.0 * hue, 6.0)
        ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
        channels.append(val - chroma * ramp)
    return torch.stack(channels, dim=-3)


def rgb_to_yuv(image: torch.Tensor) -> torch.Tensor:
    r"""Convert an RGB image to YUV with the BT.601 matrix of ``tf.image.rgb_to_yuv``.

    .. math::

        Y &= 0.299 R + 0.587 G + 0.114 B \\
        U &= -0.14714119 R - 0.28886916 G + 0.43601035 B \\
        V &= 0.61497538 R - 0.51496512 G - 0.10001026 B

    This is the matrix of the official Hue-Net code, but without its subsequent rescale
    (``Y * 2 - 1, U * 2, V * 2``): the losses use the per-channel ranges in :data:`CHANNEL_RANGES` instead.

    Args:
        image: RGB image of shape :math:`(*, 3, H, W)`, floating point, values in ``[0, 1]``.

    Returns:
        YUV image of shape :math:`(*, 3, H, W)`, same dtype: Y in ``[0, 1]``, U in about ``[-0.436, 0.436]``,
        V in about ``[-0.615, 0.615]`` (exact bounds in ``CHANNEL_RANGES["yuv"]``).

    Raises:
        TypeError: ``image`` is not a floating-point tensor.
        ValueError: ``image`` is empty, or not of shape :math:`(*, 3, H, W)`.

    Example:
        >>> rgb = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)  # red: the most positive V
        >>> rgb_to_yuv(rgb).flatten()
        tensor([ 0.2990, -0.1471,  0.6150])
    """
    _check_image("rgb_to_yuv", image)
    return _linear(_RGB_TO_YUV, image)


def yuv_to_rgb(image: torch.Tensor) -> torch.Tensor:
    r"""Convert a YUV image back to RGB; the exact inverse of :func:`rgb_to_yuv`.

    The matrix is the inverse of ``tf.image.rgb_to_yuv``'s, computed in float64; it agrees with
    ``tf.image.yuv_to_rgb``'s rounded kernel to within 5e-9 per entry.

    Args:
        image: YUV image of shape :math:`(*, 3, H, W)`, floating point, as returned by :func:`rgb_to_yuv`
            (no ``Y * 2 - 1`` rescale).

    Returns:
        RGB image of shape :math:`(*, 3, H, W)`, same dtype.

    Raises:
        TypeError: ``image`` is not a floating-point tensor.
        ValueError: ``image`` is empty, or not of shape :math:`(*, 3, H, W)`.

    Example:
        >>> yuv = torch.tensor([0.5, 0.0, 0.0]).view(3, 1, 1)  # mid grey
        >>> yuv_to_rgb(yuv).flatten()
        tensor([0.5000, 0.5000, 0.5000])
    """
    _check_image("yuv_to_rgb", image)
    return _linear(_YUV_TO_RGB, image)


# sRGB (D65) linear RGB -> XYZ (rows X, Y, Z), and the D65 white point (the image of RGB white).
_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float64,
)
_XYZ_WHITE_NORMALISED = tuple(tuple(row) for row in (_RGB_TO_XYZ / _RGB_TO_XYZ.sum(1, keepdim=True)).tolist())
_XYZ_NORMALISED_TO_RGB = tuple(
    tuple(row) for row in torch.linalg.inv(torch.tensor(_XYZ_WHITE_NORMALISED, dtype=torch.float64)).tolist()
)
# CIE's linear-segment threshold of f(t) = t^(1/3): delta = 6/29.
_DELTA = 6 / 29


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    r"""Convert sRGB to CIE L*a*b* (D65 white).

    sRGB is linearised, mapped to XYZ divided by the white point's XYZ, and
    :math:`L = 116 f(Y) - 16`, :math:`a = 500 (f(X) - f(Y))`, :math:`b = 200 (f(Y) - f(Z))` with
    :math:`f(t) = t^{1/3}` above :math:`\delta^3` and :math:`t / (3\delta^2) + 4/29` below
    (:math:`\delta = 6/29`).

    Args:
        image: sRGB image of shape :math:`(*, 3, H, W)`, floating point, values in ``[0, 1]``.

    Returns:
        Lab image of shape :math:`(*, 3, H, W)`, same dtype: L in ``[0, 100]``, a and b roughly in
        ``[-128, 127]``.

    Example:
        >>> rgb_to_lab(torch.ones(3, 1, 1)).flatten()  # white
        tensor([100.,   0.,   0.])
    """
    _check_image("rgb_to_lab", image)
    xyz = _linear(_XYZ_WHITE_NORMALISED, _srgb_to_linear(image))
    f = torch.where(xyz > _DELTA**3, xyz.clamp(min=_DELTA**3) ** (1 / 3), xyz / (3 * _DELTA**2) + 4 / 29)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], -3)


def lab_to_rgb(image: torch.Tensor) -> torch.Tensor:
    r"""Convert CIE L*a*b* (D65) back to sRGB; the inverse of :func:`rgb_to_lab`.

    Colours outside the sRGB gamut are clipped to ``[0, 1]``.

    Args:
        image: Lab image of shape :math:`(*, 3, H, W)`, floating point.

    Returns:
        sRGB image of shape :math:`(*, 3, H, W)`, same dtype, values in ``[0, 1]``.

    Example:
        >>> lab_to_rgb(torch.tensor([100.0, 0.0, 0.0]).view(3, 1, 1)).flatten()
        tensor([1.0000, 1.0000, 1.0000])
    """
    _check_image("lab_to_rgb", image)
    big_l, a, b = image.unbind(-3)
    fy = (big_l + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], -3)
    xyz = torch.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4 / 29))
    return _linear_to_srgb(_linear(_XYZ_NORMALISED_TO_RGB, xyz))
