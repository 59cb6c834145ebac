"""Checkpoint files of a training run: atomic writes, RNG states, and loading a trained generator.

A checkpoint is written to a temporary file in the same folder, flushed to disk and then renamed over the old
one (``os.replace`` is atomic on POSIX and Windows), so a crash at any moment -- ``kill -9`` included -- leaves
either the previous checkpoint or the new one, never a torn file.

Checkpoints are shared, so reading one must never run code: it is read with ``torch.load(weights_only=True)``,
whose unpickler builds only tensors, numbers, strings and plain containers, and refuses any file that asks for
another class or function. Everything written here is of those types; the RNG states too (lists of ints and
tensors). Release 0.1.0 stored NumPy's RNG state as an array, so the unpickler may also rebuild NumPy arrays
(NumPy's rebuilder fills an array from bytes and calls nothing else), and :func:`set_rng_state` reads that form.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from .models import HueNetGenerator

CHECKPOINT_NAME = "checkpoint.pt"
_TMP_SUFFIX = ".tmp"
#: What a checkpoint must hold to rebuild the generator; a training checkpoint also holds TRAINING_KEYS.
GENERATOR_KEYS = ("config", "generator_config", "generator")
TRAINING_KEYS = GENERATOR_KEYS + (
    "discriminator",
    "opt_g",
    "opt_d",
    "scaler",
    "rng",
    "step",
    "epoch",
    "epoch_step",
    "world_size",
    "nonfinite_total",
    "elapsed",
)


# What a 0.1.0 checkpoint needs beyond the default allowlist: NumPy's array rebuilder (an array's own
# ``__reduce__`` names it, so it is found without importing NumPy's private module, which NumPy 2 renamed) under
# both of its module names, the array type, and the uint32 dtype of the RNG key.
_REBUILD_ARRAY = np.empty(0).__reduce__()[0]
_NUMPY_ARRAYS = [
    (_REBUILD_ARRAY, "numpy.core.multiarray._reconstruct"),
    (_REBUILD_ARRAY, "numpy._core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
]
# torch's weights-only refusal starts so, then names what the file asked for: a function or class to import
# ("GLOBAL posix.system") or a type to build ("but got <class 'numpy.dtypes.ObjectDType'>").
_REFUSAL = "Weights only load failed"
_REFUSED = re.compile(r"GLOBAL (\S+)|got <class '([^']+)'>")
_ONLY_DATA = "a checkpoint holds only tensors, numbers, strings and containers"


class CheckpointError(ValueError):
    """A file that is not a readable huenet checkpoint (truncated, another program's, not a checkpoint at all)."""


def checkpoint_path(run_or_file: str | os.PathLike) -> Path:
    """The checkpoint file of a run folder, or ``run_or_file`` itself if it is a file.

    Raises:
        FileNotFoundError: there is no such file, or the folder holds no checkpoint (the message names the path;
            a command line adds its flag).
    """
    path = Path(run_or_file)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r} (give a run folder or a .pt file)")
    return path


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` with :func:`torch.save` atomically: temporary file, fsync, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    # Persist the rename itself (the directory entry), where the platform allows opening a folder.
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Delete temporary files left by a writer that was killed mid-save (they are never read)."""
    for tmp in Path(folder).glob(f"{CHECKPOINT_NAME}.*{_TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", keys: tuple[str, ...] = GENERATOR_KEYS
) -> dict:
    """Read a checkpoint (a run folder or a file) with tensors mapped to ``device``; it must hold ``keys``.

    Nothing in the file is run: it is read weights-only (see the module's docstring).

    Raises:
        FileNotFoundError: see :func:`checkpoint_path`.
        CheckpointError: the file is truncated, not a torch file, asks for anything but tensors, numbers,
            strings, plain containers and NumPy arrays, or lacks ``keys``.
    """
    path = checkpoint_path(path)
    try:
        with torch.serialization.safe_globals(_NUMPY_ARRAYS):
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 -- a foreign or torn file fails in the unpickler, zip reader or torch
        message = str(err).strip()
        if message.startswith(_REFUSAL):
            refused = _REFUSED.search(message)
            asked = (refused.group(1) or refused.group(2)) if refused else "other objects"
            reason = f"it asks for {asked}; {_ONLY_DATA}"
        elif message:
            # The first sentence of torch's message (its later ones are advice for torch's own developers).
            reason = message.splitlines()[0].split(". ")[0][:120]
        else:
            reason = type(err).__name__
        raise CheckpointError(f"{str(path)!r} is not a readable checkpoint ({reason})") from err
    missing = [k for k in keys if k not in state] if isinstance(state, dict) else list(keys)
    if missing:
        raise CheckpointError(f"{str(path)!r} is not a huenet training checkpoint (it lacks {', '.join(missing)})")
    return state


def rng_state() -> dict:
    """The state of every RNG training uses: Python, NumPy, torch CPU and, if present, all CUDA devices.

    Only types a weights-only load rebuilds: Python's state is a tuple of ints, NumPy's Mersenne Twister
    a dict of its key as a list of ints and its scalars, torch's are byte tensors.
    """
    name, key, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = {"bit_generator": name, "key": key.tolist(), "pos": pos, "has_gauss": has_gauss, "gauss": gauss}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured (the CUDA states only if CUDA is available now).

    Also reads release 0.1.0's form, NumPy's own ``get_state()`` tuple with its key as an array.
    """
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        n = numpy_state
        numpy_state = (n["bit_generator"], np.asarray(n["key"], np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def load_generator(run_or_file: str | os.PathLike, device: str | torch.device = "cpu"):
    """The trained generator of a checkpoint, in eval mode on ``device``, and the run's config dict.

    Returns:
        ``(generator, config)``.

    Raises:
        FileNotFoundError, CheckpointError: see :func:`load_checkpoint`; also a CheckpointError when the stored
            weights do not fit the stored generator settings.
    """
    state = load_checkpoint(run_or_file, device)
    try:
        # Checkpoints written before the global curves existed have no such key; they had no curves.
        generator = HueNetGenerator(**{"global_mapping": "none", **state["generator_config"]}).to(device)
        generator.load_state_dict(state["generator"])
    except (TypeError, ValueError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0][:120]
        raise CheckpointError(
            f"{str(checkpoint_path(run_or_file))!r} holds a generator that cannot be rebuilt ({reason})"
        ) from err
    return generator.eval(), state["config"]
