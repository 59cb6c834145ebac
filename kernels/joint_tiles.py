r"""What the two joint forward kernels (``joint_histogram``, ``parzen_joint``) share: their grid, tile indexing,
partial sums and launch.

Each program accumulates one K1 tile × K2 tile of :math:`A_x^\top \operatorname{diag}(w) A_y` over one split of a
row's pixels with ``tl.dot`` and stores it in its split's partial sum (splits × M × K × K); the launcher sums the
partials in split order, so the result is deterministic for a given config.
"""

import torch
import triton
import triton.language as tl

from .common import check_grid, launch, n_bucket


def pair_grid(op: str, rows: int, bins: int, splits: int):
    """Grid of the joint forward kernels: rows on axis 0, K1 tiles × K2 tiles on axis 1, pixel splits on axis 2."""
    return lambda meta: check_grid(
        op, (rows, triton.cdiv(bins, meta["BLOCK_K1"]) * triton.cdiv(bins, meta["BLOCK_K2"]), splits)
    )


@triton.jit
def tile_pair(K, BLOCK_K1: tl.constexpr, BLOCK_K2: tl.constexpr):
    """First bins of this program's K1 tile and K2 tile in a ``pair_grid`` launch."""
    tiles2 = tl.cdiv(K, BLOCK_K2)
    return (tl.program_id(1) // tiles2) * BLOCK_K1, (tl.program_id(1) % tiles2) * BLOCK_K2


@triton.jit
def store_partial(partial_ptr, acc, row, k1, k2, M, K):
    """Store this program's tile ``acc`` of bins k1 × k2 in its split's partial sum, (splits, M, K, K) at
    ``partial_ptr``; the split is grid axis 2."""
    out = partial_ptr + ((tl.program_id(2) * M + row) * K + k1[:, None]) * K + k2[None, :]
    tl.store(out, acc, mask=(k1[:, None] < K) & (k2[None, :] < K))


def launch_partials(kernel, op: str, splits: int, *args, K: int, **kwargs) -> torch.Tensor:
    """Launch joint forward ``kernel`` over its first argument, the values (M, N), on its ``pair_grid`` (errors
    name ``op``), with the partials, M, N, K and N_BUCKET added by keyword; the sum of the partials (M, K, K), in
    split order.

    Autotuned, except under ``torch.use_deterministic_algorithms``, where the block sizes that group the
    partial sums stay fixed (``common.launch``).
    """
    rows, n = args[0].shape
    partials = args[0].new_empty(splits, rows, K, K)
    launch(
        kernel,
        pair_grid(op, rows, K, splits),
        args[0].device,
        *args,
        partial_ptr=partials,
        M=rows,
        N=n,
        K=K,
        N_BUCKET=n_bucket(n),
        fixed=torch.are_deterministic_algorithms_enabled(),
        **kwargs,
    )
    return partials[0] if splits == 1 else partials.sum(0)


def sorted_by_x(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None):
    """x, y and w (or None) with each row's pixels in increasing x. The joint sums are sums over pixels, so
    their order is free; a pixel block then spans few bins of x and reaches few K1 tiles. Stable, so that the
    order, and so the sum, stays deterministic."""
    x, order = x.sort(dim=1, stable=True)
    return x, y.gather(1, order), None if w is None else w.gather(1, order)


def input_precision(precision: str, like: torch.Tensor) -> str:
    """The ``tl.dot`` input precision for inputs like ``like``: ``precision``, but "ieee" for fp64 ones, which
    compute in fp64 throughout."""
    return "ieee" if like.dtype == torch.float64 else precision
