"""What every kernel module shares: loading pixels, autotuning (with configs that tests and gpu_check pin),
launching on a tensor's device, and grids within CUDA's limits.

Pixel blocks sit on grid axis 0 (up to 2^31 - 1 programs; axes 1 and 2 stop at 65535), and row offsets are
int64, so any image that fits in memory launches.
"""

import contextlib
import inspect
import os

import torch
import triton
import triton.language as tl


@triton.jit
def sanitize(u):
    """Clamp u to +-2^24 bins, where every membership of a real bin is 0 at any sane bandwidth, so that the
    int32 window maths cannot overflow; NaN becomes 0, and the caller turns such rows into NaN."""
    u = tl.minimum(tl.maximum(u, -16777216.0), 16777216.0)
    return tl.where(u == u, u, 0.0)


@triton.jit
def pixel_block(BLOCK_N: tl.constexpr):
    """Row (int64) and pixel offsets of this program of a ``pixel_grid`` launch."""
    return tl.program_id(1).to(tl.int64), tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)


@triton.jit
def load_values(u_ptr, row, offs, N):
    """Values (sanitized) of pixels ``offs`` of a row (int64); 0 for missing pixels."""
    return sanitize(tl.load(u_ptr + row * N + offs, mask=offs < N, other=0.0))


@triton.jit
def load_weights(w_ptr, row, offs, N, u):
    """Weights of pixels ``offs`` of a row (int64): 0 for missing pixels, 1 (in u's dtype) for the others when
    the launch is unweighted (``w_ptr`` None)."""
    if w_ptr is not None:
        w = tl.load(w_ptr + row * N + offs, mask=offs < N, other=0.0)
    else:
        w = (offs < N).to(u.dtype)
    return w


@triton.jit
def load_pixels(u_ptr, w_ptr, row, offs, N):
    """Values (sanitized) and weights of pixels ``offs`` of a row (int64), and which of them exist."""
    u = load_values(u_ptr, row, offs, N)
    return u, load_weights(w_ptr, row, offs, N, u), offs < N


def autotune(configs, key, **kwargs):
    """``triton.autotune`` with the tuning results cached on disk per GPU where the Triton version can
    (``cache_results``, newer than 3.6). ``launch`` decides when the tuner is bypassed.

    Besides ``key``, the tuner keys on the dtypes of the tensor arguments: an unweighted launch passes
    ``w_ptr=None`` (a constexpr, so the weight loads compile away), which tunes apart from a weighted one.
    """
    if "cache_results" in inspect.signature(triton.autotune).parameters:
        kwargs["cache_results"] = True
    return triton.autotune(configs=configs, key=key, **kwargs)


#: Whether the kernels were decorated under the Triton interpreter (TRITON_INTERPRET=1), which runs them on
#: CPU tensors but cannot autotune (it fails on several configs).
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
_PINNED: dict[object, int] = {}
# CUDA's grid limits: axis 0 up to 2^31 - 1 programs, axes 1 and 2 up to 65535.
GRID_LIMITS = (2**31 - 1, 65535, 65535)


@contextlib.contextmanager
def pinned(kernel, index: int):
    """Inside the block, launch autotuned ``kernel`` with its config ``configs[index]`` only.

    Tests use it to run every config under the interpreter; gpu_check uses it to check each config on a GPU.
    """
    _PINNED[kernel] = index
    try:
        yield kernel.configs[index]
    finally:
        del _PINNED[kernel]


def check_grid(op: str, grid: tuple) -> tuple:
    """``grid`` if every axis is within CUDA's limits; a clear error instead of a failed launch otherwise."""
    for axis, (size, limit) in enumerate(zip(grid, GRID_LIMITS)):
        if size > limit:
            raise ValueError(
                f"{op}: the launch needs {size} programs on grid axis {axis}, over CUDA's limit of "
                f"{limit}; split the batch (rows are B·C)"
            )
    return grid


def launch(kernel, grid, device: torch.device, *args, fixed: bool = False, **kwargs):
    """Launch autotuned ``kernel`` on ``device`` (not the current device), autotuned unless a config is pinned
    (``pinned``), the kernels are interpreted, or ``fixed`` (block sizes group the partial sums, so under
    ``torch.use_deterministic_algorithms`` a tuned choice could change the bits): then with that config or
    the first."""
    index = _PINNED.get(kernel)
    if index is None and (fixed or INTERPRETED):
        index = 0
    guard = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    with guard:
        if index is None:
            kernel[grid](*args, **kwargs)
        else:
            kernel.fn[grid](*args, **kwargs, **kernel.configs[index].all_kwargs())


def weight_sums(values: torch.Tensor, w: torch.Tensor | None, trailing: int = 1) -> torch.Tensor | float:
    """S_m = sum_x w_mx of each row, shaped (M, 1, ...) with ``trailing`` unit dims so that it divides per-row
    results; for unweighted rows the pixel count N as a Python number, which divides without a tensor made
    (and a fill launched) per call."""
    if w is not None:
        return w.sum(1).reshape(-1, *([1] * trailing))
    return float(values.shape[1])


def n_bucket(n: int) -> int:
    """Autotuning key for a pixel count: its power-of-two bucket, so sizes in one octave share a tuning."""
    return 1 << max(0, (n - 1).bit_length())


def partial_splits(rows: int, n: int, tiles: int) -> int:
    """Pixel splits for the partials kernels: enough programs to fill a large GPU, each with >= 2048 pixels."""
    return max(1, min(n // 2048, 2048 // max(1, rows * tiles)))


def pixel_grid(op: str, rows: int, n: int):
    """Grid of the per-pixel kernels: pixel blocks on axis 0, rows on axis 1."""
    return lambda meta: check_grid(op, (triton.cdiv(n, meta["BLOCK_N"]), rows))


def launch_pixels(kernel, op: str, *args, **kwargs):
    """Launch per-pixel ``kernel`` (``pixel_block``) on the ``pixel_grid`` of its first argument, the values
    (M, N), with N and its autotuning bucket N_BUCKET added by keyword."""
    rows, n = args[0].shape
    launch(kernel, pixel_grid(op, rows, n), args[0].device, *args, N=n, N_BUCKET=n_bucket(n), **kwargs)
