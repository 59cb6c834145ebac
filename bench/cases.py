"""The benchmark cases: for one grid point, a callable that runs the case once on the next of several inputs.

Every call takes the next input set in rotation, so that repeated calls do not time one input already in cache
(the sets add up to at least ``ROTATION_BYTES``, and on CUDA to at least twice the L2), and on CUDA it ends
with a synchronize, so that a host timer around it measures the device work. A point that cannot run here is
skipped with the reason (pytest prints it in the short summary).
"""

from __future__ import annotations

import importlib.util
import itertools
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable
from unittest import mock

import pytest
import torch

import huenet
from huenet import backends
from huenet.backends import reference
from huenet.colortransfer.training import models
from huenet.colortransfer.training.gan import HueNetGAN
from huenet.losses import HistogramEMDLoss, HueNetLoss, MutualInformationLoss

from .grid import NO_HIST, Point, Size

ROTATION_BYTES = 64 * 2**20
MAX_INPUT_SETS = 4096
# torch.compile needs ~5-10 s per case on the CPU: there it runs at small sizes only.
COMPILE_CPU_MAX_PIXELS = 64 * 64
# One (B, C, N, K) fp32 tensor of memberships beyond this means several GiB for the dense backends on the CPU,
# which a shared 24 GiB machine cannot spare.
DENSE_CPU_MAX_BYTES = 2**30
DTYPE_BYTES = 4  # float32 throughout
# The baselines that hold a dense (B, C, N, K) tensor: running out of memory is their measured limit, not a bug.
DENSE_BACKENDS = ("reference", "compile", "kornia")
KORNIA_NOTE = "kornia.enhance Gaussian KDE at bin centres, sigma 0.4 bins, no boundary handling"
COMPILE_NOTE = "reference backend's histogram and entropy functions under torch.compile(dynamic=False)"


@dataclass
class Workload:
    call: Callable[[], torch.Tensor]  # one run of the case on the next input set; returns a detached result
    input_sets: int
    min_bytes: int  # bytes that must move: every input read once, every output and input gradient written once
    joint_flops: int  # dense-equivalent FLOPs of the K x K joint products (2·N·K² each), 0 where there are none
    note: str = ""


@dataclass(frozen=True)
class OpCase:
    inputs: tuple[str, ...]  # names of (B, 3, H, W) images in [0, 1]
    make: Callable[[str, int], Callable[[dict], torch.Tensor]]  # (backend, bins) -> forward over an input set
    out_dims: int = 0  # bin dimensions of the output: 1 for (B, C, K), 2 for (B, C, K, K), 0 for a scalar loss
    joint_channels: int = 0  # channels that go through a K x K joint product
    kornia: Callable[[int, torch.device], Callable[[dict], torch.Tensor]] | None = None


def _soft(boundary: str):
    return lambda backend, bins: lambda t: huenet.soft_histogram(t["x"], bins, boundary=boundary, backend=backend)


def _joint(backend, bins):
    return lambda t: huenet.joint_histogram(t["x"], t["y"], bins, backend=backend)


def _hue_emd(backend, bins):
    loss = HistogramEMDLoss(channels="h", bins=bins, backend=backend)
    return lambda t: loss(t["x"], t["target"])


def _mi(backend, bins):
    loss = MutualInformationLoss(bins=bins, backend=backend)
    return lambda t: loss(t["x"], t["y"])


def _huenet_loss(backend, bins):
    loss = HueNetLoss(bins=bins, backend=backend)
    return lambda t: loss(t["x"], t["source"], t["target"])


def _core_loss(backend, bins):
    # The CPU target: the hue EMD loss plus the MI loss (on all three channels), as the first CPU bench had it.
    emd = HistogramEMDLoss(channels="h", bins=bins, backend=backend)
    mi = MutualInformationLoss(bins=bins, backend=backend)
    return lambda t: emd(t["x"], t["target"]) + mi(t["x"], t["source"])


def _kornia_bins(bins: int, device: torch.device):
    # kornia's KDE is a Gaussian at bin centres with sigma in value units: our 0.4 bin widths, no boundary handling.
    centres = (torch.arange(bins, device=device) + 0.5) / bins
    return centres, torch.tensor(0.4 / bins, device=device)


