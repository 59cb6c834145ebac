r"""The three Hue-Net tasks (``--task``): what G is given, what the losses compare, and their defaults.

- ``transfer`` (unpaired): ``output = G(source, hist(target))`` for random (source, target) photos; D sees
  single images, the source counting as real.
- ``colorize`` (paired): the input is the photo's luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (BT.601, the Y of
  :func:`huenet.color.rgb_to_yuv`) repeated in 3 channels, so G keeps one input layout for every task. The
  EMD compares the chroma (U, V) of output and reference, D_MI the luma (Y) of output and input: a colouring
  must keep the input's lightness structure and take its colours from the reference.
- ``edges2photo`` (paired): the input is an edge map drawn as black edges on white (as pix2pix's
  edges2shoes), in 3 channels. The EMD compares all of Y, U and V (the edges carry no brightness, so the
  reference gives it), D_MI the Y of output and edge map (the output's light/dark changes must follow the
  lines).

For the paired tasks the reference during training is the ground-truth photo itself (as in the official
code); at test time any exemplar works. D is conditional there: it judges (input, image) pairs.

Example:
    >>> photo = torch.rand(2, 3, 16, 16)
    >>> grey(photo).shape, bool((grey(photo)[:, 0] == grey(photo)[:, 2]).all())
    (torch.Size([2, 3, 16, 16]), True)
    >>> {k: v for k, v in task_defaults("colorize").items() if k != "colorspace"}
    {'hist_channels': 'uv', 'mi_channels': 'y', 'lambda_hist': 20.0, 'lambda_mi': 1.0, 'epochs': 3}
"""

from __future__ import annotations

import torch

from ...color import rgb_to_yuv

TASKS = ("transfer", "colorize", "edges2photo")
PAIRED_TASKS = ("colorize", "edges2photo")

# The settings each task changes, when the user gives none: colour space, then per colour space the
# channels of the EMD (output <-> reference) and D_MI (output <-> input) terms, and lambda_hist (the official
# code's per-task weights). transfer keeps HueNetLoss's own channel defaults (None).
_COLORSPACE = {"transfer": "hsv", "colorize": "yuv", "edges2photo": "yuv"}
_CHANNELS = {
    ("transfer", "hsv"): (None, None),
    ("transfer", "yuv"): (None, None),
    ("colorize", "yuv"): ("uv", "y"),
    ("colorize", "hsv"): ("h", "v"),
    ("edges2photo", "yuv"): ("yuv", "y"),
    ("edges2photo", "hsv"): ("hsv", "v"),
}
_LAMBDA_HIST = {"transfer": 100.0, "colorize": 20.0, "edges2photo": 100.0}
# lambda_mi: the official code's 1, except for transfer, where 1 lets dark speckle grow in flat regions and the
# V-SSIM to the source fall below Reinhard's during training; 4 keeps it above while the hue EMD still beats
# Reinhard's (the measurements are in docs/training.md).
_LAMBDA_MI = {"transfer": 4.0, "colorize": 1.0, "edges2photo": 1.0}
# Default passes over the training pairs: the paired tasks' validation EMD levels off after 3, which keeps the
# default run to a few minutes on a CPU (docs/training.md).
_EPOCHS = {"transfer": 6, "colorize": 3, "edges2photo": 3}

# pix2pix's Canny settings on a [0, 1] luma: kornia's defaults (5x5 Gaussian, sigma 1, thresholds on the
# unnormalised Sobel magnitude, on which a unit step reaches about 2.6).
CANNY_THRESHOLDS = (0.1, 0.2)
# An image counts as an edge map when this share of its pixels is near black or near white and grey.
_EDGE_MAP_SHARE = 0.97


def check_task(task: str, flag: str = "--task") -> str:
    """``task`` itself if it is one of :data:`TASKS`; else a ValueError naming ``flag`` and the choices."""
    if task not in TASKS:
        raise ValueError(f"{flag} must be one of {', '.join(TASKS)}; got {task!r}")
    return task


