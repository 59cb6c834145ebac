"""Bad inputs raise the spec'd exception naming the argument; backend selection; non-finite inputs."""

import math

import numpy as np
import pytest
import torch

import huenet
import oracle
from conftest import BACKENDS
from helpers import rand

BOUNDARIES = ("reflect", "circular", "none")
INFO_OPS = ("mutual_information", "joint_entropy", "mi_distance", "conditional_entropy")
PAIR_OPS = ("joint_histogram",) + INFO_OPS
IMAGE_OPS = ("soft_histogram",) + PAIR_OPS


X = rand((2, 3, 4, 5), seed=1)
Y = rand((2, 3, 4, 5), seed=2)


_DEFAULT = object()


def call(op, x=_DEFAULT, y=_DEFAULT, **kw):
    """Call an image op with its tensor arguments (y is ignored by soft_histogram)."""
    x = X if x is _DEFAULT else x
    y = Y if y is _DEFAULT else y
    kw.setdefault("bins", 8)
    if op == "soft_histogram":
        return huenet.soft_histogram(x, **kw)
    return getattr(huenet, op)(x, y, **kw)


def word(name):
    """Regex matching `name` as a whole word (so 'x' does not match 'expected')."""
    return rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])"


# --------------------------------------------------------------------------------------------
# TypeError
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", IMAGE_OPS)
@pytest.mark.parametrize("bad", [X.numpy(), X.tolist(), 0.5, None], ids=["ndarray", "list", "float", "None"])
def test_non_tensor_x(op, bad):
    with pytest.raises(TypeError, match=word("x")):
        call(op, x=bad)


@pytest.mark.parametrize("op", PAIR_OPS)
@pytest.mark.parametrize("bad", [Y.numpy(), 0.5, None], ids=["ndarray", "float", "None"])
def test_non_tensor_y(op, bad):
    with pytest.raises(TypeError, match=word("y")):
        getattr(huenet, op)(X, bad, bins=8)


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_non_tensor_weight(op):
    with pytest.raises(TypeError, match=word("weight")):
        call(op, weight=np.ones((2, 3, 4, 5)))
    with pytest.raises(TypeError, match=word("weight")):
        call(op, weight=1.0)


BAD_DTYPES = [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
@pytest.mark.parametrize("op", IMAGE_OPS)
def test_bad_dtype_x(op, dtype):
    x = (X * 10).to(dtype) if dtype != torch.bool else X > 0.5
    with pytest.raises(TypeError, match=word("x")):
        call(op, x=x)


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
@pytest.mark.parametrize("op", PAIR_OPS)
def test_bad_dtype_y(op, dtype):
    y = (Y * 10).to(dtype) if dtype != torch.bool else Y > 0.5
    with pytest.raises(TypeError, match=word("y")):
        getattr(huenet, op)(X, y, bins=8)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex128], ids=str)
@pytest.mark.parametrize("op", IMAGE_OPS)
def test_bad_dtype_weight(op, dtype):
    w = torch.ones(2, 3, 4, 5, dtype=dtype)
    with pytest.raises(TypeError, match=word("weight")):
        call(op, weight=w)


def test_emd_type_errors():
    p = torch.rand(3, 8, dtype=torch.float64)
    with pytest.raises(TypeError, match=word("p")):
        huenet.emd(p.numpy(), p)
    with pytest.raises(TypeError, match=word("q")):
        huenet.emd(p, p.tolist())
    with pytest.raises(TypeError, match=word("p")):
        huenet.emd(torch.ones(3, 8, dtype=torch.int64), p)
    with pytest.raises(TypeError, match=word("q")):
        huenet.emd(p, torch.ones(3, 8, dtype=torch.bool))
    with pytest.raises(TypeError, match=word("p")):
        huenet.emd(p.to(torch.complex128), p)


# --------------------------------------------------------------------------------------------
# ValueError: shapes, devices, empty
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (4, 5), ()], ids=["1d", "2d", "0d"])
@pytest.mark.parametrize("op", IMAGE_OPS)
def test_x_ndim_too_small(op, shape):
    x = torch.rand(shape, dtype=torch.float64)
    y = torch.rand(shape, dtype=torch.float64)
    with pytest.raises(ValueError, match=word("x")):
        call(op, x=x, y=y)


