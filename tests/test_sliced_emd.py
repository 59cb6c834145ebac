"""huenet.sliced_emd against a float64 oracle written from its formula, its closed form for shifts, gradcheck
on every backend (Triton under the interpreter) and its argument errors."""

import numpy as np
import pytest
import torch

import huenet
import oracle
from conftest import ALL_BACKENDS


def _clouds(seed=0, n=60, m=45, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(2, 3, n, generator=g, dtype=torch.float64) - 0.5).to(dtype)
    y = (0.6 * torch.rand(2, 3, m, generator=g, dtype=torch.float64) - 0.2).to(dtype)
    wx = torch.rand(2, n, generator=g, dtype=torch.float64).to(dtype) + 0.1
    wy = torch.rand(2, m, generator=g, dtype=torch.float64).to(dtype) + 0.1
    theta = torch.nn.functional.normalize(torch.randn(5, 3, generator=g, dtype=torch.float64), dim=1).to(dtype)
    return x, y, wx, wy, theta


def _oracle(x, y, wx, wy, theta, bins, rng, bandwidth):
    """Mean over directions of (hi - lo) * W1 of the soft histograms of the projections, in float64 NumPy."""
    x, y, wx, wy, theta = (oracle.to_numpy(t) for t in (x, y, wx, wy, theta))
    px, py = np.einsum("dc,bcn->bdn", theta, x), np.einsum("dc,bcn->bdn", theta, y)
    hx = oracle.soft_histogram(px, bins, rng, bandwidth, "reflect", np.broadcast_to(wx[:, None], px.shape))
    hy = oracle.soft_histogram(py, bins, rng, bandwidth, "reflect", np.broadcast_to(wy[:, None], py.shape))
    return oracle.emd(hx, hy).mean(-1) * (rng[1] - rng[0])


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_matches_the_float64_oracle(backend):
    x, y, wx, wy, theta = _clouds()
    got = huenet.sliced_emd(x, y, theta, 48, (-1.0, 1.0), 0.8, wx, wy, backend=backend)
    np.testing.assert_allclose(got.numpy(), _oracle(x, y, wx, wy, theta, 48, (-1.0, 1.0), 0.8), rtol=1e-9)


def test_a_shift_costs_its_projection():
    # Far from the range's ends, translating a cloud by s translates every smoothed slice by theta . s, whose W1
    # is |theta . s|: the closed form of the sliced EMD of a shift.
    x, _, wx, _, theta = _clouds(seed=3)
    shift = torch.tensor([0.1, -0.05, 0.07], dtype=torch.float64)
    got = huenet.sliced_emd(x, x + shift[:, None], theta, 200, (-2.0, 2.0), 0.8, wx, wx)
    expected = (theta @ shift).abs().mean()
    torch.testing.assert_close(got, expected.expand(2), rtol=1e-6, atol=1e-9)


def test_zero_for_equal_clouds_and_symmetric():
    x, y, wx, wy, theta = _clouds(seed=4)
    assert float(huenet.sliced_emd(x, x, theta, x_weight=wx, y_weight=wx).abs().max()) < 1e-12
    torch.testing.assert_close(
        huenet.sliced_emd(x, y, theta, x_weight=wx, y_weight=wy),
        huenet.sliced_emd(y, x, theta, x_weight=wy, y_weight=wx),
    )


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_gradcheck(backend):
    # Small clouds and two directions: the Triton interpreter runs every program of every evaluation.
    x, y, wx, wy, theta = (t[:1] for t in _clouds(seed=5, n=6, m=5))
    theta = theta[:2]
    args = tuple(t.clone().requires_grad_() for t in (x, y, wx, wy))

    def fn(x, y, wx, wy):
        return huenet.sliced_emd(x, y, theta, 16, (-1.0, 1.0), 0.8, wx, wy, backend=backend)

    assert torch.autograd.gradcheck(fn, args, fast_mode=True)


@pytest.mark.parametrize(
    "change, arg",
    [
        (dict(x=torch.rand(2, 3)), "`x`"),
        (dict(y=torch.rand(2, 2, 5)), "`y`"),
        (dict(directions=torch.rand(4, 2)), "`directions`"),
        (dict(x_weight=torch.rand(2, 7)), "`x_weight`"),
        (dict(y_weight=torch.rand(3, 45)), "`y_weight`"),
    ],
)
def test_bad_arguments_name_the_argument(change, arg):
    x, y, wx, wy, theta = _clouds(dtype=torch.float32)
    kwargs = dict(x=x, y=y, directions=theta, x_weight=wx, y_weight=wy) | change
    with pytest.raises((ValueError, TypeError), match=arg):
        huenet.sliced_emd(**kwargs)
