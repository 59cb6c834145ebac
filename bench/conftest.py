"""Benchmark session plumbing: machine description, skip reasons, eager/reference ratio summary.

Run with:  python -m pytest bench/ --benchmark-only [--benchmark-json=out.json]
"""

from __future__ import annotations

import os
import platform
from collections import defaultdict

import pytest

# (group, backend) -> {"mean_s": float | None, "min_s": float | None, "peak_mem_bytes": int | None}
RESULTS: dict[tuple[str, str], dict] = {}


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
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_num_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
        else:
            info["gpu"] = None
    except ImportError:
        info["torch"] = None
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    return info


@pytest.fixture(scope="session")
def bench_results() -> dict:
    """Registry the benchmark tests fill: (group, backend) -> {"mean_s", "min_s", "peak_mem_bytes"}."""
    return RESULTS


def pytest_configure(config):
    # Always list skipped benchmarks with their reason in the short summary.
    chars = getattr(config.option, "reportchars", "") or ""
    if "s" not in chars and "a" not in chars and "A" not in chars:
        config.option.reportchars = chars + "s"


def pytest_report_header(config):
    m = describe_machine()
    return [
        f"huenet bench machine: {m['cpu_model']} ({m.get('usable_cores', m['logical_cores'])} usable cores), "
        f"torch {m.get('torch')} ({m.get('torch_num_threads')} threads), triton {m.get('triton')}, "
        f"gpu {m.get('gpu')}"
    ]


def pytest_benchmark_update_machine_info(config, machine_info):  # pytest-benchmark hook
    machine_info["huenet"] = describe_machine()


def _ratios() -> dict:
    by_group: dict[str, dict[str, dict]] = defaultdict(dict)
    for (group, backend), r in RESULTS.items():
        by_group[group][backend] = r
    out = {}
    for group, rs in sorted(by_group.items()):
        ref, eag = rs.get("reference"), rs.get("eager")
        if not ref or not eag:
            continue
        entry = {}
        if ref.get("mean_s") and eag.get("mean_s"):
            entry["time_eager_over_reference"] = eag["mean_s"] / ref["mean_s"]
        if ref.get("min_s") and eag.get("min_s"):
            entry["min_time_eager_over_reference"] = eag["min_s"] / ref["min_s"]
        if ref.get("peak_mem_bytes") and eag.get("peak_mem_bytes") is not None:
            entry["mem_eager_over_reference"] = eag["peak_mem_bytes"] / ref["peak_mem_bytes"]
        out[group] = entry
    return out


def pytest_benchmark_update_json(config, benchmarks, output_json):  # pytest-benchmark hook
    output_json["huenet_ratios"] = _ratios()


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.write_sep("-", "huenet: mean / min time and peak extra RSS per case")
    for (group, backend), r in sorted(RESULTS.items()):
        mean, low = r.get("mean_s"), r.get("min_s")
        mem = r.get("peak_mem_bytes")
        mean_s = f"mean {mean * 1e3:9.1f} ms" if mean else "mean       n/a"
        min_s = f"min {low * 1e3:9.1f} ms" if low else "min       n/a"
        mem_s = f"{mem / 2**20:8.1f} MiB" if mem is not None else "     n/a"
        tr.write_line(f"{group:<34} {backend:<10} {mean_s}  {min_s}  {mem_s}")
    ratios = _ratios()
    if ratios:
        tr.write_sep("-", "huenet: eager / reference ratios (lower is better)")
        for group, e in ratios.items():
            t = e.get("time_eager_over_reference")
            m = e.get("mem_eager_over_reference")
            t_s = f"mean time x{t:.3f} ({1 / t:.1f}x faster)" if t else "mean time n/a"
            tm = e.get("min_time_eager_over_reference")
            t_s += f", min time x{tm:.3f}" if tm else ""
            m_s = f"mem x{m:.4f}" if m is not None else "mem n/a"
            tr.write_line(f"{group:<34} {t_s}   {m_s}")