@pytest.mark.parametrize("op", PAIR_OPS)
def test_xy_shape_mismatch(op):
    for y in (rand((2, 3, 4, 4)), rand((2, 3, 5, 4)), rand((1, 3, 4, 5)), rand((2, 3, 20))):
        with pytest.raises(ValueError, match=word("y")):
            getattr(huenet, op)(X, y, bins=8)


@pytest.mark.parametrize("op", IMAGE_OPS)
@pytest.mark.parametrize(
    "wshape",
    [(2, 2, 4, 5), (1, 3, 4, 5), (2, 3, 5, 4), (2, 3, 20), (3, 4, 5), (4, 5), (2, 3, 4, 5, 1), (1, 1, 4, 5)],
    ids=lambda s: "x".join(map(str, s)),
)
def test_weight_bad_shape(op, wshape):
    with pytest.raises(ValueError, match=word("weight")):
        call(op, weight=torch.ones(wshape, dtype=torch.float64))


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_weight_good_shapes_accepted(op):
    w = rand((2, 1, 4, 5), 0.1, 2.0, seed=3)
    want = _oracle_op(op, X, Y, w, "reflect")
    _close(call(op, weight=w.expand(2, 3, 4, 5).contiguous()), want)
    _close(call(op, weight=w), want)


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_devices_differ(op):
    meta = torch.empty((2, 3, 4, 5), dtype=torch.float64, device="meta")
    with pytest.raises(ValueError, match=rf"(?i:device)|{word('weight')}"):
        call(op, weight=meta)
    if op != "soft_histogram":
        with pytest.raises(ValueError, match=rf"(?i:device)|{word('y')}"):
            getattr(huenet, op)(X, meta, bins=8)


def test_emd_devices_differ():
    p = torch.rand(2, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=rf"(?i:device)|{word('q')}"):
        huenet.emd(p, torch.empty(2, 8, dtype=torch.float64, device="meta"))


@pytest.mark.parametrize("shape", [(0, 3, 4, 5), (2, 0, 4, 5), (2, 3, 0, 5), (2, 3, 4, 0), (1, 1, 0)])
@pytest.mark.parametrize("op", IMAGE_OPS)
def test_empty_x(op, shape):
    x = torch.rand(shape, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"(?i)empty|\bx\b"):
        call(op, x=x, y=x.clone(), weight=None)


def test_emd_empty():
    with pytest.raises(ValueError):
        huenet.emd(torch.rand(0, 8), torch.rand(0, 8))


# --------------------------------------------------------------------------------------------
# ValueError: scalar arguments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", IMAGE_OPS)
@pytest.mark.parametrize("bins", [1, 0, -5, 2.0, 8.5, True, False, "8", None], ids=repr)
def test_bad_bins(op, bins):
    with pytest.raises(ValueError, match=word("bins")):
        call(op, bins=bins)


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_good_bins(op):
    for bins in (2, 37):
        _close(call(op, bins=bins), _oracle_op(op, X, Y, None, "reflect", bins=bins))


@pytest.mark.parametrize("op", IMAGE_OPS)
@pytest.mark.parametrize("bw", [0, 0.0, -0.4, math.inf, -math.inf, math.nan, "0.4", None], ids=repr)
def test_bad_bandwidth(op, bw):
    with pytest.raises(ValueError, match=word("bandwidth")):
        call(op, bandwidth=bw)


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_good_bandwidth(op):
    _close(call(op, bandwidth=1), _oracle_op(op, X, Y, None, "reflect", bandwidth=1.0))  # an int is a number
    bw = np.float32(0.4)
    _close(call(op, bandwidth=bw), _oracle_op(op, X, Y, None, "reflect", bandwidth=float(bw)))


@pytest.mark.parametrize("op", IMAGE_OPS)
@pytest.mark.parametrize("boundary", ["reflection", "wrap", "", "REFLECT_", None, 1], ids=repr)
def test_bad_boundary(op, boundary):
    with pytest.raises(ValueError, match=word("boundary")):
        call(op, boundary=boundary)


