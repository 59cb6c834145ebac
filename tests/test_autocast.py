"""Low-precision inputs and autocast: results are float32 and equal the float32 computation."""

import pytest
import torch

import huenet
from conftest import BACKENDS
from helpers import rand

BOUNDARIES = ("reflect", "circular", "none")
LOW = (torch.float16, torch.bfloat16)
INFO_OPS = ("mutual_information", "joint_entropy", "mi_distance", "conditional_entropy")

# The low-precision values are upcast exactly, so the only difference is summation order.
TOL = dict(rtol=1e-5, atol=1e-6)


def _finite_f32(t):
    assert t.dtype == torch.float32, t.dtype
    assert torch.isfinite(t).all()


def _image_ops(backend, boundary):
    kw = dict(bins=24, boundary=boundary, backend=backend)
    yield "soft_histogram", lambda x, y, w: huenet.soft_histogram(x, weight=w, **kw)
    yield "joint_histogram", lambda x, y, w: huenet.joint_histogram(x, y, weight=w, **kw)
    for op in INFO_OPS:
        yield op, lambda x, y, w, op=op: getattr(huenet, op)(x, y, weight=w, **kw)


@pytest.mark.parametrize("low", LOW, ids=["f16", "bf16"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_low_precision_inputs_compute_in_float32(backend, boundary, low):
    x = rand((2, 3, 7, 5), -0.02, 1.02, low, seed=1)
    y = rand((2, 3, 7, 5), -0.02, 1.02, low, seed=2)
    w = rand((2, 1, 7, 5), 0.1, 2.0, low, seed=3)
    for name, f in _image_ops(backend, boundary):
        got = f(x, y, w)
        _finite_f32(got)
        want = f(x.float(), y.float(), w.float())
        assert want.dtype == torch.float32
        torch.testing.assert_close(got, want, **TOL, msg=name)


@pytest.mark.parametrize("low", LOW, ids=["f16", "bf16"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_bf16_region(backend, boundary, low):
    x = rand((2, 3, 7, 5), -0.02, 1.02, low, seed=4)
    y = rand((2, 3, 7, 5), -0.02, 1.02, low, seed=5)
    w = rand((2, 3, 7, 5), 0.1, 2.0, low, seed=6)
    x32, y32, w32 = x.float(), y.float(), w.float()
    for name, f in _image_ops(backend, boundary):
        want = f(x32, y32, w32)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got_low = f(x, y, w)  # low-precision inputs inside autocast
            got_32 = f(x32, y32, w32)  # float32 inputs inside autocast
        for got in (got_low, got_32):
            _finite_f32(got)
            torch.testing.assert_close(got, want, **TOL, msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_gradients_are_float32_and_finite(backend):
    x = rand((1, 2, 6, 6), dtype=torch.float32, seed=7).requires_grad_(True)
    y = rand((1, 2, 6, 6), dtype=torch.float32, seed=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = huenet.mi_distance(x, y, bins=16, backend=backend)
        h = huenet.soft_histogram(x, bins=16, backend=backend)
        loss = out.sum() + huenet.emd(h, huenet.soft_histogram(y, bins=16, backend=backend)).sum()
    _finite_f32(out)
    loss.backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
    # gradient equals the one computed outside autocast
    x2 = x.detach().clone().requires_grad_(True)
    out2 = huenet.mi_distance(x2, y, bins=16, backend=backend)
    h2 = huenet.soft_histogram(x2, bins=16, backend=backend)
    (out2.sum() + huenet.emd(h2, huenet.soft_histogram(y, bins=16, backend=backend)).sum()).backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_low_precision_input_gradients(backend):
    for low in LOW:
        x = rand((1, 2, 5, 5), dtype=low, seed=9).requires_grad_(True)
        out = huenet.soft_histogram(x, bins=12, backend=backend)
        assert out.dtype == torch.float32
        (out * torch.linspace(0, 1, 12)).sum().backward()
        assert x.grad is not None and x.grad.dtype == low
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("low", LOW, ids=["f16", "bf16"])
@pytest.mark.parametrize("cyclic", [False, True], ids=["linear", "cyclic"])
@pytest.mark.parametrize("order", [1, 2])
def test_emd_low_precision(order, cyclic, low):
    p = torch.softmax(rand((2, 3, 20), -2, 2, seed=10), -1).to(low)
    q = torch.softmax(rand((2, 3, 20), -2, 2, seed=11), -1).to(low)
    want = huenet.emd(p.float(), q.float(), order=order, cyclic=cyclic)
    got = huenet.emd(p, q, order=order, cyclic=cyclic)
    _finite_f32(got)
    torch.testing.assert_close(got, want, **TOL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got_ac = huenet.emd(p.float(), q.float(), order=order, cyclic=cyclic)
    _finite_f32(got_ac)
    torch.testing.assert_close(got_ac, want, **TOL)


def test_float32_and_float64_dtypes_preserved():
    for dt in (torch.float32, torch.float64):
        x = rand((1, 1, 4, 4), dtype=dt, seed=12)
        assert huenet.soft_histogram(x, bins=8).dtype == dt
        assert huenet.joint_histogram(x, x, bins=8).dtype == dt
        assert huenet.mi_distance(x, x, bins=8).dtype == dt
        assert huenet.emd(x[0, 0], x[0, 0]).dtype == dt
