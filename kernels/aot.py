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


#: Every gradient asked of the joint backward kernels (histogram and Parzen).
_EVERY_GRADIENT = {"NEED_X": True, "NEED_Y": True, "NEED_W": True}


def _configs(kernel):
    return getattr(kernel, "configs", [triton.Config({}, num_warps=4)])


def _signature(kernel, pointer: str, **pointers) -> dict:
    """Types of ``kernel``'s runtime arguments: each ``*_ptr`` a ``pointer`` unless ``pointers`` names another
    type for it, every other one i32."""
    fn = kernel.fn if isinstance(kernel, Autotuner) else kernel
    return {
        param.name: pointers.get(param.name, pointer) if param.name.endswith("_ptr") else "i32"
        for param in fn.params
        if not param.is_constexpr
    }


def _variants_of(name, kernel, pointer, constexprs, **pointers):
    signature = _signature(kernel, pointer, **pointers)
    for config in _configs(kernel):
        label = ",".join(f"{k}={v}" for k, v in config.kwargs.items())
        yield Variant(
            f"{name}[{label},warps={config.num_warps},stages={config.num_stages}]",
            kernel,
            signature,
            {**constexprs, **config.kwargs},
            {"num_warps": config.num_warps, "num_stages": config.num_stages},
        )


def _precisions(dtype: str) -> list:
    """The dot precisions the kernels run in for ``dtype``: fp64 computes with "ieee" dots only."""
    return ["ieee"] if dtype == "fp64" else list(joint_histogram.DOT_PRECISIONS)


def _dot_variants(name, kernel, dtype, constexprs, *labels):
    """``_variants_of`` a joint forward kernel in each dot precision of ``dtype``, named ``name(labels,precision)``."""
    for precision in _precisions(dtype):
        label = ",".join((*labels, precision))
        yield from _variants_of(f"{name}({label})", kernel, f"*{dtype}", {**constexprs, "PRECISION": precision})


def variants(dtype: str = "fp32"):
    """Every kernel × autotune config at bandwidth 0.4 (radius 7), reflect boundary, weighted."""
    p = f"*{dtype}"
    window = {"RADIUS": 7, "BOUNDARY": 0}
    yield from _variants_of(
        "soft_histogram.forward_atomic", soft_histogram._forward_atomic_kernel, p, window, out_ptr="*fp64"
    )
    yield from _variants_of(
        "soft_histogram.forward_partials", soft_histogram._forward_partials_kernel, p, window, partial_ptr="*fp64"
    )
    yield from _variants_of(
        "soft_histogram.backward", soft_histogram._backward_kernel, p, {**window, "NEED_U": True, "NEED_W": True}
    )
    yield from _dot_variants("joint_histogram.forward", joint_histogram._forward_kernel, dtype, window)
    yield from _variants_of(
        "joint_histogram.backward", joint_histogram._backward_kernel, p, {**window, **_EVERY_GRADIENT, "WIN_TILE": 16}
    )
    yield from parzen_variants(dtype)
    yield from _variants_of("entropy.entropies", entropy._entropies_kernel, p, {"BLOCK": 32})


#: The window pairs the losses use: MONAI's normalised Gaussians, its B-spline × box, HistoGAN's inverse
#: quadratic (the unnormalised Gaussian is HistoGAN's "rbf", the same code as the first with NORM off).
PARZEN_PAIRS = {
    "gaussian-norm": ("gaussian", True, "gaussian", True),
    "bspline-box": ("b-spline", False, "box", False),
    "invquad": ("inverse-quadratic", False, "inverse-quadratic", False),
}


def parzen_variants(dtype: str):
    """The Parzen joint kernels × autotune config × window pair (× dot precision for the fp32 forward), weighted."""
    for pair, (shape_x, norm_x, shape_y, norm_y) in PARZEN_PAIRS.items():
        shapes = {"SHAPE_X": SHAPES[shape_x], "NORM_X": norm_x, "SHAPE_Y": SHAPES[shape_y], "NORM_Y": norm_y}
        yield from _dot_variants("parzen_joint.forward", parzen_joint._forward_kernel, dtype, shapes, pair)
        yield from _variants_of(
            f"parzen_joint.backward({pair})",
            parzen_joint._backward_kernel,
            f"*{dtype}",
            {**shapes, **_EVERY_GRADIENT, "PRECISION": _precisions(dtype)[-1]},
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