@pytest.mark.parametrize("op", IMAGE_OPS)
@pytest.mark.parametrize("backend", ["cuda", "eagerly", "", "ref", "Eager "], ids=repr)
def test_bad_backend(op, backend):
    with pytest.raises(ValueError, match=word("backend")):
        call(op, backend=backend)


BAD_RANGES = [
    (1.0, 0.0),
    (0.5, 0.5),
    (0.0, math.inf),
    (-math.inf, 1.0),
    (math.nan, 1.0),
    (0.0, math.nan),
    (0.0,),
    (0.0, 1.0, 2.0),
    1.0,
    "01",
    None,
    ("a", "b"),
]


@pytest.mark.parametrize("op", IMAGE_OPS)
@pytest.mark.parametrize("rng", BAD_RANGES, ids=repr)
def test_bad_range(op, rng):
    with pytest.raises(ValueError, match=word("range")):
        call(op, range=rng)


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_good_ranges(op):
    _close(call(op, range=[-1, 1]), _oracle_op(op, X, Y, None, "reflect", rng=(-1.0, 1.0)))  # a list, ints
    rng = (np.float64(-0.615), 0.615)
    _close(call(op, range=rng), _oracle_op(op, X, Y, None, "reflect", rng=(-0.615, 0.615)))


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_negative_weights(op):
    w = torch.ones(2, 3, 4, 5, dtype=torch.float64)
    w[1, 2, 0, 0] = -1e-3
    with pytest.raises(ValueError, match=word("weight")):
        call(op, weight=w)


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_zero_weight_sum(op):
    w = torch.ones(2, 3, 4, 5, dtype=torch.float64)
    w[1, 2] = 0.0
    with pytest.raises(ValueError, match=word("weight")):
        call(op, weight=w)
    w1 = torch.ones(2, 1, 4, 5, dtype=torch.float64)
    w1[0] = 0.0
    with pytest.raises(ValueError, match=word("weight")):
        call(op, weight=w1)


def test_emd_bad_shapes_and_order():
    p = torch.rand(2, 3, 8, dtype=torch.float64)
    for q in (torch.rand(2, 3, 9, dtype=torch.float64), torch.rand(3, 8, dtype=torch.float64), torch.rand(8)):
        with pytest.raises(ValueError, match=rf"{word('p')}|{word('q')}"):
            huenet.emd(p, q.to(p.dtype))
    for K in (1,):
        a = torch.rand(2, K, dtype=torch.float64)
        with pytest.raises(ValueError, match=rf"{word('p')}|{word('q')}|(?i:bins?|last dim)"):
            huenet.emd(a, a.clone())
    a = torch.rand(2, 0, dtype=torch.float64)
    with pytest.raises(ValueError):
        huenet.emd(a, a.clone())
    for order in (0, 3, 1.5, "1", "l1", None, True):
        with pytest.raises(ValueError, match=word("order")):
            huenet.emd(p, p.clone(), order=order)


# --------------------------------------------------------------------------------------------
# backend selection
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_env_unknown_backend(op, monkeypatch):
    monkeypatch.setenv("HUENET_BACKEND", "bogus")
    with pytest.raises(ValueError, match="HUENET_BACKEND"):
        call(op)
    with pytest.raises(ValueError, match="HUENET_BACKEND"):
        call(op, backend="auto")


def _grad_fn_chain(t, limit=200):
    """Sorted multiset of the autograd node types reachable from t.grad_fn (a graph fingerprint)."""
    names, seen, todo = [], set(), [t.grad_fn]
    while todo and len(names) < limit:
        fn = todo.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        names.append(type(fn).__name__)
        todo.extend(f for f, _ in fn.next_functions)
    return sorted(names)


@pytest.mark.parametrize("op", IMAGE_OPS)
@pytest.mark.parametrize("chosen", BACKENDS)
def test_env_selects_backend_for_auto(op, chosen, monkeypatch):
    x = X.clone().requires_grad_(True)
    explicit = call(op, x=x, backend=chosen)
    monkeypatch.setenv("HUENET_BACKEND", chosen)
    auto = call(op, x=x)
    auto2 = call(op, x=x, backend="auto")
    # the same code path runs: bit-identical values and the same autograd graph
    assert torch.equal(auto, explicit) and torch.equal(auto2, explicit)
    assert _grad_fn_chain(auto) == _grad_fn_chain(explicit)


