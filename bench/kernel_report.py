"""Static report of every Triton kernel and autotune config: registers, spills, shared memory and key SASS.

    python -m bench.kernel_report [--arch 90] [--dtype fp32] [--markdown]

Compiles each variant of ``huenet.kernels.aot`` for the target without a GPU, runs the ``ptxas -v`` bundled with
Triton on its PTX (registers, spill bytes; shared memory from Triton's metadata) and counts tensor-core (HGMMA/HMMA/DMMA) and
special-function (MUFU) instructions, and all static instructions but NOPs, in its SASS with the bundled ``cuobjdump``. Zero spills is the goal.
Needs TRITON_INTERPRET unset.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

import triton
from triton.backends.nvidia import compiler as nvidia

from huenet.kernels.aot import variants

_BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
_SASS_OPS = ("HGMMA", "HMMA", "DMMA", "MUFU", "ATOM", "RED")


def _ptxas(arch: int) -> str:
    """The ptxas Triton itself uses for ``arch`` (newer Triton bundles a second one for PTX of sm_90+)."""
    try:
        return nvidia.get_ptxas(arch).path
    except TypeError:  # Triton 3.6 has one bundled ptxas
        return nvidia.get_ptxas().path


def _ptxas_stats(ptx: str, arch: int) -> dict:
    gpu = f"sm_{arch}a" if arch == 90 else f"sm_{arch}"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.ptx")
        with open(path, "w") as f:
            f.write(ptx)
        out = subprocess.run(
            [_ptxas(arch), "-v", f"--gpu-name={gpu}", path, "-o", os.path.join(tmp, "k.cubin")],
            capture_output=True,
            text=True,
            check=True,
        ).stderr

    def number(pattern):
        match = re.search(pattern, out)
        return int(match.group(1)) if match else 0

    return {
        "regs": number(r"Used (\d+) registers"),
        "spill_st": number(r"(\d+) bytes spill stores"),
        "spill_ld": number(r"(\d+) bytes spill loads"),
    }


def _sass_counts(cubin: bytes) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        sass = subprocess.run(
            [os.path.join(_BIN, "cuobjdump"), "--dump-sass", f.name], capture_output=True, text=True, check=True
        ).stdout
    opcodes = re.findall(r"/\*[0-9a-f]{4}\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_]+)", sass)
    counts = {op: sum(1 for o in opcodes if o.startswith(op)) for op in _SASS_OPS}
    counts["all"] = sum(1 for o in opcodes if o != "NOP")
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90)
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp64"])
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        parser.error("unset TRITON_INTERPRET: interpreted kernels cannot be compiled")
    header = ["kernel [config]", "regs", "spill st/ld B", "smem B", "SASS instr", *_SASS_OPS]
    print(f"sm_{args.arch}, {args.dtype}, triton {triton.__version__}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    spills = 0
    for variant in variants(args.dtype):
        compiled = variant.compile(args.arch)
        stats = _ptxas_stats(compiled.asm["ptx"], args.arch)
        sass = _sass_counts(compiled.asm["cubin"])
        spills += stats["spill_st"] + stats["spill_ld"]
        print(
            f"| {variant.name} | {stats['regs']} | {stats['spill_st']}/{stats['spill_ld']} | {compiled.metadata.shared} | {sass['all']} | "
            + " | ".join(str(sass[op]) for op in _SASS_OPS)
            + " |",
            flush=True,
        )
    print(f"\ntotal spill bytes: {spills}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
