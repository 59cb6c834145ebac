"""One intra-op thread for work made of many small tensor ops on the CPU."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def one_cpu_thread(device: torch.device):
    """Run the block with one intra-op thread when ``device`` is the CPU, then restore the process's setting.

    Many small ops (a few thousand values each) gain nothing from intra-op threads; on a CPU shared with other work
    the threads wait for each other's time slices, which made the LUT fit and the Parzen MI chunks tens of times
    slower with two threads than with one on a busy 2-core machine (docs/recolor.md, docs/drop-in.md).

    Example:
        >>> with one_cpu_thread(torch.device("cpu")):
        ...     torch.get_num_threads()
        1
    """
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
