"""Paired (input, photo) data for the colorize and edges2photo tasks.

``--data DIR`` is either

- a folder of colour photos: the input is derived from each crop of the photo (:func:`~.tasks.grey` for
  colorize, :func:`~.tasks.edge_map`, kornia's Canny, for edges2photo); or
- a pix2pix "AB" folder (edges2shoes, edges2handbags, ...): each file holds the input (A, left half) and the
  photo (B, right half) side by side, so every image is exactly twice as wide as high.

``--data-format auto`` (the default) takes a folder as AB when all its images are twice as wide as high. A
folder where only some are is an error naming one that is not: pass ``--data-format photos`` to use them as
photos. Without ``--data`` the built-in procedural set serves both tasks; for edges2photo its inputs are the
exact outlines of the drawn shapes (:meth:`~.synthetic.SyntheticImages.edges`), not a detector's output.

Example:
    >>> from huenet.colortransfer.data.synthetic import SyntheticImages
    >>> pairs = PairedImages(SyntheticImages(4, 36), [0, 1, 2], 32, "edges2photo")
    >>> pairs[0].source.shape, pairs[0].target.shape
    (torch.Size([3, 32, 32]), torch.Size([3, 32, 32]))
"""

from __future__ import annotations

import os
import random

import torch
from PIL import Image

from .folders import LOAD_SCALE, ImageFolder, Pair, UnpairedPairs
from .synthetic import DEFAULT_COUNT, SyntheticImages
from .tasks import PAIRED_TASKS, edge_map, grey

DEFAULT_DATA_FORMAT = "auto"
DATA_FORMATS = (DEFAULT_DATA_FORMAT, "photos", "ab")


def _is_ab(size: tuple[int, int]) -> bool:
    return size[0] == 2 * size[1]


def _sizes(folder: ImageFolder) -> list[tuple[int, int]]:
    """(width, height) of every file of ``folder``, from the headers (no pixels decoded)."""
    sizes = []
    for path in folder.files:
        with Image.open(path) as image:
            sizes.append(image.size)
    return sizes


class ABFolder(ImageFolder):
    """A pix2pix AB folder: :meth:`picture` gives the whole image, :meth:`split` its (A, B) halves.

    Raises:
        ValueError: an image is not exactly twice as wide as high (named, with its size).
    """

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        for path, size in zip(self.files, _sizes(self)):
            if not _is_ab(size):
                raise ValueError(
                    f"{str(path)!r} is {size[0]}x{size[1]}; a pix2pix AB image holds the input and "
                    "the photo side by side, so it must be exactly twice as wide as high (pass "
                    "--data-format photos for a folder of photos)"
                )

    @staticmethod
    def split(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) of a (C, H, 2H) image: the left half (the input) and the right half (the photo)."""
        half = image.shape[-1] // 2
        return image[..., :half], image[..., half : 2 * half]


def make_paired_image_set(
    data: str | None,
    image_size: int,
    seed: int,
    synthetic_count: int = DEFAULT_COUNT,
    data_format: str = DEFAULT_DATA_FORMAT,
):
    """The image set of a paired run: the built-in set, a photo folder or an :class:`ABFolder`.

    Raises:
        ValueError: a bad ``data_format``; an AB folder (given or detected) with an image that is not twice as
            wide as high; and the errors of :class:`~.data.ImageFolder`.
    """
    if data_format not in DATA_FORMATS:
        raise ValueError(f"--data-format must be one of {', '.join(DATA_FORMATS)}; got {data_format!r}")
    if data is None:
        return SyntheticImages(synthetic_count, round(image_size * LOAD_SCALE), seed)
    if data_format == "ab":
        return ABFolder(data)
    folder = ImageFolder(data)
    if data_format == "auto":
        sizes = _sizes(folder)
        ab = [_is_ab(size) for size in sizes]
        if all(ab):
            return ABFolder(data)
        if sum(ab) * 2 >= len(ab):
            odd = ab.index(False)
            raise ValueError(
                f"most images under {data!r} are twice as wide as high, like a pix2pix AB folder, "
                f"but {folder.name(odd)!r} is {sizes[odd][0]}x{sizes[odd][1]}; pass --data-format "
                "photos to use them as photos"
            )
    return folder


class PairedImages(UnpairedPairs):
    """``(input, photo)`` crops of one image set for a paired ``task`` ("colorize" or "edges2photo").

    The photo is cropped (and for training flipped) as in :class:`~.data.UnpairedPairs`, and the input gets
    the same crop: the A half of an AB image, the built-in set's exact edge map, or else derived from the
    photo crop. Validation crops are taken at the training scale (short side ``image_size * LOAD_SCALE``),
    so validation inputs look like training ones and built-in edge maps are never resampled.

    Shape:
        item: a :class:`~.data.Pair` whose ``source`` is the input and ``target`` the photo (the ground truth,
        also the reference in training), each (3, image_size, image_size) in [0, 1], with their alphas.
    """

    val_scale = LOAD_SCALE

    def __init__(self, images, indices, image_size: int, task: str, train: bool = True, seed: int = 0):
        if task not in PAIRED_TASKS:
            raise ValueError(f"PairedImages: `task` must be one of {', '.join(PAIRED_TASKS)}; got {task!r}")
        super().__init__(images, indices, image_size, train, seed)
        self.task = task
        if task == "edges2photo" and not isinstance(images, (ABFolder, SyntheticImages)):
            edge_map(torch.ones(1, 3, 8, 8))  # fail now, not in a DataLoader worker, if kornia is missing

    def __getitem__(self, i: int) -> Pair:
        if not 0 <= i < len(self.indices):
            raise IndexError(f"PairedImages: index {i} out of range for {len(self.indices)} pairs")
        key = f"jitter:{self.seed}:{self.epoch}:{i}"
        skipped: list[str] = []
        image = self._load(i, skipped)  # (4, H, W): RGB and alpha
        given = None
        if isinstance(self.images, ABFolder):
            given, image = self.images.split(image)
        elif self.task == "edges2photo" and isinstance(self.images, SyntheticImages):
            edges = self.images.edges(self.indices[i])
            given = torch.cat([edges.expand(3, -1, -1), torch.ones_like(edges)])
        # Equal seeds give the input the photo's crop and flip.
        photo = self._crop(image, random.Random(key))
        if given is None:
            derive = grey if self.task == "colorize" else edge_map
            given = torch.cat([derive(photo[None, :3])[0], photo[3:]])
        else:
            given = self._crop(given, random.Random(key))
        return Pair(given[:3], photo[:3], given[3:], photo[3:], "\n".join(skipped))
