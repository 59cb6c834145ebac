"""The Triton kernels at sizes where several programs run along every tiled axis, with every autotune config,
and the defects that only a GPU would show, each with an interpreter-level equivalent.

Under the interpreter the autotuner is bypassed (it runs the first config), so each config is forced with
``huenet.kernels.pinned``. Sizes: K = 256 (several bin tiles), several pixel blocks per row, N >= 4096 so the
split partials have several splits, and a smooth image so the joint forward's tile skip runs.
"""

import math

import numpy as np
import pytest
import torch
import triton
import triton.language as tl

import huenet
import oracle
from huenet import kernels
from huenet.kernels import common as kc
from huenet.kernels import joint_histogram as jk
from huenet.kernels import joint_tiles as jt
from huenet.kernels import soft_histogram as sk

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_cuda = pytest.mark.skipif(DEVICE != "cuda", reason="needs a CUDA GPU (the interpreter cannot show this)")


def _image(n_side, seed, smooth=False, dtype=torch.float32, channels=2):
    g = torch.Generator().manual_seed(seed)
    if smooth:  # a natural-like image: a gradient plus a little noise, so most pixel blocks span few bins
        ramp = torch.linspace(0.2, 0.8, n_side, dtype=torch.float64)
        x = (ramp[None, :] + 0.3 * ramp[:, None] ** 2).expand(channels, -1, -1) + 0.01 * torch.rand(
            channels, n_side, n_side, generator=g, dtype=torch.float64
        )
    else:
        x = -0.05 + 1.1 * torch.rand(channels, n_side, n_side, generator=g, dtype=torch.float64)
    return x[None].to(dtype).to(DEVICE)


def _configs(kernel):
    return [pytest.param(kernel, i, id=f"config{i}") for i in range(len(kernel.configs))]


@pytest.mark.parametrize("kernel,index", _configs(sk._forward_atomic_kernel) + _configs(sk._backward_kernel))
def test_soft_histogram_every_pixel_config(kernel, index):
    """Every config of the atomic forward and the backward, weighted, 2 rows × 66² pixels (several blocks of
    the largest, 1024), K = 256, against the float64 oracle and the reference backend's float64 gradients;
    the boundary changes with the config, so each boundary meets several configs."""
    boundary = ("reflect", "circular", "none")[index % 3]
    x = _image(66, seed=1).requires_grad_()
    w = _image(66, seed=2, channels=1).clamp(0.05, 1.0).requires_grad_()
    with kernels.pinned(kernel, index):
        p = huenet.soft_histogram(x, bins=256, boundary=boundary, weight=w, backend="triton")
        g = torch.linspace(-1, 1, 256, device=DEVICE).expand_as(p)
        gx, gw = torch.autograd.grad((p * g).sum(), (x, w))
    np.testing.assert_allclose(
        p.detach().cpu().double().numpy(), oracle.soft_histogram(x, 256, boundary=boundary, weight=w), rtol=0, atol=2e-6
    )
    x64, w64 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    p64 = huenet.soft_histogram(x64, bins=256, boundary=boundary, weight=w64, backend="reference")
    want_x, want_w = torch.autograd.grad((p64 * g.double()).sum(), (x64, w64))
    scale = want_x.abs().max().item()
    np.testing.assert_allclose(gx.cpu().double().numpy(), want_x.cpu().numpy(), rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(
        gw.cpu().double().numpy(), want_w.cpu().numpy(), rtol=0, atol=1e-4 * want_w.abs().max().item()
    )


@pytest.mark.parametrize("index", range(len(sk._TILE_CONFIGS)), ids=lambda i: f"config{i}")
def test_soft_histogram_partials_every_config(index):
    """Deterministic forward: 2 rows × 68² = 4624 pixels (2 splits), K = 256 (several bin tiles)."""
    x = _image(68, seed=3)
    assert kc.partial_splits(2, 68 * 68, triton.cdiv(256, 32)) >= 2
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with kernels.pinned(sk._forward_partials_kernel, index):
            p = huenet.soft_histogram(x, bins=256, backend="triton")
    finally:
        torch.use_deterministic_algorithms(previous)
    np.testing.assert_allclose(p.cpu().double().numpy(), oracle.soft_histogram(x, 256), rtol=0, atol=2e-6)


# Every config once, each boundary with config 0 and the others' boundaries rotating: every config and every
# boundary meet the oracle, at a third of the cost of the full product (each case takes 10-30 s interpreted).
_JOINT_FORWARD_CASES = [(0, "circular"), (0, "none")] + [
    (i, ("reflect", "circular", "none")[i % 3]) for i in range(len(jk._DOT_CONFIGS))
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "index,boundary", _JOINT_FORWARD_CASES, ids=lambda v: f"config{v}" if isinstance(v, int) else v
)
def test_joint_histogram_every_forward_config(index, boundary):
    """Every joint-forward config at K = 256 (8-64 tile programs), 1 row × 4096 pixels (2 splits), on a smooth
    image so whole tile pairs are skipped, against the float64 oracle."""
    x, y = _image(64, seed=4, smooth=True, channels=1), _image(64, seed=5, smooth=True, channels=1).flip(-1)
    assert kc.partial_splits(1, 64 * 64, triton.cdiv(256, 64) ** 2) >= 2
    with kernels.pinned(jk._forward_kernel, index):
        got = huenet.joint_histogram(x, y, bins=256, boundary=boundary, backend="triton")
    np.testing.assert_allclose(
        got.cpu().double().numpy(), oracle.joint_histogram(x, y, 256, boundary=boundary), rtol=0, atol=2e-6
    )


@pytest.mark.parametrize("index", range(len(jk._WINDOW_CONFIGS)), ids=lambda i: f"config{i}")
def test_joint_histogram_every_backward_config(index):
    """Every joint-backward config, 1 row × 20² pixels (several blocks), K = 64, against the reference's
    float64 gradients."""
    x, y = _image(20, seed=6, channels=1).requires_grad_(), _image(20, seed=7, channels=1).requires_grad_()
    g = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(8)).to(DEVICE)
    with kernels.pinned(jk._backward_kernel, index):
        got = torch.autograd.grad((huenet.joint_histogram(x, y, bins=64, backend="triton") * g).sum(), (x, y))
    x64, y64 = x.detach().double().requires_grad_(), y.detach().double().requires_grad_()
    want = torch.autograd.grad(
        (huenet.joint_histogram(x64, y64, bins=64, backend="reference") * g.double()).sum(), (x64, y64)
    )
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.cpu().double().numpy(), b.cpu().numpy(), rtol=0, atol=1e-4 * b.abs().max().item())


