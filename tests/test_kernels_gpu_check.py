"""``python -m bench.gpu_check --smoke`` runs every section at tiny sizes under the interpreter and passes.

On a GPU this is what CI can run of the one-call GPU check; the full run (``python -m bench.gpu_check``) needs
a GPU and about 9 minutes. Slow here (~1-2 min on 2 cores): the interpreter runs every kernel config.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_gpu_check_smoke_passes(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    assert results["failures"] == 0 and {r["section"] for r in results["checks"]} == set("ABCDEF")
    names = " ".join(r["name"] for r in results["checks"])
    for kernel in (
        "soft atomic fwd config3",
        "soft bwd config3",
        "soft partials fwd config3",
        "joint fwd tf32 config2",
        "joint bwd config2",
        "parzen gaussian-norm fwd config 2 bwd config 2",
        "parzen bspline-box fwd config 2 bwd config 2",
        "parzen invquad fwd config 2 bwd config 2",
    ):
        assert kernel in names, kernel  # every config of every kernel was forced
    assert (tmp_path / "gpu_check.md").read_text().startswith("# gpu_check")


def test_gpu_check_fails_loudly(tmp_path):
    """A usage error exits 2 with one line on stderr; a failing check would exit 1 (see Check.run)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--smoke", "--out", "/dev/null/x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "--out" in out.stderr, out.stderr