def test_env_backends_have_distinguishable_graphs(monkeypatch):
    """Guards the observable used above: the two backends really differ in their autograd graph."""
    x = X.clone().requires_grad_(True)
    a = huenet.soft_histogram(x, bins=8, backend="eager")
    b = huenet.soft_histogram(x, bins=8, backend="reference")
    assert _grad_fn_chain(a) != _grad_fn_chain(b)
    monkeypatch.setenv("HUENET_BACKEND", "reference")
    assert _grad_fn_chain(huenet.soft_histogram(x, bins=8)) == _grad_fn_chain(b)
    monkeypatch.setenv("HUENET_BACKEND", "eager")
    assert _grad_fn_chain(huenet.soft_histogram(x, bins=8)) == _grad_fn_chain(a)


@pytest.mark.parametrize("chosen", BACKENDS)
def test_env_does_not_override_explicit_backend(chosen, monkeypatch):
    other = "reference" if chosen == "eager" else "eager"
    x = X.clone().requires_grad_(True)
    explicit = huenet.soft_histogram(x, bins=8, backend=chosen)
    monkeypatch.setenv("HUENET_BACKEND", other)
    again = huenet.soft_histogram(x, bins=8, backend=chosen)
    assert torch.equal(again, explicit)
    assert _grad_fn_chain(again) == _grad_fn_chain(explicit)


def test_default_auto_on_cpu_is_eager():
    x = X.clone().requires_grad_(True)
    a = huenet.soft_histogram(x, bins=8)
    e = huenet.soft_histogram(x, bins=8, backend="eager")
    assert torch.equal(a, e)
    assert _grad_fn_chain(a) == _grad_fn_chain(e)


# --------------------------------------------------------------------------------------------
# non-finite inputs
# --------------------------------------------------------------------------------------------

NONFINITE = [math.nan, math.inf, -math.inf]


def _poison(t, b, c, value):
    t = t.clone()
    t[b, c, 1, 2] = value
    return t


def _oracle_op(op, x, y, w, boundary, bandwidth=0.4, rng=(0.0, 1.0), bins=8):
    if op == "soft_histogram":
        return oracle.soft_histogram(x, bins, rng, bandwidth, boundary, w)
    return getattr(oracle, op)(x, y, bins, rng, bandwidth, boundary, w)


