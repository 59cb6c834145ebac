"""Self-tests of the NumPy oracle (no huenet needed)."""

import numpy as np
import pytest

import oracle


def _rand(shape, lo=0.0, hi=1.0, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape)


def test_sigmoid_stable_and_symmetric():
    t = np.array([-1e4, -800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, 1e4])
    s = oracle.sigmoid(t)
    assert np.all(np.isfinite(s))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[4] == 0.5
    np.testing.assert_allclose(s + oracle.sigmoid(-t), 1.0, atol=1e-15)
    np.testing.assert_allclose(oracle.sigmoid(np.array([2.0])), 1 / (1 + np.exp(-2.0)), rtol=1e-15)
    # relative accuracy in the far tail
    np.testing.assert_allclose(oracle.sigmoid(np.array([-40.0])), np.exp(-40.0) / (1 + np.exp(-40.0)), rtol=1e-14)


@pytest.mark.parametrize("boundary", ["reflect", "circular"])
@pytest.mark.parametrize("rng", [(0.0, 1.0), (-1.0, 1.0), (-0.615, 0.615)])
@pytest.mark.parametrize("bins", [8, 37, 100])
def test_memberships_sum_to_one(boundary, rng, bins):
    lo, hi = rng
    span = hi - lo
    z = _rand((200,), lo - 0.05 * span, hi + 0.05 * span)
    z = np.concatenate([z, [lo, hi]])
    m = oracle.memberships(z, bins, rng, 0.4, boundary)
    assert m.shape == (202, bins)
    assert np.all(m >= -1e-15)
    np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-12)


def test_memberships_none_leaks():
    m = oracle.memberships(np.array([0.0, 0.5, 1.0]), 10, (0.0, 1.0), 0.4, "none")
    s = m.sum(-1)
    # sum_k pi_k(z) telescopes to sigmoid((z - lo)/W) - sigmoid((z - hi)/W), W = 0.04
    np.testing.assert_allclose(s[1], 1.0 - 2.0 / (1.0 + np.exp(12.5)), atol=1e-14)
    np.testing.assert_allclose(s[[0, 2]], 0.5 - 1.0 / (1.0 + np.exp(25.0)), atol=1e-14)  # half leaks out


def test_circular_is_periodic():
    z = _rand((50,))
    a = oracle.memberships(z, 16, (0.0, 1.0), 0.4, "circular")
    for shift in (-2.0, -1.0, 1.0, 3.0):
        b = oracle.memberships(z + shift, 16, (0.0, 1.0), 0.4, "circular")
        np.testing.assert_allclose(a, b, atol=1e-12)
    # a value just below lo lands at the top of the range
    m = oracle.memberships(np.array([-0.05]), 10, (0.0, 1.0), 0.01, "circular")
    assert m[0, -1] > 0.999


def test_reflect_formula_by_hand():
    # one point, direct evaluation of the three images
    z, K, b = 0.03, 5, 0.4
    W = b / K
    e = np.arange(K + 1) / K
    s = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
    want = np.zeros(K)
    for u in (z, -z, 2 - z):
        want += s((u - e[:-1]) / W) - s((u - e[1:]) / W)
    got = oracle.memberships(np.array([z]), K, (0.0, 1.0), b, "reflect")[0]
    np.testing.assert_allclose(got, want, atol=1e-15)


@pytest.mark.parametrize("boundary", ["reflect", "circular"])
def test_histogram_sums_to_one_with_weights(boundary):
    x = _rand((2, 3, 7, 5))
    w = _rand((2, 1, 7, 5), 0.1, 2.0, seed=1)
    p = oracle.soft_histogram(x, 37, (0.0, 1.0), 0.4, boundary, w)
    assert p.shape == (2, 3, 37)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-12)


def test_histogram_weight_broadcast_equals_full():
    x = _rand((2, 3, 4, 4))
    w1 = _rand((2, 1, 4, 4), 0.1, 2.0, seed=1)
    wf = np.repeat(w1, 3, axis=1)
    a = oracle.soft_histogram(x, 12, weight=w1)
    b = oracle.soft_histogram(x, 12, weight=wf)
    np.testing.assert_allclose(a, b, atol=1e-15)


def test_histogram_weights_by_loop():
    x = _rand((1, 1, 6))
    w = _rand((1, 1, 6), 0.1, 2.0, seed=3)
    p = oracle.soft_histogram(x, 9, (0.0, 1.0), 0.7, "none", w)[0, 0]
    want = sum(w[0, 0, i] * oracle.kernel(x[0, 0, i], 9, (0.0, 1.0), 0.7) for i in range(6)) / w.sum()
    np.testing.assert_allclose(p, want, atol=1e-15)


def test_joint_marginals_are_histograms():
    x = _rand((2, 2, 5, 3), seed=1)
    y = _rand((2, 2, 5, 3), seed=2)
    w = _rand((2, 2, 5, 3), 0.5, 1.5, seed=3)
    J = oracle.joint_histogram(x, y, 11, weight=w)
    p1, p2 = oracle.marginals(J)
    np.testing.assert_allclose(p1, oracle.soft_histogram(x, 11, weight=w), atol=1e-13)
    np.testing.assert_allclose(p2, oracle.soft_histogram(y, 11, weight=w), atol=1e-13)


