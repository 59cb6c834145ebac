"""A built-in, procedurally generated image set for colour transfer: nothing to download, same images per seed.

Each image is drawn from one *hue family* (one of :data:`HUE_FAMILIES`, with a small jitter): a gradient
background and a handful of shapes (ellipses, rectangles, stripe bands, soft blobs) in several shades of that
family, sometimes with one accent shape in a second family, plus shading and a little noise. Shapes and
brightness vary from image to image, so the V channel carries structure the generator must keep, and hues
differ between images, so painting one image with another's colours is a real change.

Example:
    >>> images = SyntheticImages(count=4, size=48, seed=0)
    >>> images.load(0).size
    (48, 48)
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch
from PIL import Image

from .images import Picture

# Centres of the hue families, in turns (red, orange, yellow, green, cyan, blue, violet, magenta): far enough
# apart that two families' palettes never overlap once each is jittered by at most FAMILY_SPREAD.
HUE_FAMILIES = (0.0, 0.08, 0.16, 0.33, 0.5, 0.62, 0.74, 0.88)
FAMILY_SPREAD = 0.035


#: Images in the built-in set (``--synthetic-images``).
DEFAULT_COUNT = 1000


class SyntheticImages:
    """``count`` procedurally generated RGB images of ``size`` x ``size`` pixels, deterministic by ``seed``.

    Image ``i`` depends only on ``(seed, i)``, so any subset can be generated in any order, in any worker.

    Args:
        count: number of images, >= 2.
        size: side length in pixels, >= 8.
        seed: the image set; the same seed always gives the same images.
    """

    skipped: tuple = ()  # nothing is ever unreadable (the interface of data.ImageFolder)

    def __init__(self, count: int = DEFAULT_COUNT, size: int = 72, seed: int = 0):
        if isinstance(count, bool) or not isinstance(count, int) or count < 2:
            raise ValueError(f"SyntheticImages: `count` must be an int >= 2; got {count!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise ValueError(f"SyntheticImages: `size` must be an int >= 8; got {size!r}")
        self.count, self.size, self.seed = count, size, int(seed)

    def __len__(self) -> int:
        return self.count

    def name(self, index: int) -> str:
        return f"synthetic-{self.seed}-{index:05d}"

    def load(self, index: int) -> Image.Image:
        """Image ``index`` as an RGB PIL image."""
        return Image.fromarray(self._array(index))

    def picture(self, index: int) -> Picture:
        """Image ``index`` as a :class:`~huenet.colortransfer.data.images.Picture` (8 bits, opaque)."""
        return Picture(torch.from_numpy(self._array(index)).permute(2, 0, 1).float() / 255, None, 8)

    def edges(self, index: int) -> torch.Tensor:
        """The exact edge map of image ``index``, (1, size, size): black (0) outlines of its shapes on white (1).

        A pixel is an edge pixel when the shape drawn on top there (or the background) differs from the one on
        top at its right or lower neighbour: the outlines of the shapes as drawn, occlusions included, where
        a detector would also fire on shading, noise and the background gradient.
        """
        labels = torch.from_numpy(self._draw(index)[1])
        edges = torch.zeros(labels.shape, dtype=torch.bool)
        edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
        edges[:-1, :] |= labels[:-1, :] != labels[1:, :]
        return (~edges).float()[None]

    def _array(self, index: int) -> np.ndarray:
        return self._draw(index)[0]

    def _draw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.count:
            raise IndexError(f"SyntheticImages: index {index} out of range for {self.count} images")
        return _draw(np.random.default_rng([self.seed, index]), self.size)


def _palette(rng: np.random.Generator, hue: float, count: int) -> np.ndarray:
    """``count`` RGB colours (count, 3) around ``hue`` with varied saturation and value."""
    # Values spread evenly over [0.3, 1] (in random order) so every image has dark and bright parts.
    values = rng.permutation(np.linspace(0.3, 1.0, count)) + rng.uniform(-0.05, 0.05, count)
    colours = []
    for value in np.clip(values, 0.25, 1.0):
        h = (hue + rng.uniform(-FAMILY_SPREAD, FAMILY_SPREAD)) % 1.0
        colours.append(colorsys.hsv_to_rgb(h, rng.uniform(0.45, 1.0), value))
    return np.asarray(colours, dtype=np.float64)


def _shape_mask(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A soft mask in [0, 1] of one random shape on the unit square grid (yy, xx)."""
    kind = rng.integers(4)
    cy, cx = rng.uniform(0.1, 0.9, size=2)
    angle = rng.uniform(0, np.pi)
    # Coordinates rotated about the shape's centre, so ellipses, rectangles and stripes point anywhere.
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    edge = 0.01  # anti-aliasing width of the shape boundaries
    if kind == 0:  # ellipse
        a, b = rng.uniform(0.08, 0.35, size=2)
        dist = np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0
        return np.clip(0.5 - dist * min(a, b) / edge, 0.0, 1.0)
    if kind == 1:  # rectangle
        a, b = rng.uniform(0.06, 0.3, size=2)
        dist = np.maximum(np.abs(u) - a, np.abs(v) - b)
        return np.clip(0.5 - dist / edge, 0.0, 1.0)
    if kind == 2:  # a band of stripes
        period, width = rng.uniform(0.06, 0.2), rng.uniform(0.15, 0.4)
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * u / period) > 0.5
        return stripes * np.clip(0.5 - (np.abs(v) - width) / edge, 0.0, 1.0)
    # soft blob: a few Gaussians summed and thresholded
    field = np.zeros_like(xx)
    for _ in range(rng.integers(2, 5)):
        gy, gx = cy + rng.normal(0, 0.08), cx + rng.normal(0, 0.08)
        field += np.exp(-((yy - gy) ** 2 + (xx - gx) ** 2) / (2 * rng.uniform(0.04, 0.1) ** 2))
    return np.clip((field - 0.5) * 4.0, 0.0, 1.0)


def _draw(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One image, (size, size, 3) uint8, and its label map (size, size): which shape is on top (0: background).

    A shape is on top of a pixel where its mask is >= 0.5, i.e. where it covers at least half of the pixel.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    family = HUE_FAMILIES[rng.integers(len(HUE_FAMILIES))]
    palette = _palette(rng, family, 5)
    # Background: a linear gradient between two palette colours in a random direction.
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xx * np.cos(angle) + yy * np.sin(angle)
    ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-9)
    image = (1 - ramp)[..., None] * palette[0] + ramp[..., None] * palette[1]
    labels = np.zeros((size, size), dtype=np.int64)

    accent = rng.random() < 0.4
    shape_count = rng.integers(3, 8)
    for s in range(shape_count):
        if accent and s == shape_count - 1:
            others = [h for h in HUE_FAMILIES if h != family]
            colour = _palette(rng, others[rng.integers(len(others))], 1)[0]
        else:
            colour = palette[rng.integers(len(palette))]
        # Shading across the shape changes brightness only (a scale of RGB keeps hue and saturation).
        shade = 1.0 + rng.uniform(-0.25, 0.25) * (xx - 0.5) + rng.uniform(-0.25, 0.25) * (yy - 0.5)
        mask = _shape_mask(rng, yy, xx)[..., None]
        image = image * (1 - mask) + mask * colour * shade[..., None]
        labels[mask[..., 0] >= 0.5] = s + 1
    image = image + rng.normal(0.0, 0.015, size=image.shape)
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), labels
