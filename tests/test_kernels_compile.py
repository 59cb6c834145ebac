"""Every kernel with every autotune config compiles for sm_80 and sm_90, checked on a machine without a GPU.

Runs ``python -m huenet.kernels.aot`` in subprocesses without TRITON_INTERPRET (interpreted kernels cannot be
compiled), one per architecture, in parallel. This catches GPU-only errors such as non-constexpr globals in
jitted code or dot tiles below the minimum size, which the interpreter accepts.
"""

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_all_kernels_compile_for_sm80_and_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    runs = {
        arch: subprocess.Popen(
            [sys.executable, "-m", "huenet.kernels.aot", "--arch", str(arch)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for arch in (80, 90)
    }
    for arch, proc in runs.items():
        out, _ = proc.communicate(timeout=1200)
        lines = out.splitlines()
        assert proc.returncode == 0, f"sm_{arch}:\n" + "\n".join(line for line in lines if "FAIL" in line)[-4000:]
        compiled = [line for line in lines if line.startswith("ok ")]
        # 2 dtypes × (4 + 4 + 4 soft-histogram configs, joint forward configs per precision, 3 backward, 1)
        assert len(compiled) >= 40, out[-2000:]