@triton.jit
def _reaches_probe(u_ptr, out_ptr, K, RADIUS: tl.constexpr, BOUNDARY: tl.constexpr, BLOCK_K: tl.constexpr):
    u = tl.load(u_ptr + tl.arange(0, 16))
    tile = tl.program_id(0)
    tl.store(out_ptr + tile, jk._reaches(u, tile * BLOCK_K, BLOCK_K, K, RADIUS, BOUNDARY).to(tl.int32))


@pytest.mark.skipif(not kernels.INTERPRETED, reason="probes a jitted helper on CPU tensors (interpreter only)")
@pytest.mark.parametrize(
    "boundary,want", [("reflect", [1, 1, 0, 0]), ("circular", [1, 1, 0, 1]), ("none", [1, 1, 0, 0])]
)
def test_tile_skip_only_forces_the_tiles_an_image_reaches(boundary, want):
    """Values near the low end of K = 256 (64-bin tiles): reflect mirrors them into the low tiles only,
    circular wraps them into the high tile only; the old test forced every tile under any boundary."""
    u = torch.linspace(0.5, 70.0, 16)  # tiles 0 and 1 directly; the low image lands in tile 0 / tile 3
    out = torch.zeros(4, dtype=torch.int32)
    _reaches_probe[(4,)](u, out, 256, RADIUS=7, BOUNDARY=sk.BOUNDARY_CODES[boundary], BLOCK_K=64)
    assert out.tolist() == want


def test_launch_grids_stay_within_cuda_limits():
    """Defect 1 without launching: a 16384² image (268 M pixels per row), every config's grid fits CUDA's
    limits (pixel blocks on axis 0); too many rows is a clear error, not a failed launch."""
    rows, n = 48, 16384 * 16384
    grids = [kc.pixel_grid("soft", rows, n)(c.kwargs) for c in sk._PIXEL_CONFIGS]
    grids += [kc.pixel_grid("joint", rows, n)(c.kwargs) for c in jk._WINDOW_CONFIGS]
    grids += [sk.partials_grid("soft", rows, 256, 2048)(c.kwargs) for c in sk._TILE_CONFIGS]
    grids += [jt.pair_grid("joint", rows, 256, 2048)(c.kwargs) for c in jk._DOT_CONFIGS]
    for grid in grids:
        assert all(size <= limit for size, limit in zip(grid, (2**31 - 1, 65535, 65535))), grid
    with pytest.raises(ValueError, match="grid axis 1"):
        kc.pixel_grid("soft_histogram", 70000, 100)({"BLOCK_N": 128})


