"""Benchmark session plumbing: the grid option, the machine and device ceilings in the JSON, skip reasons, summary.

Run with:  python -m pytest bench/ --benchmark-only [--bench-grid=full] [--benchmark-json=out.json]
then:      python -m bench.report out.json
"""

from __future__ import annotations

import os
import platform

import pytest
import torch

from . import ceilings, report
from .grid import GRIDS

# Rows of this session's results (extra_info plus times), in the shape bench.report reads from the JSON.
RESULTS: list[dict] = []
# (test id, reason) of every skipped point, so the JSON says what was not measured and why.
SKIPPED: list[tuple[str, str]] = []


def bench_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_machine() -> dict:
    info: dict = {"python": platform.python_version(), "platform": platform.platform()}
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cpu_model"] = model or platform.processor() or "unknown"
    info["logical_cores"] = os.cpu_count()
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    info["torch"] = torch.__version__
    info["torch_num_threads"] = torch.get_num_threads()
    info["gpu"] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name,
            cuda=torch.version.cuda,
            gpu_memory_bytes=props.total_memory,
            gpu_multiprocessors=props.multi_processor_count,
            gpu_l2_bytes=getattr(props, "L2_cache_size", None),
        )
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    try:
        import kornia

        info["kornia"] = kornia.__version__
    except ImportError:
        info["kornia"] = None
    return info


def pytest_addoption(parser):
    parser.addoption(
        "--bench-grid",
        choices=sorted(GRIDS),
        default="default",
        help="default: a CPU subset that finishes in ~10 min on 2 cores; full: every size (GPU)",
    )


def pytest_configure(config):
    # Always list skipped benchmarks with their reason in the short summary.
    chars = getattr(config.option, "reportchars", "") or ""
    if "s" not in chars and "a" not in chars and "A" not in chars:
        config.option.reportchars = chars + "s"


@pytest.fixture(scope="session")
def device() -> torch.device:
    return bench_device()


@pytest.fixture(scope="session")
def bench_results() -> list[dict]:
    return RESULTS


def pytest_report_header(config):
    m = describe_machine()
    return [
        f"huenet bench grid {config.getoption('bench_grid')!r} on {bench_device()}: {m['cpu_model']} "
        f"({m.get('usable_cores', m['logical_cores'])} usable cores), gpu {m['gpu']}, torch {m['torch']} "
        f"({m['torch_num_threads']} threads), triton {m['triton']}, kornia {m['kornia']}"
    ]


def pytest_runtest_logreport(report):
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        SKIPPED.append((report.nodeid.rsplit("[", 1)[-1].rstrip("]"), reason.removeprefix("Skipped: ")))


def pytest_benchmark_update_machine_info(config, machine_info):  # pytest-benchmark hook
    machine_info["huenet"] = describe_machine()


def pytest_benchmark_update_json(config, benchmarks, output_json):  # pytest-benchmark hook
    # Measured after the cases, on an idle device; the report needs the copy bandwidth for its floors.
    output_json["huenet"] = {
        "grid": config.getoption("bench_grid"),
        "device": str(bench_device()),
        "ceilings": ceilings.measure(bench_device()),
        "skipped": [{"id": i, "reason": r} for i, r in SKIPPED],
    }


def pytest_terminal_summary(terminalreporter):
    if RESULTS:
        terminalreporter.write_sep("-", "huenet: median time and peak memory, ratios against reference")
        terminalreporter.write_line(report.table(report.with_ratios(RESULTS), ceilings=None))
