"""Where training runs: device choice and the torchrun / DistributedDataParallel process group."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; ``"cpu"``; ``"cuda"`` (or ``"cuda:N"``), which must exist.

    Raises:
        ValueError: an unknown name, or CUDA asked for but not available.
    """
    if not isinstance(name, str) or (name not in DEVICES and not name.startswith("cuda:")):
        raise ValueError(f"resolve_device: `device` must be one of {', '.join(DEVICES)} (or cuda:N); got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"resolve_device: `device` must be cpu or auto on this machine (it has no CUDA); got {name!r}")
    try:
        device = torch.device(name)
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"there are {torch.cuda.device_count()} CUDA devices")
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"resolve_device: `device` must name a device of this machine; got {name!r} ({err})") from err
    return device


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a new allocation on ``device``: free CUDA memory, or the RAM Linux reports available;
    None where that is unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job: rank, world size and device. A plain run is rank 0 of 1."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and prints progress."""
        return self.rank == 0


def init_distributed(device: str) -> Distributed:
    """Join the process group that ``torchrun`` set up (env ``WORLD_SIZE`` > 1), or run alone.

    Each process gets the GPU of its ``LOCAL_RANK`` (nccl) or shares the CPU (gloo).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    resolved = resolve_device(device)
    if world_size <= 1:
        return Distributed(0, 1, resolved)
    if resolved.type == "cuda":
        resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), resolved)


def shutdown_distributed(ctx: Distributed) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(ctx: Distributed, values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over all processes (``values`` itself when running alone)."""
    if ctx.enabled:
        values = values.clone()
        dist.all_reduce(values)
        values /= ctx.world_size
    return values


def barrier(ctx: Distributed) -> None:
    if ctx.enabled:
        dist.barrier()


def configure_threads(threads: int | None) -> int:
    """Set torch's CPU threads: ``threads``, else ``OMP_NUM_THREADS`` if set (torchrun sets 1), else half the
    logical CPUs (at least 1). Returns the number in use.

    Half, because logical CPUs are usually hyper-threads and because on a small shared machine two threads
    that must meet at every op's barrier run small tensors many times slower than one when another process
    holds a core.
    """
    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) // 2))
    return torch.get_num_threads()


class ResumableSampler(DistributedSampler):
    """A DistributedSampler whose next epoch can start ``skip`` samples in, to resume a run mid-epoch."""

    skip = 0

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return self.num_samples - self.skip


@contextlib.contextmanager
def stop_on_signals():
    """Record SIGINT / SIGTERM in the yielded dict instead of dying, so the loop can stop at a step boundary.

    A second SIGINT raises KeyboardInterrupt at once (checkpoints are written atomically: none is torn).
    """
    received: dict[str, int] = {}
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        yield received
        return

    def handler(signum, frame):
        if signum == signal.SIGINT and received:
            raise KeyboardInterrupt
        received.setdefault("signum", signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
