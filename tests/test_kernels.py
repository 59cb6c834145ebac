"""The Triton backend against the float64 oracle, the eager backend and gradcheck.

Without a GPU the kernels run under the Triton interpreter on CPU tensors (conftest sets TRITON_INTERPRET=1
before anything imports them), so inputs are small; with a GPU the same tests run compiled, on CUDA tensors.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import huenet
import oracle

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BOUNDARIES = ("reflect", "circular", "none")
# fp32 against the fp64 oracle: sigmoid differences of fp32 values (about 1e-7 each) summed over pixels, and
# on a GPU tl.dot in 3xTF32 adds about as much again.
TOL = {torch.float32: 2e-6, torch.float64: 1e-12}


def _images(shape, dtype, seed, lo=-0.05, hi=1.05):
    g = torch.Generator().manual_seed(seed)
    x = lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)
    return x.to(dtype).to(DEVICE)


@pytest.fixture(params=[False, True], ids=["atomic", "deterministic"])
def deterministic(request):
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(request.param)
    yield request.param
    torch.use_deterministic_algorithms(previous)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_soft_histogram_matches_oracle(boundary, weighted, dtype, deterministic):
    x = _images((2, 3, 5, 7), dtype, seed=1)  # 35 pixels: not a multiple of any block
    w = _images((2, 1, 5, 7), dtype, seed=2, lo=0.0, hi=1.0) if weighted else None
    got = huenet.soft_histogram(x, bins=37, boundary=boundary, weight=w, backend="triton")
    want = oracle.soft_histogram(x, 37, boundary=boundary, weight=w)
    np.testing.assert_allclose(got.cpu().double().numpy(), want, rtol=0, atol=TOL[dtype])
    eager = huenet.soft_histogram(x, bins=37, boundary=boundary, weight=w, backend="eager")
    np.testing.assert_allclose(got.cpu().numpy(), eager.cpu().numpy(), rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_joint_histogram_matches_oracle(boundary, weighted, dtype):
    x = _images((1, 2, 5, 7), dtype, seed=3)
    y = _images((1, 2, 5, 7), dtype, seed=4)
    w = _images((1, 2, 5, 7), dtype, seed=5, lo=0.0, hi=1.0) if weighted else None
    got = huenet.joint_histogram(x, y, bins=20, boundary=boundary, weight=w, backend="triton")
    want = oracle.joint_histogram(x, y, 20, boundary=boundary, weight=w)
    np.testing.assert_allclose(got.cpu().double().numpy(), want, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize(
    "shape,bins", [((1, 1, 1, 1), 2), ((1, 4, 3, 1), 37), ((3, 1, 2, 2, 2), 8)], ids=["1x1-K2", "4ch-K37", "3d-batch3"]
)
def test_ragged_shapes(shape, bins):
    x, y = _images(shape, torch.float64, seed=6), _images(shape, torch.float64, seed=7)
    np.testing.assert_allclose(
        huenet.soft_histogram(x, bins=bins, backend="triton").cpu().numpy(),
        oracle.soft_histogram(x, bins),
        atol=1e-12,
        rtol=0,
    )
    np.testing.assert_allclose(
        huenet.joint_histogram(x, y, bins=bins, backend="triton").cpu().numpy(),
        oracle.joint_histogram(x, y, bins),
        atol=1e-12,
        rtol=0,
    )


@pytest.mark.parametrize("bandwidth", [3.0, 40.0], ids=["wide", "dense-fallback"])
def test_wide_bandwidth(bandwidth, deterministic):
    x, y = _images((1, 1, 3, 5), torch.float64, seed=8), _images((1, 1, 3, 5), torch.float64, seed=9)
    for boundary in BOUNDARIES:
        got = huenet.soft_histogram(x, bins=12, bandwidth=bandwidth, boundary=boundary, backend="triton")
        np.testing.assert_allclose(
            got.cpu().numpy(), oracle.soft_histogram(x, 12, bandwidth=bandwidth, boundary=boundary), atol=1e-12, rtol=0
        )
    got = huenet.joint_histogram(x, y, bins=12, bandwidth=bandwidth, backend="triton")
    np.testing.assert_allclose(
        got.cpu().numpy(), oracle.joint_histogram(x, y, 12, bandwidth=bandwidth), atol=1e-12, rtol=0
    )


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_information_matches_oracle(boundary):
    x, y = _images((1, 2, 6, 6), torch.float64, seed=10), _images((1, 2, 6, 6), torch.float64, seed=11)
    for name in ("mutual_information", "joint_entropy", "mi_distance", "conditional_entropy"):
        got = getattr(huenet, name)(x, y, bins=16, boundary=boundary, backend="triton")
        want = getattr(oracle, name)(x, y, 16, boundary=boundary)
        np.testing.assert_allclose(got.cpu().numpy(), want, atol=1e-11, rtol=0, err_msg=name)


def test_nonfinite_rows_are_nan():
    x = _images((1, 2, 4, 4), torch.float32, seed=12)
    x[0, 1, 2, 2] = float("nan")
    p = huenet.soft_histogram(x, bins=16, backend="triton")
    assert torch.isnan(p[0, 1]).all() and torch.isfinite(p[0, 0]).all()


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_gradcheck_soft_histogram(boundary):
    x = _images((1, 2, 3, 4), torch.float64, seed=13).requires_grad_()
    w = _images((1, 2, 3, 4), torch.float64, seed=14, lo=0.1, hi=1.0).requires_grad_()
    fn = lambda x, w: huenet.soft_histogram(x, bins=40, boundary=boundary, weight=w, backend="triton")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w), fast_mode=True)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_gradcheck_joint_histogram(boundary):
    x = _images((1, 1, 3, 4), torch.float64, seed=15).requires_grad_()
    y = _images((1, 1, 3, 4), torch.float64, seed=16).requires_grad_()
    w = _images((1, 1, 3, 4), torch.float64, seed=17, lo=0.1, hi=1.0).requires_grad_()

    def fn(x, y, w):
        return huenet.joint_histogram(
            x,
            y,
            bins=40,
            boundary=boundary,
            weight=w,
            backend="triton",
        )

    assert torch.autograd.gradcheck(fn, (x, y, w), fast_mode=True)


def test_gradcheck_fused_entropies():
    x = _images((1, 1, 3, 4), torch.float64, seed=18).requires_grad_()
    y = _images((1, 1, 3, 4), torch.float64, seed=19).requires_grad_()
    for name in ("mi_distance", "conditional_entropy"):
        fn = lambda x, y: getattr(huenet, name)(x, y, bins=40, backend="triton")  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, y), fast_mode=True), name


def test_dense_fallback_gradcheck():
    x = _images((1, 1, 2, 3), torch.float64, seed=20).requires_grad_()
    y = _images((1, 1, 2, 3), torch.float64, seed=21).requires_grad_()
    fn = lambda x, y: huenet.joint_histogram(x, y, bins=6, bandwidth=8.0, backend="triton")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, y), fast_mode=True)


def test_triton_on_cpu_without_interpreter_raises():
    """On every machine, GPU or not: CPU tensors without the interpreter must raise, never run or skip."""
    code = (
        "import torch, huenet\n"
        "try:\n"
        "    huenet.soft_histogram(torch.rand(1, 1, 4, 4), backend='triton')\n"
        "except RuntimeError as e:\n"
        "    print('RAISED', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "RAISED" in out.stdout and "TRITON_INTERPRET" in out.stdout, out.stdout + out.stderr
