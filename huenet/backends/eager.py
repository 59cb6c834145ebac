"""The eager backend: windowed, chunked soft and joint histograms with backward passes that recompute.

Like every backend it takes values in bin units (M, N) and the bin-unit ``Binning`` (lo = 0, width 1);
:class:`EagerBackend` registers the passes below as custom ops (custom_ops.py).

Two facts make this fast and lean (docs/math.md derives them):

* The kernel has compact support in floating point: a pixel at u (in bin units) has membership below half
  the machine epsilon outside the virtual bins floor(u) - R .. floor(u) + R, with R from
  ``Binning.support_radius`` (7 bins at bandwidth 0.4 in fp32). Mirror and periodic images fold into that
  same window through ``Binning.fold_table``, so each pixel needs one window of 2R+1 bins.
* Within the window the memberships are differences of one sigmoid per bin edge, pi_j = s_j - s_{j+1}
  with s_e = sigmoid((u - e) / bandwidth): 2R+2 sigmoids per pixel, not 2K per image.

Pixels are processed in chunks so that no temporary exceeds ``CHUNK_ELEMENTS`` elements, and the backward
passes recompute the memberships from the saved inputs instead of saving any (B, N, K) tensor. Windows
accumulate into K+1 bins, the last a dump for virtual bins that fold nowhere, so no per-element masking is
needed. When the bandwidth is so wide that a window would cover every virtual bin that folds into a real one,
all pixels share that one fixed window (the dense fallback), and the joint histogram becomes a matmul.
"""

from __future__ import annotations

import functools

import torch

from ..binning import Binning
from . import parzen_dense, reference
from .custom_ops import CustomOpBackend

# Budget for all per-chunk temporaries together, in 4-byte units (int64 indices count twice): 16 MB, small
# next to what the dense reference needs and large enough to amortise the per-chunk overhead.
CHUNK_ELEMENTS = 1 << 22


