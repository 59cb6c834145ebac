"""One-call GPU check of the Triton kernels: correctness of every config, realistic sizes, limits, determinism, speed.

    python -m bench.gpu_check --out DIR            # on a CUDA GPU; at most ~9 min on one H100/H200
    python -m bench.gpu_check --smoke --out DIR    # the same script at tiny sizes under TRITON_INTERPRET=1 (CI)

Sections:

* A: every autotune config of every kernel, forced one at a time (``huenet.kernels.pinned``), fp32 against a
  float64 reference, forward and backward (x, y, w); config 0 under every boundary, weighted and not; every
  dot precision (the TF32 error); fp64; the entropies and MI.
* B: realistic sizes, autotuned (B=16, 3×256², K=256), natural-like and random images, against float64; the
  constant-image accumulation error from 256² to 1024².
* C: limits, each in a subprocess: the largest image side, int64 offsets, too many rows.
* D: repeatability, and determinism under ``torch.use_deterministic_algorithms``.
* E: GPU time (CUDA events, warm-up, median, inputs rotated beyond L2) and host wall time per call for triton,
  eager and reference, with ratios; first-call compile and tuning time; host syncs, ATen ops and kernel
  launches per ``HueNetLoss`` step; the chosen configs; the fraction of the copy-bandwidth floor and of the
  measured matrix peak.
* F: the Parzen kernels of the drop-in losses (``bench/gpu_check_families.py``): every config per window pair,
  the losses against MONAI and the dense RGB-uv formula, their time and memory.

Progress streams to stdout; OUT/gpu_check.json and OUT/gpu_check.md hold the results. Exit 1 if any check
failed (a kernel error is a failure, never a skip), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
import warnings

from .gpu_check_families import section_f

# Sizes per mode: A's pixels per side, B's batch and side, the constant sides, C's sides, E's batch and side.
FULL = {
    "a_side": 300,
    "bins": 256,
    "b_batch": 16,
    "b_side": 256,
    "const_sides": (256, 512, 1024),
    "c_soft_side": 4096,
    "c_joint_side": 2048,
    "c_int64_side": 32768,
    "e_batch": 16,
    "e_side": 256,
    "repeats": 20,
}
SMOKE = {
    "a_side": 12,
    "bins": 16,
    "b_batch": 1,
    "b_side": 16,
    "const_sides": (16, 32),
    "c_soft_side": 16,
    "c_joint_side": 8,
    "c_int64_side": 8,
    "e_batch": 1,
    "e_side": 8,
    "repeats": 2,
}
BOUNDARIES = ("reflect", "circular", "none")


class Check:
    """Collects results; each check passes, fails (with its numbers) or errors (a failure with the traceback)."""

    def __init__(self):
        self.rows: list[dict] = []
        self.section = ""

    def record(self, name: str, ok: bool, value=None, limit=None, **detail):
        row = {"section": self.section, "name": name, "ok": bool(ok), "value": value, "limit": limit, **detail}
        self.rows.append(row)
        shown = f"{value:.3g}" if isinstance(value, float) else value
        print(
            f"[{self.section}] {'ok  ' if ok else 'FAIL'} {name}: {shown}"
            + (f" (limit {limit})" if limit is not None else "")
            + "".join(f" {k}={v}" for k, v in detail.items()),
            flush=True,
        )

    def run(self, name: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # a kernel or compile error is a failure, reported, and the check goes on
            self.record(name, False, f"{type(err).__name__}: {err}"[:300], trace=traceback.format_exc(limit=4)[-1200:])
            return None

    @property
    def failures(self) -> int:
        return sum(not r["ok"] for r in self.rows)


def _rel(got, want) -> float:
    """‖got − want‖ / ‖want‖ in float64; inf for NaN."""
    import torch

    got, want = got.double(), want.double().to(got.device)
    if not torch.isfinite(got).all():
        return float("inf")
    return ((got - want).norm() / want.norm().clamp_min(1e-300)).item()


def _max_abs(got, want) -> float:
    import torch

    got, want = got.double(), want.double().to(got.device)
    return float("inf") if not torch.isfinite(got).all() else (got - want).abs().max().item()


def _natural(batch, side, device, seed):
    """Natural-like images: smooth random fields (bilinear upsampling of 8×8 noise) plus a little noise."""
    import torch

    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 8, 8, generator=g, dtype=torch.float64)
    x = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)
    return (x + 0.02 * torch.rand(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1).to(device)


def _random(shape, device, seed, lo=0.0, hi=1.0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return (lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)).to(device)


# ---- A: every config.


def _soft_case(huenet, x, w, bins, boundary, backend, deterministic=False):
    """Soft histogram and its gradients (x, w) for a fixed output gradient."""
    import torch

    x, w = x.clone().requires_grad_(), None if w is None else w.clone().requires_grad_()
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)
    try:
        p = huenet.soft_histogram(x, bins=bins, boundary=boundary, weight=w, backend=backend)
    finally:
        torch.use_deterministic_algorithms(previous)
    g = torch.linspace(-1, 1, bins, dtype=p.dtype, device=p.device).expand_as(p)
    grads = torch.autograd.grad((p * g).sum(), [t for t in (x, w) if t is not None])
    return p.detach(), grads


def _joint_case(huenet, x, y, w, bins, boundary, backend):
    import torch

    x, y = x.clone().requires_grad_(), y.clone().requires_grad_()
    w = None if w is None else w.clone().requires_grad_()
    j = huenet.joint_histogram(x, y, bins=bins, boundary=boundary, weight=w, backend=backend)
    g = torch.cos(torch.arange(bins * bins, dtype=j.dtype, device=j.device)).view(bins, bins).expand_as(j)
    grads = torch.autograd.grad((j * g).sum(), [t for t in (x, y, w) if t is not None])
    return j.detach(), grads


def _compare(check, name, got, want, hist_atol, grad_rel):
    (hist, grads), (ref_hist, ref_grads) = got, want
    err = _max_abs(hist, ref_hist)
    check.record(f"{name} hist max|err|", err <= hist_atol, err, hist_atol)
    for label, a, b in zip("xyw" if len(grads) == 3 else ("x", "w") if len(grads) == 2 else "x", grads, ref_grads):
        rel = _rel(a, b)
        check.record(f"{name} d/d{label} rel", rel <= grad_rel, rel, grad_rel)


def section_a(check, huenet, kernels, size, device):
    import torch

    sk, jk = kernels.soft_histogram, kernels.joint_histogram
    side, bins = size["a_side"], size["bins"]
    x64 = _random((1, 2, side, side), device, 1, -0.05, 1.05)
    y64 = _random((1, 2, side, side), device, 2, -0.05, 1.05)
    w64 = _random((1, 2, side, side), device, 3, 0.05, 1.0)
    x32, y32, w32 = x64.float(), y64.float(), w64.float()
    refs = {}

    def ref_soft(boundary, weighted):
        key = ("soft", boundary, weighted)
        if key not in refs:
            refs[key] = _soft_case(
                huenet, x32.double(), w32.double() if weighted else None, bins, boundary, "reference"
            )
        return refs[key]

    def ref_joint(boundary, weighted):
        key = ("joint", boundary, weighted)
        if key not in refs:
            refs[key] = _joint_case(
                huenet, x32.double(), y32.double(), w32.double() if weighted else None, bins, boundary, "reference"
            )
        return refs[key]

    def cases(index):
        return [(b, wt) for b in BOUNDARIES for wt in (False, True)] if index == 0 else [("reflect", True)]

    soft_kernels = [
        ("soft atomic fwd", sk._forward_atomic_kernel, False),
        ("soft bwd", sk._backward_kernel, False),
        ("soft partials fwd", sk._forward_partials_kernel, True),
    ]
    for label, kernel, deterministic in soft_kernels:
        for index, config in enumerate(kernel.configs):
            for boundary, weighted in cases(index):
                name = f"{label} config{index} {boundary} {'w' if weighted else 'unw'}"

                def one():
                    with kernels.pinned(kernel, index):
                        got = _soft_case(
                            huenet, x32, w32 if weighted else None, bins, boundary, "triton", deterministic
                        )
                    _compare(check, name, got, ref_soft(boundary, weighted), 2e-6, 1e-4)

                check.run(name, one)
    for precision, atol, rel in (("ieee", 2e-6, 1e-4), ("tf32x3", 2e-6, 1e-4), ("tf32", 1e-4, 5e-3)):
        for index, config in enumerate(jk._forward_kernel.configs):
            for boundary, weighted in cases(index) if precision == "tf32x3" else [("reflect", True)]:
                name = f"joint fwd {precision} config{index} {boundary} {'w' if weighted else 'unw'}"

                def one():
                    os.environ["HUENET_DOT_PRECISION"] = precision
                    try:
                        with kernels.pinned(jk._forward_kernel, index):
                            got = _joint_case(huenet, x32, y32, w32 if weighted else None, bins, boundary, "triton")
                    finally:
                        os.environ.pop("HUENET_DOT_PRECISION", None)
                    _compare(check, name, got, ref_joint(boundary, weighted), atol, rel)

                check.run(name, one)
    for index, config in enumerate(jk._backward_kernel.configs):
        for boundary, weighted in cases(index):
            name = f"joint bwd config{index} {boundary} {'w' if weighted else 'unw'}"

            def one():
                with kernels.pinned(jk._backward_kernel, index):
                    got = _joint_case(huenet, x32, y32, w32 if weighted else None, bins, boundary, "triton")
                _compare(check, name, got, ref_joint(boundary, weighted), 2e-6, 1e-4)

            check.run(name, one)

    def fp64():
        for boundary in BOUNDARIES:
            got = _soft_case(huenet, x64, w64, bins, boundary, "triton")
            want = _soft_case(huenet, x64, w64, bins, boundary, "reference")
            _compare(check, f"fp64 soft {boundary}", got, want, 1e-12, 1e-10)
            got = _joint_case(huenet, x64, y64, w64, bins, boundary, "triton")
            want = _joint_case(huenet, x64, y64, w64, bins, boundary, "reference")
            _compare(check, f"fp64 joint {boundary}", got, want, 1e-12, 1e-10)

    check.run("fp64", fp64)

    def information():
        for name in ("mutual_information", "joint_entropy", "mi_distance", "conditional_entropy"):
            for dtype, tol in ((torch.float32, 1e-4), (torch.float64, 1e-10)):
                xs, ys = x64.to(dtype).requires_grad_(), y64.to(dtype).requires_grad_()
                got = getattr(huenet, name)(xs, ys, bins=bins, backend="triton")
                (gx,) = torch.autograd.grad(got.sum(), xs)
                xr, yr = x64.clone().requires_grad_(), y64.clone()
                want = getattr(huenet, name)(xr, yr, bins=bins, backend="reference")
                (wx,) = torch.autograd.grad(want.sum(), xr)
                err = _max_abs(got, want)
                check.record(f"{name} {str(dtype)[6:]} value max|err|", err <= tol, err, tol)
                rel = _rel(gx, wx)
                check.record(f"{name} {str(dtype)[6:]} d/dx rel", rel <= 10 * tol, rel, 10 * tol)

    check.run("entropies and MI", information)


# ---- B: realistic sizes.


def section_b(check, huenet, size, device):
    import torch

    batch, side, bins = size["b_batch"], size["b_side"], size["bins"]
    for kind in ("natural", "random"):

        def one():
            x = _natural(batch, side, device, 5) if kind == "natural" else _random((batch, 3, side, side), device, 5)
            y = x.flip(-1) if kind == "natural" else _random((batch, 3, side, side), device, 6)
            for backend in ("triton", "eager"):
                p = huenet.soft_histogram(x.float(), bins=bins, backend=backend)
                want = huenet.soft_histogram(x, bins=bins, backend="reference")
                err = _max_abs(p, want)
                check.record(f"{kind} soft {backend} max|err|", err <= 2e-6, err, 2e-6)
                j = huenet.joint_histogram(x.float(), y.float(), bins=bins, backend=backend)
                # The float64 reference in chunks of rows: its dense (rows, N, K) memberships are large.
                want = torch.cat(
                    [
                        huenet.joint_histogram(x[i : i + 1], y[i : i + 1], bins=bins, backend="reference")
                        for i in range(batch)
                    ]
                )
                err = _max_abs(j, want)
                check.record(f"{kind} joint {backend} max|err|", err <= 2e-6, err, 2e-6)
                del j, want
            xg = x.float().requires_grad_()
            got = torch.autograd.grad(huenet.mi_distance(xg, y.float(), bins=bins, backend="triton").sum(), xg)[0]
            xr = x.clone().requires_grad_()
            want = torch.autograd.grad(huenet.mi_distance(xr, y, bins=bins, backend="eager").sum(), xr)[0]
            rel = _rel(got, want)
            check.record(f"{kind} mi_distance d/dx rel vs eager fp64", rel <= 1e-3, rel, 1e-3)

        check.run(f"realistic {kind}", one)
    for side in size["const_sides"]:

        def const():
            x = torch.full((1, 1, side, side), 0.3013, device=device)
            one_pixel = huenet.soft_histogram(x[..., :1, :1].double(), bins=bins, backend="reference")
            one_joint = huenet.joint_histogram(
                x[..., :1, :1].double(), x[..., :1, :1].double(), bins=bins, backend="reference"
            )
            for backend in ("triton", "eager"):
                p = huenet.soft_histogram(x, bins=bins, backend=backend)
                err = _rel(p, one_pixel)
                check.record(f"constant {side}² soft {backend} ‖err‖/‖ref‖", err <= 1e-5, err, 1e-5)
                j = huenet.joint_histogram(x, x, bins=bins, backend=backend)
                err = _rel(j, one_joint)
                check.record(f"constant {side}² joint {backend} ‖err‖/‖ref‖", err <= 1e-5, err, 1e-5)

        check.run(f"constant {side}²", const)


# ---- C: limits, each in a subprocess (a failed launch can leave the CUDA context unusable).

_LIMIT_SCRIPT = r"""
import sys, torch, huenet
kind, side, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "soft":
    x = torch.rand(1, 1, side, side, device=device, requires_grad=True)
    p = huenet.soft_histogram(x, bins=64, backend="triton")
    p[..., 10].sum().backward()
    assert torch.isfinite(x.grad).all() and abs(p.sum().item() - 1) < 1e-4, p.sum().item()