def test_tiny_bandwidth_is_hard_histogram():
    K = 10
    idx = np.random.default_rng(0).integers(0, K, size=(1, 1, 40))
    x = (idx + 0.5) / K
    p = oracle.soft_histogram(x, K, (0.0, 1.0), 0.01)
    want = np.bincount(idx.ravel(), minlength=K) / 40
    np.testing.assert_allclose(p[0, 0], want, atol=1e-15)


def _w1_samples(a, b):
    """Exact W1 between two equal-size empirical distributions on the line."""
    return np.mean(np.abs(np.sort(a) - np.sort(b)))


def test_emd_order1_is_w1():
    K = 20
    r = np.random.default_rng(5)
    ia, ib = r.integers(0, K, 100), r.integers(0, K, 100)
    pa = np.bincount(ia, minlength=K) / 100
    pb = np.bincount(ib, minlength=K) / 100
    np.testing.assert_allclose(oracle.emd(pa, pb), _w1_samples((ia + 0.5) / K, (ib + 0.5) / K), atol=1e-14)


def test_emd_basic_properties():
    r = np.random.default_rng(0)
    p = r.random((3, 16))
    q = r.random((3, 16))
    p /= p.sum(-1, keepdims=True)
    q /= q.sum(-1, keepdims=True)
    for order in (1, 2):
        for cyclic in (False, True):
            np.testing.assert_allclose(oracle.emd(p, p, order, cyclic), 0.0, atol=1e-15)
            np.testing.assert_allclose(oracle.emd(p, q, order, cyclic), oracle.emd(q, p, order, cyclic), atol=1e-15)
            for s in (1, 5, 15):
                rolled = oracle.emd(np.roll(p, s, -1), np.roll(q, s, -1), order, True)
                np.testing.assert_allclose(rolled, oracle.emd(p, q, order, True), atol=1e-14)


def test_emd_lower_median_same_value():
    r = np.random.default_rng(1)
    p, q = r.random(10), r.random(10)
    D = np.cumsum(p) - np.cumsum(q)
    lower = np.sort(D)[4]
    np.testing.assert_allclose(np.mean(np.abs(D - lower)), oracle.emd(p, q, 1, True), atol=1e-15)


def test_entropy_identities():
    x = _rand((2, 2, 6, 6), seed=1)
    y = np.clip(x + _rand((2, 2, 6, 6), -0.1, 0.1, seed=2), 0, 1)
    J = oracle.joint_histogram(x, y, 13)
    p1, p2 = oracle.marginals(J)
    H = oracle.joint_entropy_from_joint(J)
    I = oracle.mutual_information_from_joint(J)  # noqa: E741
    np.testing.assert_allclose(I, oracle.entropy(p1) + oracle.entropy(p2) - H, atol=1e-12)
    assert np.all(I <= np.minimum(oracle.entropy(p1), oracle.entropy(p2)) + 1e-12)
    assert np.all(I >= -1e-12)
    d = oracle.mi_distance(x, y, 13)
    np.testing.assert_allclose(d, 1 - I / H, atol=1e-12)
    ce = oracle.conditional_entropy(x, y, 13)
    np.testing.assert_allclose(ce, H - oracle.entropy(p2), atol=1e-12)


def test_entropy_zero_log_zero():
    p = np.array([1.0, 0.0, 0.0])
    assert oracle.entropy(p) == 0.0
    J = np.zeros((1, 1, 3, 3))
    J[0, 0, 1, 2] = 1.0
    assert oracle.joint_entropy_from_joint(J)[0, 0] == 0.0
    assert oracle.mutual_information_from_joint(J)[0, 0] == 0.0


def test_mi_distance_is_one_for_delta():
    x = np.full((1, 1, 4, 4), 0.55)
    d = oracle.mi_distance(x, x, 10, (0.0, 1.0), 1e-4)
    assert d[0, 0] == 1.0


def test_rgb_to_hsv_is_colorsys_in_turns():
    import colorsys

    ties = np.array([[[1, 0, 0, 1, 0.5], [1, 1, 0, 0, 0.5], [0, 1, 1, 0, 0.5]]])  # ties of max, black, grey
    rgb = np.concatenate([_rand((1, 3, 40), seed=7), ties], 2)
    hsv = oracle.rgb_to_hsv(rgb)
    want = np.array([colorsys.rgb_to_hsv(*rgb[0, :, i]) for i in range(rgb.shape[2])]).T[None]
    np.testing.assert_allclose(hsv, want, atol=1e-15)


def test_channel_ranges_are_the_extremes_over_the_rgb_cube():
    corners = np.array(list(np.ndindex(2, 2, 2)), dtype=np.float64).T.reshape(1, 3, 8)
    inside = _rand((1, 3, 500), seed=8)
    for space, channels in oracle.CHANNELS.items():
        at_corners, anywhere = oracle.convert(corners, space), oracle.convert(inside, space)
        for c, (_, (lo, hi), periodic) in enumerate(channels):
            if not periodic:  # hue takes values up to (not including) 1 turn
                np.testing.assert_allclose([at_corners[0, c].min(), at_corners[0, c].max()], [lo, hi], atol=1e-15)
            assert lo <= anywhere[0, c].min() and anywhere[0, c].max() <= hi