def _close(got, want):
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def _rows_nan_elsewhere_correct(got, want, bad_rows, dtype):
    got = got.detach().double().numpy()
    B, C = got.shape[:2]
    atol = 1e-10 if dtype == torch.float64 else 1e-5
    for b in range(B):
        for c in range(C):
            if (b, c) in bad_rows:
                assert np.isnan(got[b, c]).all(), (b, c, got[b, c])
            else:
                assert np.isfinite(got[b, c]).all(), (b, c)
                np.testing.assert_allclose(got[b, c], want[b, c], rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("value", NONFINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", IMAGE_OPS)
def test_nonfinite_x_poisons_only_its_row(op, backend, boundary, value, dtype):
    x = _poison(X, 1, 2, value).to(dtype)
    y = Y.to(dtype)
    got = call(op, x=x, y=y, boundary=boundary, backend=backend)
    # oracle on clean data for the untouched rows
    want = _oracle_op(op, X.to(dtype), y, None, boundary)
    _rows_nan_elsewhere_correct(got, want, {(1, 2)}, dtype)


@pytest.mark.parametrize("value", NONFINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", PAIR_OPS)
def test_nonfinite_y_poisons_only_its_row(op, backend, value):
    y = _poison(Y, 0, 1, value)
    got = getattr(huenet, op)(X, y, bins=8, backend=backend)
    want = _oracle_op(op, X, Y, None, "reflect")
    _rows_nan_elsewhere_correct(got, want, {(0, 1)}, torch.float64)


# (-inf is also a negative weight, which the spec makes a ValueError: not tested here)
@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", IMAGE_OPS)
def test_nonfinite_weight_poisons_rows(op, backend, value):
    w = torch.ones(2, 3, 4, 5, dtype=torch.float64)
    got = call(op, weight=_poison(w, 0, 0, value), backend=backend)
    want = _oracle_op(op, X, Y, w, "reflect")
    _rows_nan_elsewhere_correct(got, want, {(0, 0)}, torch.float64)
    # broadcast weight: a bad value in (b, 0) of a (B,1,*sp) weight poisons every channel of b
    w1 = torch.ones(2, 1, 4, 5, dtype=torch.float64)
    got = call(op, weight=_poison(w1, 1, 0, value), backend=backend)
    _rows_nan_elsewhere_correct(got, want, {(1, 0), (1, 1), (1, 2)}, torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nonfinite_gradients_do_not_leak(backend):
    x = _poison(X, 1, 2, math.nan).requires_grad_(True)
    out = huenet.mutual_information(x, Y, bins=8, backend=backend)
    out[0].sum().backward()  # only clean rows are used
    clean = X.clone().requires_grad_(True)
    huenet.mutual_information(clean, Y, bins=8, backend=backend)[0].sum().backward()
    torch.testing.assert_close(x.grad[0], clean.grad[0], rtol=0, atol=1e-12)
    # The poisoned sample took no part in the loss. (Plain autograd, the reference backend, still writes
    # 0 * NaN = NaN at the NaN pixel itself, so that one element is left out.)
    others = torch.ones_like(x.grad[1], dtype=torch.bool)
    others[2, 1, 2] = False
    assert torch.all(x.grad[1][others] == 0)


@pytest.mark.parametrize("value", NONFINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", IMAGE_OPS)
def test_validate_rejects_nonfinite(op, backend, value):
    with pytest.raises(ValueError, match=word("x")):
        call(op, x=_poison(X, 1, 2, value), backend=backend, validate=True)
    if op != "soft_histogram":
        with pytest.raises(ValueError, match=word("y")):
            call(op, y=_poison(Y, 0, 0, value), backend=backend, validate=True)
    with pytest.raises(ValueError, match=word("weight")):
        w = _poison(torch.ones(2, 3, 4, 5, dtype=torch.float64), 0, 0, value)
        call(op, weight=w, backend=backend, validate=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", IMAGE_OPS)
def test_validate_true_clean_input_unchanged(op, backend):
    a = call(op, backend=backend, validate=True)
    b = call(op, backend=backend)
    assert torch.equal(a, b)


def test_emd_nonfinite_rows():
    p = torch.softmax(rand((3, 10), seed=5), -1)
    q = torch.softmax(rand((3, 10), seed=6), -1)
    for order in (1, 2):
        for cyclic in (False, True):
            pp = p.clone()
            pp[1, 4] = math.nan
            d = huenet.emd(pp, q, order=order, cyclic=cyclic)
            assert torch.isnan(d[1])
            ref = oracle.emd(p, q, order, cyclic)
            np.testing.assert_allclose(d[[0, 2]].numpy(), ref[[0, 2]], atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", IMAGE_OPS)
def test_inputs_are_not_modified(op, backend):
    x = _poison(X, 1, 2, math.nan)
    x[0, 0, 0, 0] = math.inf
    y = _poison(Y, 0, 1, -math.inf)
    w = _poison(torch.rand(2, 1, 4, 5, dtype=torch.float64) + 0.1, 1, 0, math.nan)
    xc, yc, wc = x.clone(), y.clone(), w.clone()
    for boundary in BOUNDARIES:
        call(op, x=x, y=y, weight=w, boundary=boundary, backend=backend)
    assert torch.equal(x.isnan(), xc.isnan()) and torch.equal(x.nan_to_num(), xc.nan_to_num())
    assert torch.equal(y.isnan(), yc.isnan()) and torch.equal(y.nan_to_num(), yc.nan_to_num())
    assert torch.equal(w.isnan(), wc.isnan()) and torch.equal(w.nan_to_num(), wc.nan_to_num())
