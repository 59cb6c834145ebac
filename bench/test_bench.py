"""pytest-benchmark entry point: one test per grid point (bench/grid.py), measured by bench/runner.py.

python -m pytest bench/ --benchmark-only                    # default grid: ~10 min on a 2-core CPU
python -m pytest bench/ --benchmark-only --bench-grid=full  # every size (a GPU)
python -m pytest bench/ --benchmark-only -k "core_loss and fwdbwd"
"""

from __future__ import annotations

from . import grid, runner


def pytest_generate_tests(metafunc):
    if "point" in metafunc.fixturenames:
        points = grid.points(metafunc.config.getoption("bench_grid"))
        metafunc.parametrize("point", points, ids=[str(p) for p in points])


def test_point(benchmark, bench_results, device, point):
    runner.measure(benchmark, point, device, bench_results)