class _Layout:
    """Window placement for one binning and dtype, with the fold table of every window position."""

    def __init__(self, binning: Binning, dtype: torch.dtype, device):
        window = binning.window(dtype)
        self.fixed, self.radius, self.size = window.fixed, window.radius, window.size
        self.first, self.last = window.first, window.last
        table = binning.fold_table(self.first, self.last + self.size, device)
        # (positions, size): real bins of each window position; contiguous, so that rows are gathered by index.
        self.windows = table.unfold(0, self.size, 1).contiguous()
        # Edge offsets scaled by the bandwidth: the sigmoid argument is u' - offsets' with u' = (u - base) / W.
        self.offsets = torch.arange(self.size + 1, dtype=dtype, device=device) / binning.bandwidth
        self.binning = binning

    def window(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge sigmoids (M, n, size + 1) and real bins (M, n, size) of the windows of u (M, n)."""
        # Non-finite values must not reach the integer index maths; the public op turns their rows into NaN.
        u = torch.nan_to_num(u, nan=0.0, posinf=0.0, neginf=0.0)
        base = torch.clamp(torch.floor(u) - self.radius, self.first, self.last)
        sig = torch.sigmoid(((u - base) / self.binning.bandwidth).unsqueeze(-1) - self.offsets)
        rows = self.windows.index_select(0, (base - self.first).long().flatten())
        return sig, rows.view(*u.shape, self.size)


@functools.lru_cache(maxsize=64)
def _layout(binning: Binning, dtype: torch.dtype, device: torch.device) -> _Layout:
    """The layout of a binning, built once: every histogram call with the same binning reuses its tables
    (small fits call the histograms thousands of times, and building the tables cost as much as using them)."""
    return _Layout(binning, dtype, device)


def _memberships(sig: torch.Tensor) -> torch.Tensor:
    return sig[..., :-1] - sig[..., 1:]


def _derivatives(sig: torch.Tensor, binning: Binning) -> torch.Tensor:
    """d(membership)/du of each window bin, from the edge sigmoids."""
    ds = sig * (1 - sig) / binning.bandwidth
    return ds[..., :-1] - ds[..., 1:]


def _chunks(n_pixels: int, rows: int, per_pixel: int):
    step = max(1, CHUNK_ELEMENTS // max(1, rows * per_pixel))
    for start in range(0, n_pixels, step):
        yield slice(start, min(start + step, n_pixels))


def _weight_sums(u: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    if w is None:
        return torch.full(u.shape[:-1], float(u.shape[-1]), dtype=u.dtype, device=u.device)
    return w.sum(-1)


def _pad_dump(g: torch.Tensor) -> torch.Tensor:
    """Append a zero to every histogram axis, the dump bin's (ignored) entry."""
    return torch.nn.functional.pad(g, [0, 1] * (g.ndim - 1))


def soft_histogram_forward(u: torch.Tensor, w: torch.Tensor | None, binning: Binning) -> torch.Tensor:
    """p[m, k] = sum_x w[m, x] m_k(u[m, x]) / S_m with S_m = sum_x w[m, x], for u (M, N); returns (M, K)."""
    layout = _layout(binning, u.dtype, u.device)
    rows, n = u.shape
    # float64 sums: scatter_add_ adds pixel after pixel into one word per bin, and in fp32 a flat 512² image
    # (every pixel in the same few bins) comes out about 1e-3 too small.
    hist = u.new_zeros(rows, binning.bins + 1, dtype=torch.float64)
    for sl in _chunks(n, rows, 6 * (layout.size + 1)):
        sig, index = layout.window(u[:, sl])
        vals = _memberships(sig)
        if w is not None:
            vals = vals * w[:, sl].unsqueeze(-1)
        hist.scatter_add_(1, index.flatten(1), vals.flatten(1).to(torch.float64))
    return (hist[:, :-1] / _weight_sums(u, w).unsqueeze(-1).to(torch.float64)).to(u.dtype)


def soft_histogram_backward(
    g: torch.Tensor,
    u: torch.Tensor,
    w: torch.Tensor | None,
    p: torch.Tensor,
    binning: Binning,
    need_u: bool,
    need_w: bool,
):
    """(dL/du, dL/dw), each (M, N) or None, gathered over each pixel's window (no atomics):
    dL/du_x = (w_x / S) sum_j g_fold(j) d pi_j/du_x  and  dL/dw_x = (sum_j g_fold(j) pi_j(u_x) - <g, p>) / S."""
    layout = _layout(binning, u.dtype, u.device)
    rows, n = u.shape
    total = _weight_sums(u, w).unsqueeze(-1)
    g_scaled = _pad_dump(g / total)
    gp = (g * p).sum(-1, keepdim=True) / total
    grad_u = torch.empty_like(u) if need_u else None
    grad_w = torch.empty_like(u) if need_w else None
    for sl in _chunks(n, rows, 7 * (layout.size + 1)):
        sig, index = layout.window(u[:, sl])
        gathered = g_scaled.gather(1, index.flatten(1)).view_as(index)
        if need_u:
            gu = (gathered * _derivatives(sig, binning)).sum(-1)
            grad_u[:, sl] = gu if w is None else gu * w[:, sl]
        if need_w:
            grad_w[:, sl] = (gathered * _memberships(sig)).sum(-1) - gp
    return grad_u, grad_w


# Dense rows cost about 2(K+1)² multiply-adds per value in a BLAS matmul; the window outer products cost
# (2R+1)² scattered adds, each far dearer than a multiply-add, so dense rows win while (K+1)² <= 100 (2R+1)²
# (the timings are in docs/kernels.md, "The eager joint histogram").
_DENSE_ROWS_MAX_RATIO = 100.0


def _dense_rows(layout: _Layout, k1: int) -> bool:
    """Whether to build dense (n, K+1) membership rows and multiply them, rather than scatter window products."""
    return layout.fixed or k1 * k1 <= _DENSE_ROWS_MAX_RATIO * layout.size * layout.size


def _rows(values: torch.Tensor, index: torch.Tensor, k1: int) -> torch.Tensor:
    """Window values (M, n, size) scattered into dense folded rows (M, n, K+1)."""
    return values.new_zeros(*values.shape[:-1], k1).scatter_add_(-1, index, values)


def joint_histogram_forward(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, binning: Binning) -> torch.Tensor:
    """J[m, k1, k2] = sum_x w m_k1(x) m_k2(y) / S for x, y (M, N) with S = sum_x w; returns (M, K, K).

    Each pixel adds the outer product of its two windows, (2R+1)² values, at the windows' folded bins; for
    small K (and the dense fallback) the windows are first scattered into dense rows A1, A2 (n × (K+1)) and
    the sum is the batched matmul A1ᵀ diag(w) A2.
    """
    layout = _layout(binning, x.dtype, x.device)
    rows, n = x.shape
    k1 = binning.bins + 1
    dense = _dense_rows(layout, k1)
    # float64 sums across chunks, and for the pixel-by-pixel scatter (see soft_histogram_forward).
    joint = x.new_zeros(rows, k1, k1, dtype=torch.float64)
    for sl in _chunks(n, rows, 4 * (k1 + layout.size) if dense else 6 * layout.size * layout.size):
        sig_x, idx_x = layout.window(x[:, sl])
        sig_y, idx_y = layout.window(y[:, sl])
        a, b = _memberships(sig_x), _memberships(sig_y)
        if w is not None:
            b = b * w[:, sl].unsqueeze(-1)
        if dense:
            joint += torch.bmm(_rows(a, idx_x, k1).transpose(1, 2), _rows(b, idx_y, k1))
        else:
            flat = (idx_x.unsqueeze(-1) * k1 + idx_y.unsqueeze(-2)).flatten(1)
            products = (a.unsqueeze(-1) * b.unsqueeze(-2)).flatten(1).to(torch.float64)
            joint.view(rows, -1).scatter_add_(1, flat, products)
    return (joint[:, :-1, :-1] / _weight_sums(x, w).to(torch.float64)[:, None, None]).to(x.dtype)


def joint_histogram_backward(
    g: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None,
    joint: torch.Tensor,
    binning: Binning,
    need_x: bool,
    need_y: bool,
    need_w: bool,
):
    """(dL/dx, dL/dy, dL/dw), each (M, N) or None, with G = dL/dJ / S gathered onto each pixel's window pair:
    dL/dx = w · sum_{j1 j2} G d pi_j1(x) pi_j2(y), dL/dy likewise, dL/dw = sum G pi_j1(x) pi_j2(y) - <dL/dJ, J>/S."""
    layout = _layout(binning, x.dtype, x.device)
    rows, n = x.shape
    k1 = binning.bins + 1
    dense = _dense_rows(layout, k1)
    total = _weight_sums(x, w)
    g_scaled = _pad_dump(g / total[:, None, None])
    gj = (g * joint).flatten(1).sum(-1, keepdim=True) / total.unsqueeze(-1)
    grads = [torch.empty_like(x) if need else None for need in (need_x, need_y, need_w)]
    for sl in _chunks(n, rows, 6 * (k1 + layout.size) if dense else 5 * layout.size * layout.size):
        sig_x, idx_x = layout.window(x[:, sl])
        sig_y, idx_y = layout.window(y[:, sl])
        a, b = _memberships(sig_x), _memberships(sig_y)
        if dense:
            # gb[n, j1] = sum_k2 G[fold(j1), k2] B[n, k2] and ag[n, j2] = sum_k1 A[n, k1] G[k1, fold(j2)].
            gb = torch.bmm(_rows(b, idx_y, k1), g_scaled.transpose(1, 2)).gather(-1, idx_x)
            ag = torch.bmm(_rows(a, idx_x, k1), g_scaled).gather(-1, idx_y)
        else:
            flat = (idx_x.unsqueeze(-1) * k1 + idx_y.unsqueeze(-2)).flatten(1)
            window_g = g_scaled.flatten(1).gather(1, flat).view(*idx_x.shape, layout.size)
            gb = (window_g @ b.unsqueeze(-1)).squeeze(-1)  # sum_j2 G[j1, j2] b_j2
            ag = (a.unsqueeze(-2) @ window_g).squeeze(-2)  # sum_j1 a_j1 G[j1, j2]
        ws = None if w is None else w[:, sl]
        if need_x:
            gx = (gb * _derivatives(sig_x, binning)).sum(-1)
            grads[0][:, sl] = gx if ws is None else gx * ws
        if need_y:
            gy = (ag * _derivatives(sig_y, binning)).sum(-1)
            grads[1][:, sl] = gy if ws is None else gy * ws
        if need_w:
            grads[2][:, sl] = (gb * a).sum(-1) - gj
    return tuple(grads)


class EagerBackend(CustomOpBackend):
    """The passes of this module as ``torch.ops.huenet.eager_*``; the entropies are the reference's plain torch."""

    name = "eager"

    def soft_histogram_forward(self, u, w, binning):
        return soft_histogram_forward(u, w, binning)

    def soft_histogram_backward(self, g, u, w, p, binning, need_u, need_w):
        return soft_histogram_backward(g, u, w, p, binning, need_u, need_w)

    def joint_histogram_forward(self, x, y, w, binning):
        return joint_histogram_forward(x, y, w, binning)

    def joint_histogram_backward(self, g, x, y, w, joint, binning, need_x, need_y, need_w):
        return joint_histogram_backward(g, x, y, w, joint, binning, need_x, need_y, need_w)

    def entropies(self, joint):
        return reference.entropies(joint)

    def parzen_joint(self, x, y, w, centres, windows):
        return parzen_dense.eager_joint(x, y, w, centres, windows, CHUNK_ELEMENTS)


BACKEND = EagerBackend()
