"""Both joint-histogram paths of the eager backend, forced, against the oracle and gradcheck.

The eager backend picks dense membership rows and a matmul for small K and window outer products otherwise
(``huenet.backends.eager._dense_rows``), so the suite's usual small-K cases exercise only one of them.
"""

import numpy as np
import pytest
import torch

import huenet
import huenet.backends.eager
import oracle
from conftest import BOUNDARIES, DTYPES


@pytest.fixture(params=["dense-rows", "window-products"])
def path(request, monkeypatch):
    monkeypatch.setattr(
        huenet.backends.eager, "_DENSE_ROWS_MAX_RATIO", float("inf") if request.param == "dense-rows" else 0.0
    )
    return request.param


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_joint_histogram_matches_oracle(path, boundary, dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 2, 9, 7, generator=g, dtype=torch.float64) * 1.1 - 0.05).to(dtype)
    y = torch.rand(2, 2, 9, 7, generator=g, dtype=torch.float64).to(dtype)
    w = torch.rand(2, 1, 9, 7, generator=g, dtype=torch.float64).to(dtype)
    got = huenet.joint_histogram(x, y, bins=40, boundary=boundary, weight=w, backend="eager")
    want = oracle.joint_histogram(x, y, 40, boundary=boundary, weight=w)
    np.testing.assert_allclose(got.double().numpy(), want, atol=1e-6 if dtype == torch.float32 else 1e-13, rtol=0)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_joint_histogram_gradcheck(path, boundary):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 2, 3, 4, generator=g, dtype=torch.float64).requires_grad_()
    y = torch.rand(1, 2, 3, 4, generator=g, dtype=torch.float64).requires_grad_()
    w = (torch.rand(1, 2, 3, 4, generator=g, dtype=torch.float64) + 0.1).requires_grad_()

    def fn(x, y, w):
        return huenet.joint_histogram(x, y, bins=40, boundary=boundary, weight=w, backend="eager")

    assert torch.autograd.gradcheck(fn, (x, y, w))