elif kind == "joint":
    x = torch.rand(1, 1, side, side, device=device, requires_grad=True)
    j = huenet.joint_histogram(x, x.detach().flip(-1), bins=64, backend="triton")
    j[..., 10, 20].sum().backward()
    assert torch.isfinite(x.grad).all() and abs(j.sum().item() - 1) < 1e-4, j.sum().item()
elif kind == "int64":
    # 3 rows of side² pixels: the last row starts beyond 2^31 elements; each row is constant at its own value.
    x = torch.empty(1, 3, side, side, device=device)
    for c, v in enumerate((0.1, 0.5, 0.9)):
        x[0, c].fill_(v)
    p = huenet.soft_histogram(x, bins=64, backend="triton")
    want = huenet.soft_histogram(x[..., :1, :1].double(), bins=64, backend="reference")
    err = (p.double() - want).abs().max().item()
    assert err < 1e-5, err
elif kind == "rows":
    try:
        huenet.soft_histogram(torch.rand(1, 70000, 2, 2, device=device), bins=8, backend="triton")
    except ValueError as e:
        assert "grid axis" in str(e), e
    else:
        raise AssertionError("no error for 70000 rows")
print("ok")
"""


def section_c(check, size, device, smoke):
    env = dict(os.environ)
    cases = [
        ("soft", size["c_soft_side"], "soft histogram fwd+bwd at the largest side"),
        ("joint", size["c_joint_side"], "joint histogram fwd+bwd at a side beyond the old limit"),
        ("int64", size["c_int64_side"], "int64 offsets (3 rows, last beyond 2^31 elements)"),
        ("rows", 0, "70000 rows: a clear error, not a failed launch"),
    ]
    for kind, side, label in cases:
        start = time.perf_counter()
        try:
            out = subprocess.run(
                [sys.executable, "-c", _LIMIT_SCRIPT, kind, str(side), device],
                env=env,
                capture_output=True,
                text=True,
                timeout=60 if smoke else 150,
            )
            ok, tail = out.returncode == 0 and "ok" in out.stdout, (out.stdout + out.stderr)[-600:]
        except subprocess.TimeoutExpired:
            ok, tail = False, "timed out"
        check.record(f"{label} (side {side})", ok, "ok" if ok else tail, seconds=round(time.perf_counter() - start, 1))


# ---- D: repeatability and determinism.


def section_d(check, huenet, size, device):
    import torch

    from huenet.losses import HistogramEMDLoss, HueNetLoss

    batch, side, bins = size["b_batch"], size["b_side"], size["bins"]
    x = _natural(batch, side, device, 7).float()
    y = _natural(batch, side, device, 8).float()

    def grads(deterministic):
        previous = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(deterministic)
        try:
            out = x.clone().requires_grad_()
            loss = HueNetLoss(bins=bins)(out, y, x) + HistogramEMDLoss(bins=bins)(out, y)
            p = huenet.soft_histogram(out, bins=bins)
            j = huenet.joint_histogram(out, y, bins=bins)
            (g,) = torch.autograd.grad(loss, out)
            return [p.detach(), j.detach(), loss.detach(), g]
        finally:
            torch.use_deterministic_algorithms(previous)

    def one():
        first, second = grads(True), grads(True)
        for name, a, b in zip(("soft", "joint", "HueNetLoss+EMD", "d/dx"), first, second):
            check.record(
                f"deterministic mode: {name} bitwise repeatable",
                torch.equal(a, b),
                (a.double() - b.double()).abs().max().item(),
            )
        third = grads(False)
        for name, a, b in zip(("soft", "joint", "HueNetLoss+EMD", "d/dx"), first, third):
            diff = (a.double() - b.double()).abs().max().item()
            scale = b.double().abs().max().item()
            check.record(
                f"default mode: {name} max|diff| vs deterministic",
                diff <= 1e-5 * max(scale, 1e-30),
                diff,
                f"1e-5 × {scale:.3g}",
            )

    check.run("determinism", one)


# ---- E: benchmark.


def _gpu_time_ms(fn, sets, repeats, device):
    """Median milliseconds of fn(*inputs) over rotating input sets, timed with CUDA events after a warm-up;
    on the CPU (smoke) a synchronous wall clock."""
    import torch

    for inputs in sets:  # warm-up: compile, tune, allocate
        fn(*inputs)
    times = []
    for i in range(repeats):
        inputs = sets[i % len(sets)]
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn(*inputs)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn(*inputs)
            times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def _host_ms(fn, inputs, repeats, device):
    """Median host milliseconds to issue one call (no sync inside the timed region)."""
    import torch

    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(*inputs)
        times.append(1e3 * (time.perf_counter() - t))
    if device == "cuda":
        torch.cuda.synchronize()
    return statistics.median(times)


def _ceilings(device):
    """Measured copy bandwidth (GB/s, bytes read + written) and fp32 / tf32 matmul rates (TFLOP/s)."""
    import torch

    if device != "cuda":
        return {}
    a = torch.empty(1 << 28, dtype=torch.uint8, device=device)
    b = torch.empty_like(a)
    ms = _gpu_time_ms(lambda: b.copy_(a), [()], 10, device)
    out = {"copy_GBps": 2 * a.numel() / ms / 1e6}
    m = torch.randn(8192, 8192, device=device)
    for name, tf32 in (("fp32", False), ("tf32", True)):
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            ms = _gpu_time_ms(lambda: m @ m, [()], 10, device)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous
        out[f"{name}_TFLOPs"] = 2 * 8192**3 / ms / 1e9
    return out


@contextlib.contextmanager
def _triton_launches():
    """Counts Triton kernel launches by kernel name, compiled or interpreted (``run`` is what every launch,
    autotuned or not, ends in)."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    counts = collections.Counter()
    originals = {cls: cls.run for cls in (JITFunction, InterpretedFunction)}

    def counting(original):
        def run(self, *args, **kwargs):
            counts[self.fn.__name__] += 1
            return original(self, *args, **kwargs)

        return run

    for cls, original in originals.items():
        cls.run = counting(original)
    try:
        yield counts
    finally:
        for cls, original in originals.items():
            cls.run = original