def _kornia_soft(bins, device):
    from kornia.enhance import histogram

    centres, sigma = _kornia_bins(bins, device)

    def forward(t):
        x = t["x"]
        return histogram(x.flatten(2).flatten(0, 1), centres, sigma).unflatten(0, x.shape[:2])

    return forward


def _kornia_joint(bins, device):
    from kornia.enhance import histogram2d

    centres, sigma = _kornia_bins(bins, device)

    def forward(t):
        x, y = t["x"], t["y"]
        return histogram2d(x.flatten(2).flatten(0, 1), y.flatten(2).flatten(0, 1), centres, sigma).unflatten(
            0, x.shape[:2]
        )

    return forward


# The input called "x" is the one that gets a gradient: the generator's output in a GAN.
OP_CASES = {
    "soft_histogram_reflect": OpCase(("x",), _soft("reflect"), out_dims=1, kornia=_kornia_soft),
    "soft_histogram_circular": OpCase(("x",), _soft("circular"), out_dims=1, kornia=_kornia_soft),
    "hue_emd": OpCase(("x", "target"), _hue_emd),
    "joint_histogram": OpCase(("x", "y"), _joint, out_dims=2, joint_channels=3, kornia=_kornia_joint),
    "mi": OpCase(("x", "y"), _mi, joint_channels=3),
    "huenet_loss": OpCase(("x", "source", "target"), _huenet_loss, joint_channels=1),  # D_MI on V only
    "core_loss": OpCase(("x", "target", "source"), _core_loss, joint_channels=3),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _input_sets(names, size: Size, device: torch.device, grad: bool) -> list[dict]:
    shape = (size.batch, size.channels, size.side, size.side)
    set_bytes = len(names) * math.prod(shape) * DTYPE_BYTES
    target = ROTATION_BYTES
    if device.type == "cuda":
        target = max(target, 2 * getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0))
    count = min(MAX_INPUT_SETS, max(4, math.ceil(target / set_bytes)))
    gen = torch.Generator(device=device).manual_seed(0)
    sets = []
    for _ in range(count):
        images = {name: torch.rand(shape, generator=gen, device=device) for name in names}
        images["x"].requires_grad_(grad)
        sets.append(images)
    return sets


def _skip_unrunnable(point: Point, device: torch.device) -> None:
    size, backend = point.size, point.backend
    if backend == "triton" and importlib.util.find_spec("triton") is None:
        pytest.skip("triton: not installed")
    if backend == "triton" and device.type != "cuda":
        pytest.skip(
            "triton: the kernels need a CUDA GPU and there is none here (under TRITON_INTERPRET=1 they "
            "would run on CPU tensors, but that is an emulator, not a benchmark)"
        )
    if backend == "compile" and device.type == "cpu" and size.pixels > COMPILE_CPU_MAX_PIXELS:
        pytest.skip(
            f"compile: on the CPU torch.compile runs only at B·H·W <= {COMPILE_CPU_MAX_PIXELS} "
            "(compiling takes ~10 s a case there)"
        )
    dense = size.batch * size.channels * size.side**2 * size.bins * DTYPE_BYTES
    if backend in DENSE_BACKENDS and device.type == "cpu" and dense > DENSE_CPU_MAX_BYTES:
        pytest.skip(
            f"{backend}: a dense (B, C, N, K) tensor here is {dense / 2**30:.1f} GiB; the dense backends "
            f"are measured on the CPU only up to {DENSE_CPU_MAX_BYTES / 2**30:.0f} GiB"
        )


def _compiled_reference(make, bins):
    """``make("reference", bins)`` with the reference backend's dense formulas compiled by torch.compile.

    Compiling the public op as a whole does not work: the argument checks sync to the host (the weight check's
    ``.tolist()``), dynamo breaks the graph there and recompiles the rest on every call. So the compiled row
    keeps huenet's checks, colour conversion and EMD as they are and compiles what costs: the reference
    backend's soft histogram, joint histogram and entropies, swapped in for the backend that
    ``huenet.backends.resolve`` returns for backend="reference".
    """
    torch._dynamo.reset()  # each case compiles afresh: recompiles of one code object would hit dynamo's limit
    compiled = SimpleNamespace(
        name="reference",
        **{
            name: torch.compile(getattr(reference, name), dynamic=False)
            for name in ("soft_histogram", "joint_histogram", "entropies")
        },
    )
    forward = make("reference", bins)

    def call(*args):
        with mock.patch.dict(backends.REGISTRY, reference=compiled):
            return forward(*args)

    return call