def test_fp64_bandwidth_reaches_the_kernels_in_fp64():
    """Defect 3, interpreter-level: the constants reach the kernels as a tensor in the input dtype (a Python
    float reaches a compiled kernel as fp32), and rounding 1/b to fp32 would move an fp64 histogram by more
    than the 1e-12 the fp64 tests allow, so those tests would catch it on a GPU."""
    b = 0.3
    x = _image(8, seed=9, dtype=torch.float64)
    consts = sk.bandwidth_constants(b, x)
    assert consts.dtype == torch.float64 and consts[0].item() == 1.0 / b
    assert consts[1].item() == -math.expm1(-1.0 / b)
    b32 = 1.0 / float(np.float32(1.0 / b))
    assert np.abs(oracle.soft_histogram(x, 32, bandwidth=b) - oracle.soft_histogram(x, 32, bandwidth=b32)).max() > 1e-11
    got = huenet.soft_histogram(x, bins=32, bandwidth=b, backend="triton")
    np.testing.assert_allclose(got.cpu().numpy(), oracle.soft_histogram(x, 32, bandwidth=b), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_tiny_bandwidth_is_finite_and_right(dtype):
    """Defect 10: at bandwidth 0.004 bins both exponentials underflow; no NaN, and the oracle's values."""
    x = _image(6, seed=10, dtype=dtype, channels=1).requires_grad_()
    p = huenet.soft_histogram(x, bins=16, bandwidth=0.004, backend="triton")
    (gx,) = torch.autograd.grad(p[..., 3].sum(), x)
    assert torch.isfinite(p).all() and torch.isfinite(gx).all()
    np.testing.assert_allclose(
        p.detach().cpu().double().numpy(),
        oracle.soft_histogram(x, 16, bandwidth=0.004),
        rtol=0,
        atol=2e-6 if dtype == torch.float32 else 1e-12,
    )
    j = huenet.joint_histogram(x, x, bins=16, bandwidth=0.004, backend="triton")
    assert torch.isfinite(j).all()


@pytest.mark.parametrize("backend", ["triton", "eager"])
def test_flat_image_accumulates_exactly(backend):
    """Defect 2: a constant image (every pixel in the same bins) within 1e-5 relative of the float64 oracle;
    fp32 words per bin were about 1e-4 off at 128², 3e-4 at 256² and 1.2e-3 at 512². 128² under the
    interpreter: at 256² one run in three here lost about 2 of 65536 updates to one bin inside the
    interpreter's atomic_rmw (not reproducible; GPU atomics are atomic, and gpu_check B runs 256²-1024²)."""
    side = 128 if kernels.INTERPRETED else 1024
    x = torch.full((1, 1, side, side), 0.3013, dtype=torch.float32, device=DEVICE)
    got = huenet.soft_histogram(x, bins=64, backend=backend).cpu().double().numpy()
    want = oracle.soft_histogram(x[..., :1, :1], 64)  # the histogram of a constant image is that of one pixel
    # ‖err‖/‖want‖: the sigmoid differences of the eager backend are only about 1e-7 absolute in fp32, which
    # is 3e-5 relative in a tail bin of 0.003; lost accumulation shifts every bin alike.
    assert np.linalg.norm(got - want) / np.linalg.norm(want) <= 1e-5


@pytest.mark.slow
def test_flat_1024_image_accumulates_exactly_eager():
    """Defect 2's goal on the eager backend: a constant 1024² image within 1e-5 relative."""
    x = torch.full((1, 1, 1024, 1024), 0.7071, dtype=torch.float32, device=DEVICE)
    got = huenet.soft_histogram(x, bins=256, backend="eager").cpu().double().numpy()
    want = oracle.soft_histogram(x[..., :1, :1], 256)
    assert np.linalg.norm(got - want) / np.linalg.norm(want) <= 1e-5


class _FakeTuned:
    """Stands in for an autotuned kernel: records whether a launch went through the tuner or a config."""

    def __init__(self):
        self.configs = [triton.Config({"BLOCK_N": 7}, num_warps=2), triton.Config({"BLOCK_N": 9}, num_warps=4)]
        self.calls = []
        fake = self

        class _Fn:
            def __getitem__(self, grid):
                return lambda *a, **kw: fake.calls.append(("config", kw["BLOCK_N"], kw["num_warps"]))

        self.fn = _Fn()

    def __getitem__(self, grid):
        return lambda *a, **kw: self.calls.append(("tuned",))


def test_launch_fixes_the_config_when_asked_and_pins_for_tests(monkeypatch):
    """Defect 4: in deterministic mode the partials kernels launch with one fixed config, not the tuned one;
    tests and gpu_check pin any config."""
    monkeypatch.setattr(kc, "INTERPRETED", False)
    kernel = _FakeTuned()
    kc.launch(kernel, (1,), torch.device("cpu"))
    kc.launch(kernel, (1,), torch.device("cpu"), fixed=True)
    with kernels.pinned(kernel, 1):
        kc.launch(kernel, (1,), torch.device("cpu"), fixed=True)
    assert kernel.calls == [("tuned",), ("config", 7, 2), ("config", 9, 4)]


def test_weight_check_makes_no_host_sync_off_the_cpu(monkeypatch):
    """Defect 7, interpreter-level: off the CPU (a meta tensor stands in for a GPU one) the host-side value
    check is not called unless ``validate=True``; the device-side faults mark the bad rows instead."""
    from huenet import _checks

    calls = []
    monkeypatch.setattr(_checks, "_check_weight_values", lambda weight, op: calls.append(weight.device.type))
    x = torch.empty(2, 3, 4, 4, device="meta")
    w = torch.empty(2, 1, 4, 4, device="meta")
    assert _checks.check_weight("op", w, x).shape == x.shape and calls == []
    _checks.check_weight("op", w, x, validate=True)
    _checks.check_weight("op", torch.ones(2, 1, 4, 4), torch.ones(2, 3, 4, 4))
    assert calls == ["meta", "cpu"]
    w = torch.ones(2, 3, 4, 4)
    w[0, 1, 0, 0] = -1.0
    w[1, 2] = 0.0
    assert _checks.weight_faults(w).tolist() == [[False, True, False], [False, False, True]]


@needs_cuda
def test_negative_weights_give_nan_rows_on_the_gpu_and_raise_with_validate():
    x = torch.rand(2, 3, 8, 8, device="cuda")
    w = torch.ones(2, 1, 8, 8, device="cuda")
    w[1, 0, 0, 0] = -1.0
    p = huenet.soft_histogram(x, bins=16, weight=w)
    assert torch.isnan(p[1]).all() and torch.isfinite(p[0]).all()
    with pytest.raises(ValueError, match="weight"):
        huenet.soft_histogram(x, bins=16, weight=w, validate=True)


def test_scan_and_lower_median_match_torch():
    """Defect 4: the deterministic replacements of cumsum and median(dim) used on CUDA."""
    from huenet.emd import lower_median, scan

    t = torch.randn(5, 7, 256, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(scan(t), torch.cumsum(t, -1), rtol=0, atol=1e-12)
    for k in (255, 256):
        torch.testing.assert_close(lower_median(t[..., :k]), t[..., :k].median(-1, keepdim=True).values)
        middle = (k - 1) // 2
        torch.testing.assert_close(
            t[..., :k].sort(-1).values[..., middle : middle + 1], t[..., :k].median(-1, keepdim=True).values
        )


@needs_cuda
def test_losses_run_and_repeat_under_deterministic_algorithms():
    from huenet.losses import HistogramEMDLoss, HueNetLoss

    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        g = torch.Generator().manual_seed(12)
        src, tgt = (torch.rand(2, 3, 64, 64, generator=g).cuda() for _ in range(2))
        out = torch.rand(2, 3, 64, 64, generator=g).cuda().requires_grad_()
        for loss in (HueNetLoss(), HistogramEMDLoss()):
            args = (out, src, tgt) if isinstance(loss, HueNetLoss) else (out, tgt)
            first = torch.autograd.grad(loss(*args), out)[0]
            second = torch.autograd.grad(loss(*args), out)[0]
            assert torch.equal(first, second)
    finally:
        torch.use_deterministic_algorithms(previous)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_kernels_launch_on_the_tensors_device():
    """Defect 9: tensors on cuda:1 while cuda:0 is current."""
    x = torch.rand(1, 3, 32, 32, device="cuda:1")
    with torch.cuda.device(0):
        got = huenet.soft_histogram(x, bins=32, backend="triton")
        j = huenet.joint_histogram(x, x, bins=32, backend="triton")
    np.testing.assert_allclose(got.cpu().numpy(), oracle.soft_histogram(x.cpu(), 32), rtol=0, atol=2e-6)
    np.testing.assert_allclose(j.cpu().numpy(), oracle.joint_histogram(x.cpu(), x.cpu(), 32), rtol=0, atol=2e-6)