def _count_step(huenet_loss, out, src, tgt, device):
    """ATen ops, Triton launches, host syncs and (on CUDA) kernel launches of one HueNetLoss forward +
    backward."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.ops += 1
            return func(*args, **(kwargs or {}))

    o = out.clone().requires_grad_()
    with Count(), _triton_launches() as launches:
        torch.autograd.grad(huenet_loss(o, src, tgt), o)
    counts = {"aten_ops": Count.ops, "triton_launches": sum(launches.values()), "triton_by_kernel": dict(launches)}
    if device == "cuda":
        torch.cuda.synchronize()
        previous = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                o = out.clone().requires_grad_()
                torch.autograd.grad(huenet_loss(o, src, tgt), o)
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        counts["host_syncs"] = sum("synchroniz" in str(w.message) for w in caught)
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            o = out.clone().requires_grad_()
            torch.autograd.grad(huenet_loss(o, src, tgt), o)
            torch.cuda.synchronize()
        counts["kernel_launches"] = sum(1 for e in prof.events() if e.device_type.name == "CUDA")
    return counts


def section_e(check, huenet, kernels, size, device, results):
    import torch

    from huenet.losses import HueNetLoss

    batch, side, bins, repeats = size["e_batch"], size["e_side"], size["bins"], size["repeats"]
    n_sets = 4 if device == "cuda" else 1  # 4 × 12.6 MB of inputs per set at full size: beyond the 50-60 MB L2
    sets = [
        (_natural(batch, side, device, 20 + i).float().requires_grad_(), _natural(batch, side, device, 40 + i).float())
        for i in range(n_sets)
    ]
    criterion = {b: HueNetLoss(bins=bins, backend=b) for b in ("triton", "eager", "reference")}

    def soft(backend):
        def fn(x, y):
            p = huenet.soft_histogram(x, bins=bins, backend=backend)
            torch.autograd.grad(p[..., 1].sum(), x)

        return fn

    def joint(backend):
        def fn(x, y):
            j = huenet.joint_histogram(x, y, bins=bins, backend=backend)
            torch.autograd.grad(j[..., 1, 2].sum(), x)

        return fn

    def loss(backend):
        def fn(x, y):
            torch.autograd.grad(criterion[backend](x, y, y), x)

        return fn

    ceil = _ceilings(device)
    results["ceilings"] = ceil
    rows = []
    for op, make in (("soft fwd+bwd", soft), ("joint fwd+bwd", joint), ("HueNetLoss fwd+bwd", loss)):
        for backend in ("triton", "eager", "reference"):

            def one():
                fn = make(backend)
                if device == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                fn(*sets[0])
                if device == "cuda":
                    torch.cuda.synchronize()
                first = 1e3 * (time.perf_counter() - t)
                gpu = _gpu_time_ms(fn, sets, repeats, device)
                host = _host_ms(fn, sets[0], max(3, repeats // 4), device)
                rows.append({"op": op, "backend": backend, "gpu_ms": gpu, "host_ms": host, "first_call_ms": first})
                print(
                    f"[E] {op} {backend}: {gpu:.3f} ms device, {host:.3f} ms host, first call {first:.0f} ms",
                    flush=True,
                )

            if backend == "triton":
                check.run(f"bench {op} triton", one)  # a Triton error fails the check
            else:
                try:
                    one()
                except torch.OutOfMemoryError as err:  # the dense reference may not fit; that is a result
                    rows.append({"op": op, "backend": backend, "error": f"out of memory: {str(err)[:120]}"})
                    print(f"[E] {op} {backend}: out of memory", flush=True)
                    torch.cuda.empty_cache()
    for row in rows:
        ref = next((r for r in rows if r["op"] == row["op"] and r["backend"] == "reference" and "gpu_ms" in r), None)
        if ref and "gpu_ms" in row:
            row["speedup_vs_reference"] = ref["gpu_ms"] / row["gpu_ms"]
    pixels = batch * 3 * side * side
    for row in rows:
        if row["backend"] == "triton" and "gpu_ms" in row and ceil:
            floor_bytes = pixels * 4 * (3 if row["op"] != "soft fwd+bwd" else 2)  # inputs read, gradient written
            row["fraction_of_copy_floor"] = floor_bytes / (ceil["copy_GBps"] * 1e6) / row["gpu_ms"]
            if row["op"] == "joint fwd+bwd":  # a dense A_xᵀ A_y product: 2·N·K² flops per row
                row["fraction_of_tf32_peak"] = 2 * pixels * bins * bins / (ceil["tf32_TFLOPs"] * 1e9) / row["gpu_ms"]
    results["bench"] = rows
    src, tgt = sets[0][1], sets[-1][0].detach()
    counts = check.run("counts", _count_step, criterion["triton"], sets[0][0].detach(), src, tgt, device)
    if counts is not None:
        results["HueNetLoss_step_counts"] = counts
        check.record(
            "HueNetLoss fwd+bwd host syncs",
            counts.get("host_syncs", 0) == 0,
            counts.get("host_syncs"),
            0,
            aten_ops=counts["aten_ops"],
            triton_launches=counts["triton_launches"],
            kernel_launches=counts.get("kernel_launches"),
        )
    results["chosen_configs"] = {
        name: {str(key): str(config) for key, config in getattr(kernel, "cache", {}).items()}
        for name, kernel in (
            ("soft atomic", kernels.soft_histogram._forward_atomic_kernel),
            ("soft partials", kernels.soft_histogram._forward_partials_kernel),
            ("soft bwd", kernels.soft_histogram._backward_kernel),
            ("joint fwd", kernels.joint_histogram._forward_kernel),
            ("joint bwd", kernels.joint_histogram._backward_kernel),
        )
    }


def _markdown(results) -> str:
    lines = [
        f"# gpu_check on {results['machine']['device']} ({'smoke, interpreter' if results['smoke'] else 'GPU'})",
        "",
        f"{results['failures']} failed of {len(results['checks'])} checks; {results['seconds']:.0f} s; "
        f"torch {results['machine']['torch']}, triton {results['machine']['triton']}",
        "",
    ]
    failed = [r for r in results["checks"] if not r["ok"]]
    if failed:
        lines += ["## Failures", "", "| section | check | value | limit |", "|---|---|---|---|"]
        lines += [f"| {r['section']} | {r['name']} | {r['value']} | {r['limit']} |" for r in failed] + [""]
    if results.get("bench"):
        lines += [
            "## E: time per call (median)",
            "",
            "| op | backend | device ms | host ms | first call ms | × vs reference | of copy floor | of tf32 peak |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in results["bench"]:
            if "error" in r:
                lines.append(f"| {r['op']} | {r['backend']} | {r['error']} | | | | | |")
                continue
            lines.append(
                f"| {r['op']} | {r['backend']} | {r['gpu_ms']:.3f} | {r['host_ms']:.3f} | "
                f"{r['first_call_ms']:.0f} | {r.get('speedup_vs_reference', float('nan')):.1f} | "
                f"{r.get('fraction_of_copy_floor', float('nan')):.3f} | "
                f"{r.get('fraction_of_tf32_peak', float('nan')):.3f} |"
            )
        lines += [
            "",
            f"Ceilings: {results.get('ceilings')}",
            f"HueNetLoss step: {results.get('HueNetLoss_step_counts')}",
            "",
        ]
    lines += ["## Every check", "", "| section | ok | check | value | limit |", "|---|---|---|---|---|"]
    for r in results["checks"]:
        value = f"{r['value']:.3g}" if isinstance(r["value"], float) else r["value"]
        lines.append(f"| {r['section']} | {'ok' if r['ok'] else 'FAIL'} | {r['name']} | {value} | {r['limit']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check_out", help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes under TRITON_INTERPRET=1 on the CPU")
    parser.add_argument("--sections", default="ABCDEF", help="which sections to run (default ABCDEF)")
    args = parser.parse_args(argv)
    if args.smoke:
        os.environ["TRITON_INTERPRET"] = "1"  # before huenet.kernels is imported: Triton reads it then
    import torch
    import triton

    import huenet

    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; run with --smoke for the CPU interpreter check", file=sys.stderr)
        return 2
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        print(f"gpu_check: --out {args.out}: {err.strerror}", file=sys.stderr)
        return 2
    from huenet import kernels

    size = SMOKE if args.smoke else FULL
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (Triton interpreter)"
    results = {
        "smoke": args.smoke,
        "machine": {"device": name, "torch": torch.__version__, "triton": triton.__version__, "sizes": size},
    }
    check = Check()
    start = time.perf_counter()
    print(f"gpu_check on {name}, sections {args.sections}", flush=True)
    for section, fn in (
        ("A", lambda: section_a(check, huenet, kernels, size, device)),
        ("B", lambda: section_b(check, huenet, size, device)),
        ("C", lambda: section_c(check, size, device, args.smoke)),
        ("D", lambda: section_d(check, huenet, size, device)),
        ("E", lambda: section_e(check, huenet, kernels, size, device, results)),
        ("F", lambda: section_f(check, _rel, _gpu_time_ms, kernels, size, device, results, args.smoke)),
    ):
        if section in args.sections:
            check.section = section
            t = time.perf_counter()
            check.run(f"section {section}", fn)
            print(f"[{section}] done in {time.perf_counter() - t:.0f} s", flush=True)
    results.update(checks=check.rows, failures=check.failures, seconds=time.perf_counter() - start)
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    with open(os.path.join(args.out, "gpu_check.md"), "w") as f:
        f.write(_markdown(results))
    print(
        f"gpu_check: {check.failures} failed of {len(check.rows)} checks in {results['seconds']:.0f} s; "
        f"results in {args.out}/gpu_check.md",
        flush=True,
    )
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
