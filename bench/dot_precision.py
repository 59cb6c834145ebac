"""Loss error of each ``tl.dot`` precision of the joint-histogram forward, emulated on the CPU.

    python -m bench.dot_precision [--side 128] [--bins 256]

The interpreter's ``tl.dot`` is exact, so the TF32 error cannot be seen without a GPU; this emulates it. The
forward computes J = A_xᵀ diag(w) A_y / S with membership tiles A in fp32. A tensor core reads TF32 operands,
fp32 with a 10-bit mantissa: "tf32" feeds the fp32 bits and the hardware ignores the low 13 (truncation; the
rounded variant, round to nearest with ties away as ``cvt.rna.tf32.f32``, is shown too), and "tf32x3" splits
each operand into big = rna(a) and small = rna(a - big) and adds big·big + big·small + small·big. Products of
TF32 values are exact in fp32, and the sums are fp32 matrix products here as on the GPU. Each J then goes
through float64 formulas for MI and the loss's D_MI = 1 - I/H(X,Y), compared with the float64 reference.
Pairs: natural photos (matplotlib's sample images, V channel, and a tone-mapped copy as the other image),
uniform noise, and a flat image (every pixel in the same bins, where rounding errors cannot average out).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def tf32(a: np.ndarray, mode: str) -> np.ndarray:
    """fp32 ``a`` with a 10-bit mantissa: "rna" rounds to nearest with ties away from zero, "trunc" drops bits."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    if mode == "rna":
        bits = bits + np.uint32(0x1000)
    return (bits & np.uint32(0xFFFFE000)).view(np.float32)


def emulated_joint(a: np.ndarray, b: np.ndarray, precision: str) -> np.ndarray:
    """a (N, K1) already weighted, b (N, K2), both fp32: aᵀb as the tensor cores compute it, in fp32."""
    if precision == "ieee":
        return a.T @ b
    if precision == "tf32":
        return tf32(a, "trunc").T @ tf32(b, "trunc")
    if precision == "tf32-rna":
        return tf32(a, "rna").T @ tf32(b, "rna")
    if precision == "tf32x3":
        a_big, b_big = tf32(a, "rna"), tf32(b, "rna")
        a_small, b_small = tf32(a - a_big, "rna"), tf32(b - b_big, "rna")
        return a_big.T @ b_small + a_small.T @ b_big + a_big.T @ b_big
    raise ValueError(f"precision must be ieee, tf32, tf32-rna or tf32x3; got {precision!r}")


def _information(j: np.ndarray) -> tuple[float, float]:
    """(MI, D_MI) of a joint histogram, float64."""
    j = j.astype(np.float64)

    def h(p):
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    joint = h(j.ravel())
    mi = h(j.sum(1)) + h(j.sum(0)) - joint
    return mi, 1.0 - mi / joint


def _pairs(side: int, seed: int = 0):
    import matplotlib.cbook
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        with Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)) as im:
            v = np.asarray(im.convert("RGB").resize((side, side)), dtype=np.float64).max(-1) / 255.0
        yield f"photo {name.split('.')[0]}, V vs tone-mapped V", v.ravel(), (v**0.6).ravel()
    yield "uniform noise pair", rng.random(side * side), rng.random(side * side)
    flat = np.full(side * side, 0.4137)
    yield "flat image", flat, flat


def measure(side: int, bins: int, bandwidth: float = 0.4, boundary: str = "reflect"):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    import oracle

    rows = []
    for name, x, y in _pairs(side):
        mx = oracle.memberships(x, bins, bandwidth=bandwidth, boundary=boundary)
        my = oracle.memberships(y, bins, bandwidth=bandwidth, boundary=boundary)
        n = len(x)
        want = mx.T @ my / n
        mi_want, dmi_want = _information(want)
        for precision in ("ieee", "tf32x3", "tf32-rna", "tf32"):
            got = emulated_joint(mx.astype(np.float32), my.astype(np.float32), precision).astype(np.float64) / n
            mi, dmi = _information(got)
            rows.append(
                {
                    "pair": name,
                    "precision": precision,
                    "J max|err| / max J": float(np.abs(got - want).max() / want.max()),
                    "sum J - 1": float(got.sum() - want.sum()),
                    "MI err": mi - mi_want,
                    "D_MI err": dmi - dmi_want,
                    "MI": mi_want,
                    "D_MI": dmi_want,
                }
            )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--bins", type=int, default=256, help="bins K (default 256)")
    args = parser.parse_args(argv)
    rows = measure(args.side, args.bins)
    print(f"{args.side}² pixels, K = {args.bins}, bandwidth 0.4, reflect; float64 reference\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else v for v in r.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
