"""Image sets and unpaired (source, target) pairs for colour-transfer training and evaluation.

An *image set* is anything with ``len()``, ``picture(i) ->`` :class:`~huenet.colortransfer.data.images.Picture` and
``name(i)``: a folder tree of image files (:class:`ImageFolder`, read at their real bit depth with the alpha
channel kept) or the built-in procedural set (:class:`huenet.colortransfer.data.synthetic.SyntheticImages`).
:func:`split_indices` makes the seeded 90/10 train/validation split and :class:`UnpairedPairs` draws a random
target for every source image, new each epoch, with resize + random crop + flip jitter for training.

Everything random here is a function of ``(seed, epoch, index)`` rather than of a global RNG, so a resumed
run or a DataLoader worker sees exactly the pairs and crops an uninterrupted run would.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from .images import IMAGE_EXTENSIONS, UNREADABLE_ERRORS, Picture, read_image
from .synthetic import DEFAULT_COUNT, SyntheticImages

# Training images are resized so their short side is image_size * LOAD_SCALE, then randomly cropped:
# 286 -> 256 in pix2pix and the official Hue-Net code.
LOAD_SCALE = 286 / 256
#: The share of a set held out for validation (``--val-fraction``).
VAL_FRACTION = 0.1


def find_images(root: str | os.PathLike) -> list[Path]:
    """All files with an image extension under ``root`` (recursively), sorted.

    Raises (messages name the folder; a command line adds its flag):
        FileNotFoundError: ``root`` does not exist.
        NotADirectoryError: ``root`` is not a folder.
        ValueError: no file under ``root`` has an image extension.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"the folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{str(root)!r} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {str(root)!r}")
    return files


