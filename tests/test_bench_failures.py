"""A benchmark point that breaks fails; only missing optional software (and a dense baseline's OOM) skips."""

import os
import sys

import pytest
import torch

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench import cases, runner  # noqa: E402
from bench.grid import Point, Size  # noqa: E402

CPU = torch.device("cpu")


def _point(backend, case="joint_histogram"):
    return Point(case, "fwd", backend, Size(1, 8, 16))


@pytest.mark.parametrize("backend", ["compile", "triton", "eager", "kornia"])
def test_an_error_while_building_or_running_fails_the_point(backend, monkeypatch):
    def broken(point, device):
        raise RuntimeError(f"{point.backend} kernel failed to compile")

    monkeypatch.setattr(cases, "build", broken)
    with pytest.raises(RuntimeError, match="failed to compile"):
        runner._prepare(_point(backend), CPU)


@pytest.mark.parametrize("backend,skips", [("eager", False), ("triton", False), ("reference", True), ("compile", True)])
def test_out_of_memory_skips_only_the_dense_baselines(backend, skips, monkeypatch):
    def out_of_memory(point, device):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(cases, "build", out_of_memory)
    expected = pytest.skip.Exception if skips else torch.OutOfMemoryError
    with pytest.raises(expected):
        runner._prepare(_point(backend), CPU)


def test_a_runnable_point_is_measured_and_gives_a_normalised_histogram():
    workload, value, per_call, peak, method = runner._prepare(_point("eager"), CPU)
    assert per_call > 0 and workload.input_sets >= 4
    # The joint histogram of the first input set sums to one per channel (a normalised soft histogram).
    torch.testing.assert_close(value.sum((-2, -1)), torch.ones(1, 3), rtol=0, atol=1e-5)
