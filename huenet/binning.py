"""The bin layout shared by every backend: K bins of width L on [lo, hi], a sigmoid-difference kernel of
width W = bandwidth·L, and a boundary mode."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Window:
    """Each value u (bin units) covers the ``size`` virtual bins from clamp(floor(u) - radius, first, last).

    When the bandwidth is so wide that 2·radius + 1 bins would cover every virtual bin that folds into a real
    one, all values share one fixed window (first == last), the dense fallback.
    """

    radius: int
    size: int
    first: int
    last: int

    @property
    def fixed(self) -> bool:
        return self.first == self.last


@dataclass(frozen=True)
class Binning:
    """Bins, value range, bandwidth (in bin widths) and boundary mode of a soft histogram.

    Example:
        >>> Binning(bins=256, lo=0.0, hi=1.0, bandwidth=0.4, boundary="reflect").width
        0.00390625
    """

    bins: int
    lo: float
    hi: float
    bandwidth: float
    boundary: str

    @property
    def width(self) -> float:
        """Bin width L = (hi - lo) / K."""
        return (self.hi - self.lo) / self.bins

    def to_bin_units(self, z: torch.Tensor) -> torch.Tensor:
        """u = (z - lo) / L, so that bin k spans [k, k+1); circular values are first wrapped into [0, K)."""
        u = (z - self.lo) / self.width
        if self.boundary == "circular":
            u = torch.remainder(u, self.bins)
        return u

    def in_bin_units(self) -> "Binning":
        """This binning on values already mapped by ``to_bin_units``: lo = 0 and width 1, so bin k spans [k, k+1).

        Every backend takes values in bin units with this binning, where the value-unit formulas hold as written.
        """
        return Binning(self.bins, 0.0, float(self.bins), self.bandwidth, self.boundary)

    def support_radius(self, dtype: torch.dtype) -> int:
        """Radius R in bins beyond which the kernel is below half the dtype's machine epsilon.

        A bin whose nearest edge lies d bins from the value has membership at most exp(-d / bandwidth), and a
        bin more than R bins from floor(u) has d >= R, so R = ceil(bandwidth · ln(2 / eps)) truncates nothing
        that the dtype could represent next to 1. At bandwidth 0.4 this is 7 bins in fp32 and 15 in fp64.
        """
        return math.ceil(self.bandwidth * math.log(2.0 / torch.finfo(dtype).eps))

    def window(self, dtype: torch.dtype) -> "Window":
        """Placement of each pixel's window of virtual bins for values of ``dtype``; see ``Window``."""
        start, stop = self.virtual_span()
        radius = self.support_radius(dtype)
        if 2 * radius + 1 >= stop - start:
            return Window(radius, stop - start, start, start)
        # A window may start anywhere from start - size + 1 (its last bin = start) to stop - 1 (its first bin =
        # the last valid one); a pixel whose window lies further out is clamped there, where its true
        # memberships are below the truncation tolerance anyway.
        size = 2 * radius + 1
        return Window(radius, size, start - size + 1, stop - 1)

    def virtual_span(self) -> tuple[int, int]:
        """Virtual bins [start, stop) of the bare kernel that fold into a real bin (see ``fold_table``)."""
        k = self.bins
        return (0, k) if self.boundary == "none" else (-k, 2 * k)

    def fold_table(self, start: int, stop: int, device) -> torch.Tensor:
        """Real bin of each virtual bin j in [start, stop) of the bare kernel, or K (a dump bin) if none.

        The mirror images of the reflect mode contribute to bin k exactly what the bare kernel gives to
        virtual bin -k-1 (image 2lo - z) or 2K-1-k (image 2hi - z), because pi_k(2lo - z) = pi_{-k-1}(z); the
        periodic images of the circular mode contribute what it gives to k - K and k + K. So one window of the
        bare kernel per pixel, folded through this table, is the whole three-image membership. Virtual bins
        outside ``virtual_span`` belong to no image and go to the dump bin K, which callers discard.
        """
        k = self.bins
        j = torch.arange(start, stop, device=device)
        lo, hi = self.virtual_span()
        if self.boundary == "reflect":
            j = torch.where(j < 0, -j - 1, torch.where(j >= k, 2 * k - 1 - j, j))
        elif self.boundary == "circular":
            j = torch.where(j < 0, j + k, torch.where(j >= k, j - k, j))
        virtual = torch.arange(start, stop, device=device)
        return torch.where((virtual >= lo) & (virtual < hi), j, k)