class ImageFolder:
    """The image files under a folder tree; files that cannot be read are skipped with a warning.

    Each file's structure is checked once here (``PIL.Image.verify``, which reads no pixels). A file that
    passes but fails to decode later (e.g. a truncated JPEG) is skipped by :class:`UnpairedPairs` when loaded.

    Args:
        root: a folder; searched recursively for :data:`IMAGE_EXTENSIONS`.

    Attributes:
        files: the readable files, sorted. skipped: the unreadable ones.

    Raises:
        FileNotFoundError, NotADirectoryError: ``root`` is missing or not a folder.
        ValueError: it holds fewer than 2 readable images.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.files: list[Path] = []
        self.skipped: list[Path] = []
        for path in find_images(root):
            try:
                with Image.open(path) as image:
                    image.verify()
                self.files.append(path)
            except UNREADABLE_ERRORS:
                self.skipped.append(path)
        if self.skipped:
            shown = ", ".join(p.name for p in self.skipped[:5]) + (", ..." if len(self.skipped) > 5 else "")
            warnings.warn(
                f"skipped {len(self.skipped)} unreadable image file(s) under {str(root)!r}: {shown}", stacklevel=2
            )
        if len(self.files) < 2:
            raise ValueError(
                f"need at least 2 readable images under {str(root)!r}; found "
                f"{len(self.files)} (and {len(self.skipped)} unreadable)"
            )

    def __len__(self) -> int:
        return len(self.files)

    def name(self, index: int) -> str:
        return str(self.files[index].relative_to(self.root))

    def picture(self, index: int) -> Picture:
        return read_image(self.files[index])


def make_image_set(data: str | None, image_size: int, seed: int, synthetic_count: int = DEFAULT_COUNT):
    """The image set of a run: the folder ``data``, or the built-in synthetic set when ``data`` is None.

    Synthetic images are generated at the training load size, so the jitter crops without resampling.
    """
    if data is None:
        return SyntheticImages(synthetic_count, round(image_size * LOAD_SCALE), seed)
    return ImageFolder(data)


def split_indices(count: int, val_fraction: float = VAL_FRACTION, seed: int = 0) -> tuple[list[int], list[int]]:
    """Seeded train/validation split of ``range(count)``: (train, val), both sorted, val non-empty.

    Example:
        >>> train, val = split_indices(20, 0.1, seed=0)
        >>> len(train), len(val)
        (18, 2)
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"split_indices: `val_fraction` must be in (0, 1); got {val_fraction!r}")
    if count < 2:
        raise ValueError(f"split_indices: `count` must be >= 2 to leave images for both splits; got {count}")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    n_val = min(count - 1, max(1, round(count * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])


def _resize_short_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) -> resized so its short side is ``size`` (bicubic, antialiased, values kept in [0, 1])."""
    h, w = image.shape[-2:]
    scale = size / min(w, h)
    new = (max(size, round(h * scale)), max(size, round(w * scale)))
    if new == (h, w):
        return image
    resized = F.interpolate(image[None], new, mode="bicubic", antialias=True, align_corners=False)
    return resized[0].clamp_(0, 1)


class Pair(NamedTuple):
    """One item of :class:`UnpairedPairs`; a DataLoader batch is a Pair of stacked tensors (and of lists)."""

    source: torch.Tensor  # (3, S, S) RGB in [0, 1]
    target: torch.Tensor  # (3, S, S)
    source_alpha: torch.Tensor  # (1, S, S) in [0, 1]; ones for an opaque image
    target_alpha: torch.Tensor
    skipped: str  # "name<TAB>reason" of each image that failed to decode and was replaced, one a line; see
    # :func:`skipped_images`


def skipped_images(images, pairs: list[Pair] | tuple[str, ...] = ()) -> dict[str, str]:
    """{name: reason} of the images that could not be read: found unreadable by the image set up front, or
    named in the ``skipped`` fields of ``pairs`` (Pairs, or the field's strings as a loader batch holds them)."""
    found = {str(Path(p).relative_to(images.root)): "unreadable" for p in images.skipped}
    for text in pairs:
        for line in filter(None, (text if isinstance(text, str) else text.skipped).split("\n")):
            name, reason = line.split("\t", 1)
            found[name] = reason
    return found


class UnpairedPairs(Dataset):
    """(source, target) pairs of distinct images from one image set, for unpaired colour transfer.

    Item ``i`` is image ``indices[i]`` as the source and a random other image of ``indices`` as the target,
    drawn anew each epoch (:meth:`set_epoch`). With ``train=True`` both are resized so their short side is
    ``image_size * LOAD_SCALE``, randomly cropped to ``image_size`` and randomly flipped; otherwise they are
    resized to ``image_size`` and centre-cropped, and epoch 0's pairing is used, so validation is fixed.

    An image that fails to decode is replaced by the next one and named in the item's ``skipped`` field, so the
    training loop (which may load in worker processes) can warn once per file and count it.

    Args:
        images: an image set (:class:`ImageFolder`, :class:`~huenet.colortransfer.data.synthetic.SyntheticImages`).
        indices: the images of this split.
        image_size: side of the square crops.
        train: jitter (True) or fixed centre crops (False).
        seed: seeds the pairing and the jitter.

    Shape:
        item: a :class:`Pair`; colours (3, image_size, image_size) and alphas (1, image_size, image_size),
        float32 in [0, 1].
    """

    # Validation resizes the short side to image_size * val_scale before its centre crop.
    val_scale = 1.0

    def __init__(self, images, indices, image_size: int, train: bool = True, seed: int = 0):
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
            raise ValueError(f"UnpairedPairs: `image_size` must be an int >= 8; got {image_size!r}")
        if len(indices) == 0:
            raise ValueError("UnpairedPairs: `indices` must be non-empty")
        self.images, self.indices = images, list(indices)
        self.image_size, self.train, self.seed = image_size, train, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the pairs and jitter of ``epoch`` (training only; validation keeps epoch 0)."""
        self.epoch = epoch if self.train else 0

    def __len__(self) -> int:
        return len(self.indices)

    def target_position(self, i: int) -> int:
        """Position in ``indices`` of the target paired with source position ``i`` this epoch."""
        n = len(self.indices)
        if n == 1:
            return 0
        # A uniform offset in [1, n) never pairs an image with itself.
        return (i + random.Random(f"pair:{self.seed}:{self.epoch}:{i}").randrange(1, n)) % n

    def _load(self, position: int, skipped: list[str]) -> torch.Tensor:
        """Image ``indices[position]`` (or the next one that decodes) as (3, H, W) RGB, or (4, H, W) with alpha."""
        n = len(self.indices)
        for k in range(n):
            index = self.indices[(position + k) % n]
            try:
                picture = self.images.picture(index)
            except UNREADABLE_ERRORS as err:
                skipped.append(f"{self.images.name(index)}\t{err}".replace("\n", " "))
                continue
            return picture.rgb if picture.alpha is None else torch.cat([picture.rgb, picture.alpha])
        raise RuntimeError("UnpairedPairs: none of the images could be decoded")

    def _crop(self, image: torch.Tensor, rng: random.Random) -> torch.Tensor:
        size = self.image_size
        if self.train:
            image = _resize_short_side(image, round(size * LOAD_SCALE))
            height, width = image.shape[-2:]
            left, top = rng.randint(0, width - size), rng.randint(0, height - size)
        else:
            image = _resize_short_side(image, round(size * self.val_scale))
            height, width = image.shape[-2:]
            left, top = (width - size) // 2, (height - size) // 2
        image = image[:, top : top + size, left : left + size]
        if self.train and rng.random() < 0.5:
            image = image.flip(-1)
        return image.contiguous()

    def __getitem__(self, i: int) -> Pair:
        if not 0 <= i < len(self.indices):
            raise IndexError(f"UnpairedPairs: index {i} out of range for {len(self.indices)} pairs")
        rng = random.Random(f"jitter:{self.seed}:{self.epoch}:{i}")
        skipped: list[str] = []
        source = self._crop(self._load(i, skipped), rng)
        target = self._crop(self._load(self.target_position(i), skipped), rng)
        source_alpha, target_alpha = (
            image[3:] if len(image) == 4 else torch.ones_like(image[:1]) for image in (source, target)
        )
        return Pair(source[:3], target[:3], source_alpha, target_alpha, "\n".join(skipped))
