r"""The 3D colour lookup table: trilinear application, the identity, blending and ``.cube`` files.

Example:
    >>> lut = ColorLUT.identity(9)
    >>> x = torch.rand(3, 8, 8)
    >>> torch.allclose(lut(x), x, atol=1e-6)
    True
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import _checks

__all__ = ["ColorLUT", "apply_lut", "identity_table", "check_strength"]

# Pixels per chunk when applying a table: small enough that a chunk's temporaries (a few MB) stay in the cache
# and the extra memory stays far below the photo's own, large enough that the per-chunk overhead is negligible.
APPLY_CHUNK = 2**17


def apply_lut(table: torch.Tensor, image: torch.Tensor, chunk: int = APPLY_CHUNK) -> torch.Tensor:
    r"""Map the colours of ``image`` through a 3D LUT by trilinear interpolation.

    For a colour :math:`(r, g, b)` with :math:`u = r (N - 1)` and so on, the output is
    :math:`\sum_{i,j,k \in \{0,1\}} w_i(u) w_j(v) w_k(w)\, T[\lfloor w \rfloor + k, \lfloor v \rfloor + j,
    \lfloor u \rfloor + i]` with :math:`w_1(u) = u - \lfloor u \rfloor`, :math:`w_0 = 1 - w_1`. Values are
    clamped to [0, 1] first. Differentiable with respect to the table (and the image).

    Computed as a linear blend along blue of two bilinear lookups in the (green, red) planes of the blue
    slices :math:`\lfloor w \rfloor` and :math:`\lfloor w \rfloor + 1`: the slices lie side by side in one 2D
    image, read by one 2D ``grid_sample`` (whose CPU kernel is vectorised; the 3D one took twice as long).

    Args:
        table: (3, N, N, N) indexed ``[channel, blue, green, red]`` (the .cube order: red varies fastest).
        image: (*, 3, H, W) RGB in [0, 1], any float dtype and device.
        chunk: pixels mapped at a time, which bounds the extra memory.

    Returns:
        (*, 3, H, W) in the image's dtype, on its device.
    """
    _checks.check_float_tensor("apply_lut", "image", image)
    if image.ndim < 3 or image.shape[-3] != 3:
        _checks.fail("apply_lut", "image", "of shape (*, 3, H, W)", f"shape {tuple(image.shape)}")
    dtype = image.dtype if image.dtype == torch.float64 else torch.float32
    planes = _slice_planes(table.to(image.device, dtype))
    lead, (h, w) = image.shape[:-3], image.shape[-2:]
    flat = image.reshape(-1, 3, h * w)
    grad = _needs_grad(table, image)
    out = None if grad else torch.empty(flat.shape, device=image.device, dtype=dtype)
    pieces = []
    for b in range(flat.shape[0]):
        for start in range(0, h * w, chunk):
            colours = flat[b, :, start : start + chunk].to(dtype)
            if grad:
                pieces.append(_lookup(planes, colours))
            else:
                _lookup(planes, colours, out=out[b, :, start : start + chunk])
    if grad:
        out = torch.cat(pieces, 1).reshape(flat.shape)
    return out.to(image.dtype).reshape(*lead, 3, h, w)


def _slice_planes(table: torch.Tensor) -> torch.Tensor:
    """(1, 6, N, N·N): for each blue slice k, channels 0-2 hold slice k and 3-5 slice k+1 (the last repeated),
    as an image of rows = green and columns = k·N + red."""
    n = table.shape[-1]
    upper = torch.cat([table[:, 1:], table[:, -1:]], 1)
    return torch.cat([table, upper]).permute(0, 2, 1, 3).reshape(1, 6, n, n * n)


def _lookup(planes: torch.Tensor, colours: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Trilinear lookup of colours (3, P) in the planes of :func:`_slice_planes`; (3, P), written to ``out``."""
    n = planes.shape[-2]
    u = colours.clamp(0, 1) * (n - 1)
    blue = u[2].floor().clamp_(max=n - 2)
    # grid_sample's (x, y) = (column, row), with -1 and 1 the first and last entries (align_corners). At red =
    # N - 1 the column's right neighbour is the next slice's first entry, but with weight exactly 0.
    grid = torch.stack([(blue * n + u[0]) * (2 / (n * n - 1)) - 1, u[1] * (2 / (n - 1)) - 1], -1)
    both = F.grid_sample(planes, grid.view(1, 1, -1, 2), mode="bilinear", padding_mode="border", align_corners=True)
    both, weight = both.view(6, -1), u[2] - blue
    if out is None:
        return torch.lerp(both[:3], both[3:], weight)
    return torch.lerp(both[:3], both[3:], weight, out=out)


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def identity_table(size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """The (3, N, N, N) table that maps every colour to itself."""
    ramp = torch.linspace(0, 1, size, dtype=dtype, device=device)
    b, g, r = torch.meshgrid(ramp, ramp, ramp, indexing="ij")
    return torch.stack([r, g, b])


class ColorLUT:
    r"""A 3D colour lookup table, applied by trilinear interpolation (:func:`apply_lut`).

    Args:
        table: (3, N, N, N) float tensor indexed ``[channel, blue, green, red]``, N >= 2.
        title: the name written to a .cube file.

    Example:
        >>> lut = ColorLUT.identity(9)
        >>> x = torch.rand(2, 3, 5, 7)
        >>> torch.allclose(lut(x), x, atol=1e-6)
        True
    """

    def __init__(self, table: torch.Tensor, title: str = "huenet"):
        _checks.check_float_tensor("ColorLUT", "table", table)
        n = table.shape[-1]
        if table.ndim != 4 or table.shape != (3, n, n, n) or n < 2:
            _checks.fail("ColorLUT", "table", "of shape (3, N, N, N) with N >= 2", f"shape {tuple(table.shape)}")
        self.table, self.title = table.detach(), title

    @property
    def size(self) -> int:
        return self.table.shape[-1]

    @classmethod
    def identity(cls, size: int = 17) -> ColorLUT:
        """The LUT that leaves every colour as it is."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            _checks.fail("ColorLUT.identity", "size", "an int >= 2", repr(size))
        return cls(identity_table(size))

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Apply to ``image`` (*, 3, H, W) in [0, 1], on its device, in chunks (see :func:`apply_lut`)."""
        return apply_lut(self.table, image)

    def blend(self, strength: float) -> ColorLUT:
        """The LUT ``(1 - strength) * identity + strength * self``: 0 changes nothing, 1 is this LUT.

        Trilinear interpolation is linear in the table, so this equals blending the two outputs.
        """
        check_strength("ColorLUT.blend", strength)
        ident = identity_table(self.size, self.table.dtype, self.table.device)
        return ColorLUT(torch.lerp(ident, self.table, float(strength)), self.title)

    def save_cube(self, path: str | os.PathLike) -> None:
        """Write an Adobe/Resolve ``.cube`` file (TITLE, LUT_3D_SIZE, DOMAIN_MIN/MAX, N^3 rows "r g b" with red
        varying fastest), atomically: the file appears complete or not at all."""
        path = Path(path)
        rows = self.table.detach().double().cpu().permute(1, 2, 3, 0).reshape(-1, 3).clamp(0, 1).tolist()
        lines = [
            f'TITLE "{self.title}"',
            f"LUT_3D_SIZE {self.size}",
            "DOMAIN_MIN 0.0 0.0 0.0",
            "DOMAIN_MAX 1.0 1.0 1.0",
        ]
        lines += [f"{r:.{CUBE_DIGITS}f} {g:.{CUBE_DIGITS}f} {b:.{CUBE_DIGITS}f}" for r, g, b in rows]
        tmp = path.with_name(f".{path.name}.partial")
        try:
            tmp.write_text("\n".join(lines) + "\n")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load_cube(cls, path: str | os.PathLike) -> ColorLUT:
        """Read a 3D ``.cube`` file; a malformed one raises a ValueError naming the file and the line."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not a text .cube file ({err.reason})") from None
        size, title, rows = None, "huenet", []
        last = 0
        for number, raw in enumerate(text.splitlines(), 1):
            last = number
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"{path}: line {number}"
            key, _, rest = line.partition(" ")
            if key == "TITLE":
                title = rest.strip().strip('"')
            elif key == "LUT_3D_SIZE":
                if size is not None or rows:
                    raise ValueError(f"{where}: LUT_3D_SIZE must come once, before the table")
                if not re.fullmatch(r"\d+", rest.strip()) or not 2 <= int(rest) <= 256:
                    raise ValueError(f"{where}: LUT_3D_SIZE must be an integer in [2, 256]; got {rest.strip()!r}")
                size = int(rest)
            elif key in ("DOMAIN_MIN", "DOMAIN_MAX"):
                expected = 0.0 if key == "DOMAIN_MIN" else 1.0
                values = _floats(rest, 3, where, key)
                if any(v != expected for v in values):
                    raise ValueError(f"{where}: only {key} {expected} {expected} {expected} is supported; got {rest}")
            elif key == "LUT_1D_SIZE":
                raise ValueError(f"{where}: a 1D LUT; only 3D .cube files (LUT_3D_SIZE) are supported")
            elif re.match(r"[-+.\d]", key):
                if size is None:
                    raise ValueError(f"{where}: a table row before LUT_3D_SIZE")
                rows.append(_floats(line, 3, where, "a table row"))
                if len(rows) > size**3:
                    raise ValueError(f"{where}: more than LUT_3D_SIZE^3 = {size**3} table rows")
            else:
                raise ValueError(f"{where}: unknown keyword {key!r}")
        if size is None:
            raise ValueError(f"{path}: line {last}: no LUT_3D_SIZE in the file")
        if len(rows) != size**3:
            raise ValueError(
                f"{path}: line {last}: the table ends after {len(rows)} rows; LUT_3D_SIZE {size} needs {size**3}"
            )
        table = torch.tensor(rows, dtype=torch.float64).reshape(size, size, size, 3).permute(3, 0, 1, 2)
        return cls(table.float().contiguous(), title)


# Decimal places of a .cube row: 1e-6 is 1/65 of a 16-bit level.
CUBE_DIGITS = 6


def _floats(text: str, count: int, where: str, what: str) -> list[float]:
    parts = text.split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{where}: {what} must be {count} finite numbers; got {text.strip()!r}")
    return values


def check_strength(op: str, strength: object) -> None:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        _checks.fail(op, "strength", "a number in [0, 1]", repr(strength))
