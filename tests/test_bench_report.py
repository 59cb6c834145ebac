"""bench.report on a tiny synthetic pytest-benchmark JSON: parsing, ratios, GPU fractions, tables and the plot."""

import json
import os
import sys

import pytest

# bench/ lives at the repository root, next to tests/; plain `pytest` puts only tests/ on the path.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench import report  # noqa: E402

MiB = 2**20


def _bench(case, mode, backend, median, peak, side=128, batch=4, bins=256, width=None, min_bytes=0, joint_flops=0):
    info = dict(
        case=case,
        mode=mode,
        backend=backend,
        batch=batch,
        channels=3,
        side=side,
        bins=bins,
        width=width,
        pixels=batch * side * side,
        peak_mem_bytes=peak,
        mem_method="test method",
        min_bytes=min_bytes,
        joint_flops=joint_flops,
        loadavg_1m_at_start=1.5 if backend == "eager" else 0.5,
    )
    stats = dict(median=median, mean=median, min=median * 0.9, stddev=0.0)
    return {"name": f"test_point[{case}-{mode}-{backend}]", "extra_info": info, "stats": stats}


def _write(tmp_path, benchmarks, ceilings=None, name="run"):
    data = {
        "machine_info": {
            "huenet": {
                "cpu_model": "Test CPU",
                "usable_cores": 2,
                "gpu": None,
                "torch": "2.x",
                "triton": "3.x",
                "kornia": None,
            }
        },
        "benchmarks": benchmarks + [{"name": "foreign", "extra_info": {}, "stats": {"median": 1.0}}],
        "huenet": {
            "grid": "default",
            "ceilings": ceilings,
            "skipped": [{"id": "a", "reason": "triton: no GPU"}, {"id": "b", "reason": "triton: no GPU"}],
        },
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def cpu_run(tmp_path):
    return _write(
        tmp_path,
        [
            _bench("core_loss", "fwdbwd", "reference", 2.0, 400 * MiB),
            _bench("core_loss", "fwdbwd", "eager", 0.2, 20 * MiB),
            _bench("core_loss", "fwdbwd", "kornia", 1.0, 0),  # a zero peak has no ratio
            _bench("core_loss", "fwd", "eager", 0.1, 10 * MiB),  # no reference for this mode: no ratio
            _bench("core_loss", "fwdbwd", "reference", 0.5, 100 * MiB, side=64, batch=1),
            _bench("core_loss", "fwdbwd", "eager", 0.1, 10 * MiB, side=64, batch=1),
            _bench("train_step", "fwdbwd", "gan-only", 0.4, 10 * MiB, side=64, width=16),
            _bench("train_step", "fwdbwd", "eager", 0.5, 12 * MiB, side=64, width=16),
        ],
    )


def _find(rows, **match):
    (row,) = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return row


def test_load_reads_only_bench_rows(cpu_run):
    run = report.load(cpu_run)
    assert run.name == "run" and len(run.rows) == 8
    row = _find(run.rows, backend="eager", side=128, mode="fwdbwd")
    assert row["median_s"] == 0.2 and row["min_s"] == pytest.approx(0.18) and row["peak_mem_bytes"] == 20 * MiB


def test_ratios_against_reference_of_the_same_case_and_size(cpu_run):
    rows = report.with_ratios(report.load(cpu_run).rows)
    eager = _find(rows, backend="eager", side=128, mode="fwdbwd")
    assert eager["speedup"] == pytest.approx(10.0) and eager["mem_ratio"] == pytest.approx(20.0)
    small = _find(rows, backend="eager", side=64, case="core_loss")
    assert small["speedup"] == pytest.approx(5.0) and small["mem_ratio"] == pytest.approx(10.0)
    assert _find(rows, backend="reference", side=128)["speedup"] == pytest.approx(1.0)
    kornia = _find(rows, backend="kornia")
    assert kornia["speedup"] == pytest.approx(2.0) and kornia["mem_ratio"] is None
    assert _find(rows, mode="fwd")["speedup"] is None


def test_gpu_fractions_use_measured_bandwidth_and_assumed_peak():
    ceilings = {"gpu": "NVIDIA H100 80GB HBM3", "copy_bytes_per_s": 3e12}
    row = {"median_s": 1e-3, "min_bytes": 1.5e9, "joint_flops": 494.7e12 * 1e-3 / 4}
    bw, matrix = report.fractions(row, ceilings)
    assert bw == pytest.approx(0.5)  # 1.5 GB at 3 TB/s is 0.5 ms of the 1 ms measured
    assert matrix == pytest.approx(0.25)
    assert report.fractions(dict(row, joint_flops=0), ceilings)[1] is None
    assert report.fractions(row, None) == (None, None)
    assert report.fractions(row, dict(ceilings, gpu="Some Future GPU"))[1] is None


@pytest.mark.parametrize(
    "gpu, peak",
    [
        ("NVIDIA H100 80GB HBM3", 494.7e12),
        ("NVIDIA H100 PCIe", 378e12),
        ("NVIDIA H200", 494.7e12),
        ("NVIDIA L40S", 183e12),
        ("NVIDIA L4", 60e12),
        ("NVIDIA A100-SXM4-80GB", 156e12),
        (None, None),
    ],
)
def test_assumed_peak_by_gpu_name(gpu, peak):
    assert report.assumed_peak(gpu) == peak


def test_formatting():
    assert report.fmt_time(2.5e-5) == "25 µs" and report.fmt_time(0.0123) == "12.3 ms"
    assert report.fmt_time(12.34) == "12.3 s" and report.fmt_time(None) == "—"
    assert report.fmt_bytes(512 * 2**10) == "512 KiB" and report.fmt_bytes(3 * MiB) == "3.0 MiB"
    assert report.fmt_ratio(12.345) == "12.3×" and report.fmt_ratio(None) == "—"


def test_markdown_tables(cpu_run):
    run = report.load(cpu_run)
    text = report.markdown(run, "run.png")
    assert "| core_loss | fwdbwd | 4 | 128² | 256 | eager | 200 ms | 10× | 20.0 MiB | 20× |" in text
    assert "of BW floor" not in text  # CPU run: no GPU columns
    assert "| fwdbwd | 4 | 64² | 256 | 16 | 400 ms | eager | 500 ms | 25.0% |" in text  # HueNetLoss overhead
    assert "- 2 × triton: no GPU" in text and "![" in text and "Test CPU" in text
    assert "load average at the start of the cases: 0.5 to 1.5" in text


def test_gpu_markdown_has_fraction_columns(tmp_path):
    ceilings = {
        "gpu": "NVIDIA H100 80GB HBM3",
        "copy_bytes_per_s": 2e12,
        "matmul_tf32_flops_per_s": 4e14,
        "matmul_bf16_flops_per_s": 7e14,
    }
    path = _write(
        tmp_path,
        [
            _bench("mi", "fwd", "reference", 1e-2, MiB, min_bytes=10**9, joint_flops=10**12),
            _bench("mi", "fwd", "triton", 1e-3, MiB, min_bytes=10**9, joint_flops=10**12),
        ],
        ceilings,
    )
    text = report.markdown(report.load(path))
    assert "of BW floor" in text and "2.00 TB/s" in text and "assumed dense TF32 peak 495 TFLOP/s" in text
    # 1 GB at 2 TB/s is 0.5 ms of the 1 ms measured; 1 TFLOP in 1 ms is 1000 TFLOP/s, 202% of 494.7
    assert "| mi | fwd | 4 | 128² | 256 | triton | 1 ms | 10× | 1.0 MiB | 1× | 50.0% | 202.1% |" in text


def test_main_writes_markdown_and_plot(cpu_run, tmp_path, capsys):
    out = tmp_path / "out"
    report.main([str(cpu_run), "--out", str(out)])
    assert (out / "run.md").read_text().startswith("## run")
    assert (out / "run.png").stat().st_size > 1000
    assert "| core_loss |" in capsys.readouterr().out


def test_plot_needs_two_pixel_counts(tmp_path):
    from bench import plot

    rows = report.load(_write(tmp_path, [_bench("mi", "fwd", "eager", 1e-2, MiB)])).rows
    assert plot.panels(rows) == {}
    assert not plot.plot(rows, tmp_path / "none.png", "t") and not (tmp_path / "none.png").exists()