def task_defaults(task: str, colorspace: str | None = None) -> dict:
    """The defaults of ``task`` (in ``colorspace``, default the task's): colorspace, channels, lambda_hist,
    lambda_mi, epochs."""
    space = colorspace or _COLORSPACE[check_task(task)]
    hist, mi = _CHANNELS[(task, space)]
    return dict(
        colorspace=space,
        hist_channels=hist,
        mi_channels=mi,
        lambda_hist=_LAMBDA_HIST[task],
        lambda_mi=_LAMBDA_MI[task],
        epochs=_EPOCHS[task],
    )


def per_task(setting: str) -> str:
    """Each task's default of ``setting`` (a key of :func:`task_defaults`), in words, for ``--help``.

    Example:
        >>> per_task("lambda_mi")
        'transfer 4.0, colorize 1.0, edges2photo 1.0'
    """
    return ", ".join(f"{task} {_words(task_defaults(task)[setting])}" for task in TASKS)


def _words(value) -> str:
    return "HueNetLoss's" if value is None else str(value)


def grey(photo: torch.Tensor) -> torch.Tensor:
    """The colorize input of RGB ``photo`` (..., 3, H, W) in [0, 1]: its luma Y, in 3 equal channels."""
    return rgb_to_yuv(photo)[..., :1, :, :].clamp(0, 1).expand_as(photo).contiguous()


def edge_map(photo: torch.Tensor) -> torch.Tensor:
    """The edges2photo input of RGB ``photo`` (..., 3, H, W) in [0, 1]: kornia's Canny on its luma.

    Black (0) edges on white (1), in 3 equal channels. Needs kornia (``pip install 'huenet[edges]'``).

    Raises:
        ImportError: kornia is not installed (with the install command).
    """
    try:
        from kornia.filters import canny
    except ImportError as err:
        raise ImportError(
            "deriving edge maps from photos needs kornia: pip install 'huenet[edges]' (or give "
            "pix2pix AB images, or train on the built-in set)"
        ) from err
    batch = photo.reshape(-1, *photo.shape[-3:]).float()
    luma = rgb_to_yuv(batch)[:, :1].clamp(0, 1)
    _, edges = canny(luma, *CANNY_THRESHOLDS)
    return (1 - edges).expand_as(batch).reshape(photo.shape).to(photo.dtype).contiguous()


def looks_like_edge_map(image: torch.Tensor) -> bool:
    """Whether RGB ``image`` (3, H, W) in [0, 1] is a line drawing: grey, almost all near black or white."""
    grey_ = (image.amax(0) - image.amin(0)) < 0.1
    extreme = (image.mean(0) < 0.15) | (image.mean(0) > 0.85)
    return bool((grey_ & extreme).float().mean() >= _EDGE_MAP_SHARE)


def is_grey(image: torch.Tensor) -> bool:
    """Whether RGB ``image`` (3, H, W) in [0, 1] has (almost) no colour: every channel within 2/255."""
    return bool((image.amax(0) - image.amin(0)).max() <= 2 / 255)


def paired_input(task: str, image: torch.Tensor) -> tuple[torch.Tensor, str | None]:
    """The input a ``task`` checkpoint takes, from RGB ``image`` (3, H, W): (input, a note or None).

    colorize takes a grey photo: a colour one is converted to grey (with a note). edges2photo takes an edge
    map as it is.

    Raises:
        ValueError: an edge map given for colorize, or a photo for edges2photo (naming the task).
    """
    if task == "colorize":
        if looks_like_edge_map(image):
            raise ValueError(
                "this is a colorize checkpoint, which takes a grey (or colour) photo, but the image "
                "looks like an edge map (black lines on white): that is the input of an edges2photo "
                "run"
            )
        if is_grey(image):
            return image, None
        return grey(image), "a colour image given to a colorize checkpoint: converted to grey (BT.601 luma)"
    if task == "edges2photo":
        if not looks_like_edge_map(image):
            raise ValueError(
                "this is an edges2photo checkpoint, which takes an edge map (black lines on white, "
                "like pix2pix's edges2shoes), but the image looks like a photo: use a colorize or "
                "transfer run for photos, or draw its edges first (e.g. kornia.filters.canny)"
            )
        return image, None
    raise ValueError(f"paired_input: `task` must be one of {', '.join(PAIRED_TASKS)}; got {task!r}")
