"""bench/dot_precision.py's TF32 emulation against the TF32 format: 1 sign, 8 exponent and 10 mantissa bits."""

import numpy as np

from bench.dot_precision import emulated_joint, tf32


def test_tf32_keeps_ten_mantissa_bits():
    one_and_half_ulp = np.float32(1.0 + 2.0**-11)  # halfway between two TF32 values
    assert tf32(np.array([one_and_half_ulp]), "rna")[0] == np.float32(1.0 + 2.0**-10)  # ties away from zero
    assert tf32(np.array([one_and_half_ulp]), "trunc")[0] == np.float32(1.0)
    a = np.random.default_rng(0).uniform(-3.0, 3.0, 10_000).astype(np.float32)
    for mode, bound in (("rna", 2.0**-11), ("trunc", 2.0**-10)):
        t = tf32(a, mode)
        assert np.all(np.abs(t - a) <= bound * np.abs(a))
        assert np.all(tf32(t, mode) == t)  # already TF32: unchanged
        assert np.all(t.view(np.uint32) & 0x1FFF == 0)
    assert np.all(np.abs(tf32(a, "trunc")) <= np.abs(a))


def test_tf32x3_recovers_fp32_and_tf32_does_not():
    rng = np.random.default_rng(1)
    a, b = rng.random((512, 16)).astype(np.float32), rng.random((512, 24)).astype(np.float32)
    want = a.astype(np.float64).T @ b.astype(np.float64)
    err = {p: np.abs(emulated_joint(a, b, p) - want).max() / want.max() for p in ("ieee", "tf32x3", "tf32")}
    assert err["ieee"] < 1e-6 and err["tf32x3"] < 1e-6
    assert err["tf32"] > 1e-4  # truncated operands lose about 2^-11 each
