"""The library imports without the application's dependencies, and the wheel ships the kernels as huenet.kernels."""

import os
import shutil
import subprocess
import sys
import zipfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Import the library with matplotlib, PIL and tqdm made unimportable (a None entry in sys.modules makes
# `import name` raise ImportError), compute a loss, and report which heavy modules got loaded.
_NO_APP_DEPS = """
import sys
for name in ("matplotlib", "PIL", "tqdm"):
    sys.modules[name] = None
import importlib.util
import torch
import huenet, huenet.losses, huenet.color
if importlib.util.find_spec("huenet.recolor") is not None:
    import huenet.recolor
assert "triton" not in sys.modules, "importing huenet loaded triton"
g = torch.Generator().manual_seed(0)
out, src, tgt = torch.rand(3, 2, 3, 8, 8, generator=g, dtype=torch.float64).unbind(0)
print(repr(huenet.losses.HueNetLoss(bins=16, backend="eager")(out, src, tgt).item()))
"""


def test_library_imports_and_computes_without_the_application_dependencies():
    proc = subprocess.run([sys.executable, "-c", _NO_APP_DEPS], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from huenet.losses import HueNetLoss

    g = torch.Generator().manual_seed(0)
    out, src, tgt = torch.rand(3, 2, 3, 8, 8, generator=g, dtype=torch.float64).unbind(0)
    assert float(proc.stdout.strip()) == HueNetLoss(bins=16, backend="eager")(out, src, tgt).item()


def test_wheel_ships_the_kernels_inside_huenet(tmp_path):
    # Built from a copy, so that setuptools' build/ and egg-info folders never land in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    for name in ("huenet", "kernels"):
        shutil.copytree(os.path.join(ROOT, name), src / name, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(src),
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("huenet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    kernels = sorted(f for f in os.listdir(os.path.join(ROOT, "kernels")) if f.endswith(".py"))
    assert "__init__.py" in kernels and "soft_histogram.py" in kernels
    for f in kernels:
        assert f"huenet/kernels/{f}" in names, f"huenet/kernels/{f} missing from {wheel.name}"
    assert not [n for n in names if n.split("/")[0] == "kernels"], "the wheel installs a top-level `kernels`"
    for top_level in [n for n in names if n.endswith(".dist-info/top_level.txt")]:
        assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["huenet"]