def _op_forward(point: Point, case: OpCase, device: torch.device):
    bins = point.size.bins
    if point.backend == "kornia":
        if case.kornia is None:
            pytest.skip(f"kornia: it has no counterpart of {point.case} (only histogram and histogram2d)")
        if importlib.util.find_spec("kornia") is None:
            pytest.skip("kornia: not installed; install the [kornia] extra")
        return case.kornia(bins, device), KORNIA_NOTE
    if point.backend == "compile":
        return _compiled_reference(case.make, bins), COMPILE_NOTE
    return case.make(point.backend, bins), ""


def _op_workload(point: Point, device: torch.device) -> Workload:
    case = OP_CASES[point.case]
    size, backward = point.size, point.mode == "fwdbwd"
    forward, note = _op_forward(point, case, device)
    sets = _input_sets(case.inputs, size, device, backward)
    rotation = itertools.cycle(sets)
    cotangents: dict[torch.Size, torch.Tensor] = {}

    def call() -> torch.Tensor:
        t = next(rotation)
        if not backward:
            with torch.no_grad():
                out = forward(t)
        else:
            out = forward(t)
            if out.ndim:
                # A random cotangent: the plain sum of a normalised histogram is constant, its gradient zero.
                if out.shape not in cotangents:
                    gen = torch.Generator(device=device).manual_seed(1)
                    cotangents[out.shape] = torch.randn(out.shape, generator=gen, device=device)
                out.backward(cotangents[out.shape])
            else:
                out.backward()
            t["x"].grad = None  # the gradient is written (and counted) inside the call, kept by none
        _sync(device)
        return out.detach()

    n = size.batch * size.side**2
    image_bytes = size.channels * n * DTYPE_BYTES
    out_bytes = size.batch * size.channels * size.bins**case.out_dims * DTYPE_BYTES if case.out_dims else 0
    min_bytes = len(case.inputs) * image_bytes + out_bytes + (image_bytes if backward else 0)
    # Backward through A_xᵀ A_y to x is one more product of the same size (A_y Gᵀ).
    flops = 2 * case.joint_channels * n * size.bins**2 * (2 if backward else 1)
    return Workload(call, len(sets), min_bytes, flops, note)


def _train_workload(point: Point, device: torch.device) -> Workload:
    """One Hue-Net training iteration (D step, then G step): :meth:`HueNetGAN.step` of the application.

    The GAN is built here rather than by the trainer, which also builds a data set and a run folder. G's own
    conditioning histograms use the default backend in every variant, so the only difference from the
    "gan-only" iteration is the HueNetLoss term and its backend.
    """
    size, update = point.size, point.mode == "fwdbwd"
    torch.manual_seed(0)
    G = models.HueNetGenerator(image_size=size.side, ngf=size.width).to(device).train()
    D = models.PatchDiscriminator(ndf=size.width).to(device).train()
    note = f"G HueNetGenerator(ngf={size.width}), D PatchDiscriminator(ndf={size.width}), Adam"
    backend = "reference" if point.backend == "compile" else point.backend
    loss = None if point.backend == NO_HIST else HueNetLoss(bins=size.bins, backend=backend)
    gan = HueNetGAN(G, D, loss)
    step = gan.step
    if point.backend == NO_HIST:
        note += "; no HueNetLoss"
    elif point.backend == "compile":
        step, note = _compiled_reference(lambda backend, bins: gan.step, size.bins), note + "; " + COMPILE_NOTE
    sets = _input_sets(("x", "target"), size, device, grad=False)
    rotation = itertools.cycle(sets)

    def call() -> torch.Tensor:
        t = next(rotation)
        loss_g = step(t["x"], t["target"], update=update)["loss_g"]
        _sync(device)
        return loss_g.detach()

    return Workload(call, len(sets), 0, 0, note)


def build(point: Point, device: torch.device) -> Workload:
    """The workload of ``point`` on ``device``; skips (pytest.skip) with the reason where it cannot run."""
    _skip_unrunnable(point, device)
    if point.case == "train_step":
        return _train_workload(point, device)
    return _op_workload(point, device)
