"""Section F of ``bench.gpu_check``: the Parzen joint kernels behind GlobalMutualInformationLoss and the RGB-uv
histogram.

* every autotune config of the forward and the backward, forced one at a time, for each window pair the losses
  use (normalised Gaussians, B-spline × box, inverse quadratic), fp32 against the float64 eager backend;
* the losses themselves against MONAI (when installed) and the dense RGB-uv formula, float32 on the GPU
  against float64;
* forward + backward time and peak memory: 3-D MI (1, 1, 96³ and 160³, 32 bins) against MONAI, RGB-uv
  (8 × 3 × 256², 64 bins) against the dense formula.
"""

from __future__ import annotations

import importlib

FULL = {"pixels": 70000, "bins": 64, "mi_sides": (96, 160), "rgb": (8, 256), "repeats": 10}
SMOKE = {"pixels": 300, "bins": 20, "mi_sides": (6,), "rgb": (1, 6), "repeats": 1}
PAIRS = {
    "gaussian-norm": ("gaussian", 968.0, True, "gaussian", 968.0, True),
    "bspline-box": ("b-spline", 1.0, False, "box", 1.0, False),
    "invquad": ("inverse-quadratic", 2500.0, False, "inverse-quadratic", 2500.0, False),
}


def _inputs(torch, pair, n, bins, device, seed):
    g = torch.Generator().manual_seed(seed)
    if pair == "bspline-box":
        centres = torch.arange(bins, dtype=torch.float64)
        x, y = (2 + (bins - 5) * torch.rand(1, n, generator=g, dtype=torch.float64) for _ in range(2))
    else:
        centres = torch.linspace(0, 1, bins, dtype=torch.float64)
        x, y = (torch.rand(1, n, generator=g, dtype=torch.float64) for _ in range(2))
    w = 0.1 + torch.rand(1, n, generator=g, dtype=torch.float64)
    return [t.to(device) for t in (x, y, w, centres)]


def section_f(check, rel, time_ms, kernels, size, device, results, smoke):
    """Run section F; ``rel`` and ``time_ms`` are gpu_check's relative error and timer."""
    import torch

    import huenet
    from huenet.dropin.parzen import ParzenWindow, parzen_joint

    from .test_families_bench import dense_hellinger

    sizes = SMOKE if smoke else FULL
    pj = kernels.parzen_joint

    def one(pair, fwd, bwd):
        x, y, w, centres = _inputs(torch, pair, sizes["pixels"], sizes["bins"], device, seed=fwd * 7 + bwd)
        spec = PAIRS[pair]
        windows = (ParzenWindow(*spec[:3]), ParzenWindow(*spec[3:]))
        leaves = [t.float().requires_grad_() for t in (x, y, w)]
        # Seeded like the inputs, so that a rerun reports the same errors.
        gen = torch.Generator().manual_seed(fwd * 7 + bwd)
        g = torch.randn(1, sizes["bins"], sizes["bins"], generator=gen).to(device)
        with kernels.pinned(pj._forward_kernel, fwd), kernels.pinned(pj._backward_kernel, bwd):
            out = parzen_joint("gpu_check", *leaves, (centres.float(),) * 2, windows, backend="triton")
            grads = torch.autograd.grad((out * g).sum(), leaves)
        ref_leaves = [t.clone().requires_grad_() for t in (x, y, w)]
        ref = parzen_joint("gpu_check", *ref_leaves, (centres, centres), windows, backend="eager")
        want = torch.autograd.grad((ref * g.double()).sum(), ref_leaves)
        name = f"parzen {pair} fwd config {fwd} bwd config {bwd}"
        err = rel(out.detach(), ref.detach())
        check.record(name + " T", err < 1e-5, err, 1e-5)
        for label, a, b in zip("xyw", grads, want):
            if b.abs().max() > 0:
                err = rel(a, b)
                check.record(f"{name} dL/d{label}", err < 1e-4, err, 1e-4)

    for pair in PAIRS:
        for index in range(max(len(pj._forward_kernel.configs), len(pj._backward_kernel.configs))):
            fwd, bwd = index % len(pj._forward_kernel.configs), index % len(pj._backward_kernel.configs)
            check.run(f"parzen {pair} config {index}", one, pair, fwd, bwd)

    try:
        monai_losses = importlib.import_module("monai.losses")
    except ImportError:
        monai_losses = None
        check.record("MONAI installed (MI rows compare against it)", False, "monai not importable")
    rows = results.setdefault("families", [])

    def timed(case, impl, step):
        torch.cuda.reset_peak_memory_stats() if device == "cuda" else None
        before = torch.cuda.memory_allocated() if device == "cuda" else 0
        ms = time_ms(step, [()], sizes["repeats"], device)
        peak = torch.cuda.max_memory_allocated() - before if device == "cuda" else 0
        rows.append({"case": case, "impl": impl, "ms": ms, "peak_mib": peak / 2**20})
        check.record(f"{case} {impl}", True, ms, None, peak_mib=peak / 2**20)
        return ms, peak

    for kernel in ("gaussian", "b-spline"):
        for side in sizes["mi_sides"]:
            pred = torch.rand(1, 1, side, side, side, device=device)
            target = (pred**2 + 0.1 * torch.rand_like(pred)).clamp(0, 1)
            ours = huenet.GlobalMutualInformationLoss(kernel, 32, backend="triton")
            case = f"MI {kernel} {side}³ K=32"
            if monai_losses is not None:
                theirs = monai_losses.GlobalMutualInformationLoss(kernel, 32)
                err = abs(ours(pred, target).item() - theirs(pred.double(), target.double()).item())
                check.record(f"{case} |ours fp32 - MONAI fp64|", err < 1e-4, err, 1e-4)

                def monai_step(loss=theirs, pred=pred, target=target):
                    p = pred.clone().requires_grad_()
                    loss(p, target).backward()

                check.run(f"{case} monai", timed, case, "monai", monai_step)

            def our_step(loss=ours, pred=pred, target=target):
                p = pred.clone().requires_grad_()
                loss(p, target).backward()

            check.run(f"{case} huenet", timed, case, "huenet", our_step)

    batch, side = sizes["rgb"]
    out, tgt = torch.rand(batch, 3, side, side, device=device), torch.rand(batch, 3, side, side, device=device)
    loss = huenet.RGBuvHistogramLoss(64, backend="triton")
    err = abs(loss(out, tgt).item() - dense_hellinger(out.double(), tgt.double()).item())
    check.record("RGB-uv Hellinger |triton fp32 - dense fp64|", err < 1e-4, err, 1e-4)
    for impl, fn in (("dense", dense_hellinger), ("huenet", loss)):

        def step(fn=fn):
            o = out.clone().requires_grad_()
            fn(o, tgt).backward()

        check.run(f"RGB-uv {impl}", timed, f"RGB-uv {batch}×3×{side}² K=64", impl, step)
