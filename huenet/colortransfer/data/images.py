"""Image files in and out at their real bit depth, with the alpha channel kept aside.

Pillow decodes 16-bit RGB PNG and TIFF files to 8 bits and cannot write them, and converting a 16-bit grey
image to RGB clips it at 255 (almost white). So 16-bit RGB PNGs are read and written with pypng, 16-bit
TIFFs with tifffile, and everything else with Pillow; each is scaled by its real range into [0, 1].

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "grey16.png")
    >>> write_image(path, torch.full((3, 2, 2), 0.5), bits=16)
    >>> picture = read_image(path)
    >>> picture.bits, round(float(picture.rgb.mean()), 4), picture.alpha is None
    (16, 0.5, True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

#: Extensions we read; writing takes WRITE_EXTENSIONS.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
WRITE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Formats that can hold 16 bits per channel and an alpha channel.
SIXTEEN_BIT_EXTENSIONS = (".png", ".tif", ".tiff")
ALPHA_EXTENSIONS = (".png", ".tif", ".tiff", ".webp")
# What decoders raise for a file that is not an image, is truncated or has a broken structure.
UNREADABLE_ERRORS = (OSError, ValueError, UnidentifiedImageError, SyntaxError, Image.DecompressionBombError, EOFError)


@dataclass
class Picture:
    """A decoded image: ``rgb`` (3, H, W) float32 in [0, 1], ``alpha`` (1, H, W) in [0, 1] or None, and the
    file's bits per channel (8 or 16)."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    bits: int


def _from_array(array: np.ndarray, scale: float, bits: int) -> Picture:
    """(H, W), (H, W, 1..4) integer or float array -> Picture; grey becomes three equal channels."""
    values = torch.from_numpy(np.ascontiguousarray(array).astype(np.float32) / scale).clamp_(0, 1)
    if values.ndim == 2:
        values = values[..., None]
    values = values.permute(2, 0, 1)
    colour = values[:3] if values.shape[0] >= 3 else values[:1].expand(3, -1, -1)
    has_alpha = values.shape[0] in (2, 4)
    alpha = values[-1:].clone() if has_alpha else None
    return Picture(colour.contiguous(), alpha, bits)


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        header = f.read(25)
    return header[24] if len(header) == 25 and header[12:16] == b"IHDR" else 8


def _read_png16(path: Path) -> Picture:
    import png  # pypng: the one reader that keeps 16-bit RGB(A) PNG samples

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, planes)
    return _from_array(array, float(2 ** info["bitdepth"] - 1), 16)


def _read_tiff16(path: Path) -> Picture:
    import tifffile

    array = tifffile.imread(path)
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar (C, H, W) storage
    scale = float(np.iinfo(array.dtype).max) if np.issubdtype(array.dtype, np.integer) else 1.0
    return _from_array(array, scale, 16)


def read_image(path: str | os.PathLike) -> Picture:
    """Decode an image file fully at its real range; raises one of :data:`UNREADABLE_ERRORS` if it cannot."""
    path = Path(path)
    with Image.open(path) as image:
        image.load()
        if image.format == "PNG" and image.mode not in ("I", "I;16", "I;16B", "I;16L") and _png_bit_depth(path) == 16:
            return _read_png16(path)
        if image.format == "TIFF" and max(image.tag_v2.get(258, (8,))) == 16:
            return _read_tiff16(path)
        if image.mode in ("I", "I;16", "I;16B", "I;16L"):
            # 16-bit grey (Pillow's "I" for 16-bit PNGs too): scale by the 16-bit range, never clip at 255.
            return _from_array(np.asarray(image, dtype=np.float32), 65535.0, 16)
        if image.mode == "F":
            return _from_array(np.asarray(image, dtype=np.float32), 1.0, 16)
        has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
        converted = image.convert("RGBA" if has_alpha else "RGB")
        return _from_array(np.asarray(converted), 255.0, 8)


def check_writable(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as an image file to write, or a ValueError naming ``flag`` when its extension is not one."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_EXTENSIONS:
        raise ValueError(f"{flag}: {str(path)!r} has no image extension; use one of {', '.join(WRITE_EXTENSIONS)}")
    return path


def write_image(path: str | os.PathLike, rgb: torch.Tensor, alpha: torch.Tensor | None = None, bits: int = 8) -> None:
    """Write ``rgb`` (3, H, W) in [0, 1] (and ``alpha`` (1, H, W), where the format keeps it) atomically.

    16 bits per channel are written to .png and .tif files and 8 to the others; the file appears complete or
    not at all (written to a temporary name, then renamed).
    """
    path = check_writable(path, "path")
    suffix = path.suffix.lower()
    channels = rgb if alpha is None or suffix not in ALPHA_EXTENSIONS else torch.cat([rgb, alpha])
    sixteen = bits == 16 and suffix in SIXTEEN_BIT_EXTENSIONS
    peak = 65535 if sixteen else 255
    array = (channels.detach().float().clamp(0, 1) * peak + 0.5).cpu().numpy()
    array = np.moveaxis(array.astype(np.uint16 if sixteen else np.uint8), 0, -1)
    tmp = path.with_name(f".{path.name}.partial{suffix}")
    try:
        if sixteen and suffix == ".png":
            import png

            height, width, planes = array.shape
            with open(tmp, "wb") as f:
                png.Writer(width, height, greyscale=False, alpha=planes == 4, bitdepth=16).write(
                    f, array.reshape(height, width * planes)
                )
        elif sixteen:
            import tifffile

            tifffile.imwrite(tmp, array, photometric="rgb")
        else:
            Image.fromarray(array).save(tmp, format=Image.registered_extensions()[suffix])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
