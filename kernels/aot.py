"""Ahead-of-time compilation of every kernel and autotune config for a GPU architecture, without a GPU.

``python -m huenet.kernels.aot --arch 80 --arch 90`` compiles each kernel with each of its autotune configs to PTX
and a cubin, which catches GPU-only errors (globals that are not constexpr, dot shapes below the minimum,
unsupported dtypes) on a CPU machine, and prints one line per compilation. ``bench/kernel_report.py`` adds the
register, spill and instruction counts. Needs TRITON_INTERPRET unset: interpreted kernels cannot be compiled.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.autotuner import Autotuner

from . import entropy, joint_histogram, parzen_joint, soft_histogram
from .parzen_windows import SHAPES


@dataclass
class Variant:
    """One compilation: a kernel, its argument types and constexprs, and launch options."""

    name: str
    kernel: object
    signature: dict
    constexprs: dict
    options: dict

    def compile(self, arch: int):
        fn = self.kernel.fn if isinstance(self.kernel, Autotuner) else self.kernel
        source = ASTSource(fn, {**self.signature, **{k: "constexpr" for k in self.constexprs}}, self.constexprs)
        return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=self.options)


def _configs(kernel):
    return getattr(kernel, "configs", [triton.Config({}, num_warps=4)])


def _variants_of(name, kernel, signature, constexprs):
    for config in _configs(kernel):
        label = ",".join(f"{k}={v}" for k, v in config.kwargs.items())
        yield Variant(
            f"{name}[{label},warps={config.num_warps},stages={config.num_stages}]",
            kernel,
            signature,
            {**constexprs, **config.kwargs},
            {"num_warps": config.num_warps, "num_stages": config.num_stages},
        )


def variants(dtype: str = "fp32"):
    """Every kernel × autotune config at bandwidth 0.4 (radius 7), reflect boundary, weighted."""
    p = f"*{dtype}"
    common = {"RADIUS": 7, "BOUNDARY": 0, "HAS_W": True}
    yield from _variants_of(
        "soft_histogram.forward_atomic",
        soft_histogram._forward_atomic_kernel,
        {
            "u_ptr": p,
            "w_ptr": p,
            "out_ptr": "*fp64",
            "consts_ptr": p,
            "N": "i32",
            "K": "i32",
            "FIRST": "i32",
            "LAST": "i32",
            "WIN": "i32",
            "N_BUCKET": "i32",
        },
        common,
    )
    yield from _variants_of(
        "soft_histogram.forward_partials",
        soft_histogram._forward_partials_kernel,
        {
            "u_ptr": p,
            "w_ptr": p,
            "partial_ptr": "*fp64",
            "consts_ptr": p,
            "M": "i32",
            "N": "i32",
            "K": "i32",
            "N_BUCKET": "i32",
        },
        common,
    )
    yield from _variants_of(
        "soft_histogram.backward",
        soft_histogram._backward_kernel,
        {
            "u_ptr": p,
            "w_ptr": p,
            "g_ptr": p,
            "gp_ptr": p,
            "grad_u_ptr": p,
            "grad_w_ptr": p,
            "consts_ptr": p,
            "N": "i32",
            "K": "i32",
            "FIRST": "i32",
            "LAST": "i32",
            "WIN": "i32",
            "N_BUCKET": "i32",
        },
        {**common, "NEED_U": True, "NEED_W": True},
    )
    precisions = ["ieee"] if dtype == "fp64" else list(joint_histogram.DOT_PRECISIONS)
    for precision in precisions:
        yield from _variants_of(
            f"joint_histogram.forward({precision})",
            joint_histogram._forward_kernel,
            {
                "x_ptr": p,
                "y_ptr": p,
                "w_ptr": p,
                "partial_ptr": p,
                "consts_ptr": p,
                "M": "i32",
                "N": "i32",
                "K": "i32",
                "N_BUCKET": "i32",
            },
            {**common, "PRECISION": precision},
        )
    yield from _variants_of(
        "joint_histogram.backward",
        joint_histogram._backward_kernel,
        {
            "x_ptr": p,
            "y_ptr": p,
            "w_ptr": p,
            "g_ptr": p,
            "gj_ptr": p,
            "grad_x_ptr": p,
            "grad_y_ptr": p,
            "grad_w_ptr": p,
            "consts_ptr": p,
            "N": "i32",
            "K": "i32",
            "FIRST": "i32",
            "LAST": "i32",
            "WIN": "i32",
            "N_BUCKET": "i32",
        },
        {**common, "NEED_X": True, "NEED_Y": True, "NEED_W": True, "WIN_TILE": 16},
    )
    yield from parzen_variants(dtype)
    yield from _variants_of(
        "entropy.entropies", entropy._entropies_kernel, {"j_ptr": p, "out_ptr": p, "K": "i32"}, {"BLOCK": 32}
    )


#: The window pairs the losses use: MONAI's normalised Gaussians, its B-spline × box, HistoGAN's inverse
#: quadratic (the unnormalised Gaussian is HistoGAN's "rbf", the same code as the first with NORM off).
PARZEN_PAIRS = {
    "gaussian-norm": ("gaussian", True, "gaussian", True),
    "bspline-box": ("b-spline", False, "box", False),
    "invquad": ("inverse-quadratic", False, "inverse-quadratic", False),
}


def parzen_variants(dtype: str = "fp32"):
    """The Parzen joint kernels × autotune config × window pair (× dot precision for the fp32 forward), weighted."""
    p = f"*{dtype}"
    tensors = {name: p for name in ("x_ptr", "y_ptr", "w_ptr", "cx_ptr", "cy_ptr", "scales_ptr")}
    precisions = ["ieee"] if dtype == "fp64" else list(joint_histogram.DOT_PRECISIONS)
    for pair, (shape_x, norm_x, shape_y, norm_y) in PARZEN_PAIRS.items():
        shapes = {"SHAPE_X": SHAPES[shape_x], "NORM_X": norm_x, "SHAPE_Y": SHAPES[shape_y], "NORM_Y": norm_y}
        shapes["HAS_W"] = True
        for precision in precisions:
            yield from _variants_of(
                f"parzen_joint.forward({pair},{precision})",
                parzen_joint._forward_kernel,
                {**tensors, "partial_ptr": p, "M": "i32", "N": "i32", "K": "i32", "N_BUCKET": "i32"},
                {**shapes, "PRECISION": precision},
            )
        yield from _variants_of(
            f"parzen_joint.backward({pair})",
            parzen_joint._backward_kernel,
            {
                **tensors,
                "g_ptr": p,
                "grad_x_ptr": p,
                "grad_y_ptr": p,
                "grad_w_ptr": p,
                "N": "i32",
                "K": "i32",
                "N_BUCKET": "i32",
            },
            {**shapes, "NEED_X": True, "NEED_Y": True, "NEED_W": True, "PRECISION": precisions[-1]},
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, action="append", help="compute capability, e.g. 80 or 90 (repeat)")
    parser.add_argument("--dtype", action="append", choices=["fp32", "fp64"], help="pointer dtype (repeat)")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        parser.error("unset TRITON_INTERPRET: interpreted kernels cannot be compiled")
    failures = 0
    for arch in args.arch or [80, 90]:
        for dtype in args.dtype or ["fp32", "fp64"]:
            for variant in variants(dtype):
                try:
                    compiled = variant.compile(arch)
                    print(
                        f"ok   sm_{arch} {dtype} {variant.name} shared={compiled.metadata.shared} "
                        f"cubin={len(compiled.asm['cubin'])}B",
                        flush=True,
                    )
                except Exception as err:  # report every failing variant, not only the first
                    failures += 1
                    print(f"FAIL sm_{arch} {dtype} {variant.name}: {type(err).__name__}: {err}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
