"""The backend contract: every backend implements the Backend protocol in its own module, the same way."""

import ast
from pathlib import Path

import pytest
import torch

import huenet
from conftest import ALL_BACKENDS
from huenet import backends
from huenet.backends import Backend, custom_ops, resolve
from huenet.backends import reference as reference_module

HUENET = Path(huenet.__file__).parent


@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_each_backend_implements_the_protocol_and_lives_in_its_module(name):
    backend = resolve("soft_histogram", name, torch.device("cpu"))  # triton runs here under TRITON_INTERPRET
    assert isinstance(backend, Backend)
    assert backend.name == name
    assert type(backend).__module__ == f"huenet.backends.{name}"
    assert backends.REGISTRY[name] is backend


def test_the_custom_op_backends_share_one_autograd_wiring():
    # eager and triton get their ops from one base class; the reference is plain autograd.
    assert isinstance(resolve("op", "eager", torch.device("cpu")), custom_ops.CustomOpBackend)
    assert isinstance(resolve("op", "triton", torch.device("cpu")), custom_ops.CustomOpBackend)
    assert not isinstance(reference_module.BACKEND, custom_ops.CustomOpBackend)
    assert hasattr(torch.ops.huenet, "eager_soft_histogram") and hasattr(torch.ops.huenet, "triton_joint_histogram")


def test_an_object_without_the_three_functions_is_no_backend():
    class Half:
        name = "half"

        def soft_histogram(self, u, w, binning):
            return u

    assert not isinstance(Half(), Backend)


@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_backends_agree_with_the_reference_functions(name):
    """The object the public ops call computes what the reference module's formulas give (float64)."""
    from huenet.binning import Binning

    g = torch.Generator().manual_seed(3)
    u = torch.rand(2, 50, generator=g, dtype=torch.float64) * 8
    v = torch.rand(2, 50, generator=g, dtype=torch.float64) * 8
    w = torch.rand(2, 50, generator=g, dtype=torch.float64) + 0.1
    binning = Binning(8, 0.0, 8.0, 0.4, "reflect")
    backend = resolve("op", name, torch.device("cpu"))
    torch.testing.assert_close(backend.soft_histogram(u, w, binning), reference_module.soft_histogram(u, w, binning))
    joint = backend.joint_histogram(u, v, None, binning)
    torch.testing.assert_close(joint, reference_module.joint_histogram(u, v, None, binning))
    torch.testing.assert_close(backend.entropies(joint), reference_module.entropies(joint))


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            names.append("importlib.import_module")
    return names


def test_the_kernels_are_reached_by_a_plain_import():
    assert "huenet.kernels" in _imports(HUENET / "backends" / "triton.py")
    for path in HUENET.rglob("*.py"):
        assert "importlib.import_module" not in _imports(path), f"{path} imports a module by a string"
