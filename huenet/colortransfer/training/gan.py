r"""The Hue-Net GAN: generator, discriminator, their optimisers, the losses and the AMP scaler, and one step.

``output = G(source, hist(target))``. :meth:`HueNetGAN.step` is:

1. D: ``GAN_D(D(source) -> real, D(output) -> fake)`` (the source is the real image, as in the official code);
2. G: ``lambda_gan * GAN_G(D(output)) + lambda_mi * D_MI(output, source) + lambda_hist * EMD(output, target)``
   with :class:`huenet.losses.HueNetLoss` (cyclic EMD of hue histograms, D_MI on V, in HSV by default).

That is colour transfer, on unpaired (source, target) photos. For the paired tasks (colorize, edges2photo;
:mod:`~huenet.colortransfer.data.tasks`) the source is the input (grey or edges) and the target its ground-truth
photo, which is also the reference; D is conditional (``discriminator.conditional``) and judges (image, input)
pairs, the ground truth being real: ``GAN_D(D(target | source) -> real, D(output | source) -> fake)``, and G
may add pix2pix's ``lambda_l1 * |output - target|``.

Transparent pixels (an alpha of 0) take no part in any histogram: the alphas are the losses' pixel weights.
The training loop (:mod:`huenet.colortransfer.training.train`) and the benchmark's training-step case both run this step.

Example:
    >>> from huenet.colortransfer.training.models import HueNetGenerator, PatchDiscriminator
    >>> gan = HueNetGAN(HueNetGenerator(32, ngf=4, cond_bins=8), PatchDiscriminator(4), HueNetLoss(bins=16))
    >>> record = gan.step(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    >>> sorted(record), record["nonfinite"]
    (['adv', 'hist', 'l1', 'loss_d', 'loss_g', 'mi', 'nonfinite'], False)
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ...losses import HueNetLoss
from .. import runtime
from ..data.tasks import PAIRED_TASKS
from .models import DEFAULT_GAN_MODE, GANLoss, HueNetGenerator, PatchDiscriminator

# torch 2.13 renamed DDP's broadcast_buffers to forward_sync_buffers (the old name warns).
_BUFFER_SYNC_ARG = (
    "forward_sync_buffers"
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else "broadcast_buffers"
)
#: The losses of a step: G's total, D's, and G's three terms unweighted.
LOSS_KEYS = ("loss_g", "loss_d", "adv", "hist", "mi", "l1")
# Activations a training step keeps per element of one forward pass of G and D, as a multiple of that
# forward's outputs: the saved activations, their gradients, and D run three times (source, output twice).
#: pix2pix's Adam settings, for both nets.
LR = 2e-4
BETA1 = 0.5
#: The weight of G's adversarial term.
LAMBDA_GAN = 1.0
_STEP_ACTIVATION_FACTOR = 3
_FLOAT_BYTES = 4


def pixel_weight(alpha: torch.Tensor | None) -> torch.Tensor | None:
    """The losses' pixel weights (B, 1, H, W) from alphas: None when all are opaque (no weighting at all).

    A sample with no opaque pixel at all (a crop of a transparent area) is weighted uniformly: it has no
    colours to give, and a zero total weight is not a histogram.
    """
    if alpha is None or bool((alpha == 1).all()):
        return None
    empty = alpha.flatten(1).sum(1) == 0
    return torch.where(empty[:, None, None, None], torch.ones_like(alpha), alpha)


class HueNetGAN:
    """The nets, optimisers, losses and AMP scaler of a Hue-Net run, and its training step.

    Args:
        generator, discriminator: the networks (on their device already).
        loss: the histogram objective, with its ``lambda_hist`` and ``lambda_mi``; None trains the plain GAN
            (the benchmark's baseline).
        gan_mode: "bce" or "lsgan".
        lr, beta1: Adam's learning rate and beta1, for both nets.
        lambda_gan: weight of G's adversarial term.
        lambda_l1: weight of the L1 distance of the output to the target (paired tasks only: needs a
            conditional discriminator, whose target is the ground truth).
        amp: mixed precision (CUDA only; the histogram losses always compute in fp32).
        ctx: the process group under torchrun; None runs alone.
    """

    def __init__(
        self,
        generator: HueNetGenerator,
        discriminator: PatchDiscriminator,
        loss: HueNetLoss | None,
        gan_mode: str = DEFAULT_GAN_MODE,
        lr: float = LR,
        beta1: float = BETA1,
        lambda_gan: float = LAMBDA_GAN,
        amp: bool = False,
        ctx: runtime.Distributed | None = None,
        lambda_l1: float = 0.0,
    ):
        if lambda_l1 and not discriminator.conditional:
            raise ValueError(
                "HueNetGAN: `lambda_l1` must be 0 with an unconditional discriminator (unpaired "
                f"transfer has no ground truth); got {lambda_l1!r}"
            )
        self.G, self.D, self.loss = generator, discriminator, loss
        self.paired, self.lambda_l1 = discriminator.conditional, float(lambda_l1)
        self.device = next(generator.parameters()).device
        self.ctx = ctx or runtime.Distributed(0, 1, self.device)
        self.gan_loss = GANLoss(gan_mode)
        self.lambda_gan, self.amp = lambda_gan, amp
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr, (beta1, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr, (beta1, 0.999))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp)
        if self.ctx.enabled:
            ids = [self.device] if self.device.type == "cuda" else None
            # No buffer sync in forward: D runs several forwards per step, and re-broadcasting its BatchNorm
            # buffers in between would modify tensors autograd saved. Each process keeps its own statistics
            # (the weights start equal; DDP syncs their gradients).
            no_sync = {_BUFFER_SYNC_ARG: False}
            self.G_train = DistributedDataParallel(self.G, ids, **no_sync)
            self.D_train = DistributedDataParallel(self.D, ids, **no_sync)
        else:
            self.G_train, self.D_train = self.G, self.D

    @classmethod
    def from_config(cls, cfg, ctx: runtime.Distributed) -> HueNetGAN:
        """The GAN of a :class:`~huenet.colortransfer.training.options.TrainConfig`, seeded by ``cfg.seed``."""
        torch.manual_seed(cfg.seed)  # identical initial weights in every process
        generator = HueNetGenerator(
            cfg.image_size,
            cfg.ngf,
            cfg.cond_bins,
            cfg.colorspace,
            cfg.bandwidth,
            cfg.dropout,
            cfg.backend,
            cfg.global_mapping,
            # colorize: the grey input is the lightness; G chooses the chroma (docs/training.md).
            keep_luma=cfg.task == "colorize",
        ).to(ctx.device)
        discriminator = PatchDiscriminator(cfg.discriminator_width, conditional=cfg.task in PAIRED_TASKS).to(ctx.device)
        loss = HueNetLoss(
            cfg.colorspace,
            cfg.bins,
            cfg.bandwidth,
            cfg.lambda_hist,
            cfg.lambda_mi,
            cfg.hist_channels,
            cfg.mi_channels,
            cfg.emd_order,
            cfg.hue_weight,
            "none",
            cfg.backend,
            cfg.detach_hue_weight,
        )
        amp = cfg.amp and ctx.device.type == "cuda"
        return cls(
            generator, discriminator, loss, cfg.gan_mode, cfg.lr, cfg.beta1, cfg.lambda_gan, amp, ctx, cfg.lambda_l1
        )

    # ------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler.load_state_dict(state["scaler"])

    # -------------------------------------------------------------------------------------------- step
    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, enabled=self.amp)

    def _all_finite(self, loss: torch.Tensor) -> bool:
        """Whether ``loss`` is finite in every process: they must all skip a step, or none."""
        flag = torch.isfinite(loss.detach()).float().reshape(1)
        if self.ctx.enabled:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def _generator_terms(self, output, source, target, source_weight, target_weight):
        """G's adversarial term through the plain D (frozen: no DDP reduction for D here), the histogram
        terms (computed in fp32 whatever the autocast state, so given fp32 images) and, paired, the L1."""
        with self._autocast():
            adv = self.gan_loss.generator(self.D(output, self._condition(source)))
        zero = torch.zeros((), device=self.device)
        # pix2pix's L1 to the ground truth, over the pixels the losses weigh (all of them when opaque).
        l1 = zero
        if self.paired:
            diff = (output.float() - target).abs()
            l1 = (
                diff.mean()
                if target_weight is None
                else (diff * target_weight).sum() / (3 * target_weight.sum()).clamp(min=1e-12)
            )
        loss_g = self.lambda_gan * adv + self.lambda_l1 * l1
        hist = mi = zero
        if self.loss is not None:
            terms = self.loss.terms(output.float(), source, target, source_weight, target_weight)
            hist, mi = terms["hist"].mean(), terms["mi"].mean()
            loss_g = loss_g + self.loss.weigh(terms).mean()
        return loss_g, adv, hist, mi, l1

    def _condition(self, source: torch.Tensor) -> torch.Tensor | None:
        """What D is conditioned on: the input of a paired task, nothing for transfer."""
        return source if self.paired else None

    def _real(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """What D must call real: the ground truth of a paired task; the source for transfer (official code)."""
        return target if self.paired else source

    def step(
        self,
        source: torch.Tensor,
        target: torch.Tensor,
        source_alpha: torch.Tensor | None = None,
        target_alpha: torch.Tensor | None = None,
        update: bool = True,
    ) -> dict:
        """One D update then one G update; a loss that is not finite skips its update(s).

        Args:
            source, target: (B, 3, H, W) RGB in [0, 1]: the photos of a transfer pair, or a paired task's input
                and ground truth.
            source_alpha, target_alpha: (B, 1, H, W) in [0, 1] or None (opaque).
            update: False computes the losses only, without gradients (the benchmark's forward case).

        Returns:
            ``{"loss_g", "loss_d", "adv", "hist", "mi", "l1"}`` as 0-dim tensors (the means over all processes; NaN
            for a skipped step) and ``"nonfinite"``: whether the step was skipped.
        """
        source = source.to(self.device, non_blocking=True)
        target = target.to(self.device, non_blocking=True)
        weights = [pixel_weight(None if a is None else a.to(self.device)) for a in (source_alpha, target_alpha)]
        if not update:
            with torch.no_grad(), self._autocast():
                output = self.G(source, self.G.target_statistics(target))
                condition = self._condition(source)
                loss_d = self.gan_loss.discriminator(
                    self.D(self._real(source, target), condition), self.D(output, condition)
                )
                terms = self._generator_terms(output, source, target, *weights)
            return dict(zip(LOSS_KEYS, (terms[0], loss_d, *terms[1:])), nonfinite=False)

        with self._autocast():
            output = self.G_train(source, self.G.target_statistics(target))
            self.D.requires_grad_(True)
            condition = self._condition(source)
            loss_d = self.gan_loss.discriminator(
                self.D_train(self._real(source, target), condition), self.D_train(output.detach(), condition)
            )
        ok = self._all_finite(loss_d)
        if ok:
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.scaler.step(self.opt_d)
            self.D.requires_grad_(False)
            terms = self._generator_terms(output, source, target, *weights)
            loss_g = terms[0]
            ok = self._all_finite(loss_g)
            if ok:
                self.opt_g.zero_grad(set_to_none=True)
                self.scaler.scale(loss_g).backward()
                self.scaler.step(self.opt_g)
            self.scaler.update()
        if not ok:
            return dict(zip(LOSS_KEYS, torch.full((len(LOSS_KEYS),), math.nan).unbind()), nonfinite=True)
        values = torch.stack([t.detach().float() for t in (loss_g, loss_d, *terms[1:])])
        return dict(zip(LOSS_KEYS, runtime.all_reduce_mean(self.ctx, values.float()).unbind()), nonfinite=False)

    @torch.no_grad()
    def generate(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """G's output in eval mode (BatchNorm running statistics), as at inference."""
        self.G.eval()
        try:
            return self.G(source, self.G.target_statistics(target)).float()
        finally:
            self.G.train()


def step_bytes(batch: int, image_size: int, ngf: int, ndf: int, cond_bins: int, bins: int) -> int:
    """An estimate of the memory one training step needs at ``batch`` x ``image_size``², in bytes.

    Counts the outputs of every layer of one forward of G and D on one small image (the smallest side that G's
    depth at ``image_size`` allows), scales them to the batch and size -- activations grow with the pixels --
    and multiplies by :data:`_STEP_ACTIVATION_FACTOR`; adds the histogram losses' per-pixel work (a few values
    per pixel and bin in the support of the kernel) and one (bins, bins) joint histogram per channel. Nothing
    of the real size is allocated.
    """
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor) and not list(module.children()):
            total += output.numel()

    # eval(): BatchNorm cannot train on a batch of one image with a 1x1 bottleneck; the shapes are the same.
    G, D = HueNetGenerator(image_size, ngf, cond_bins).eval(), PatchDiscriminator(ndf).eval()
    side = max(32, 2**G.depth)
    hooks = [m.register_forward_hook(count) for net in (G, D) for m in net.modules()]
    try:
        with torch.no_grad():
            D(G(torch.rand(1, 3, side, side), torch.zeros(1, G.cond_size)))
    finally:
        for hook in hooks:
            hook.remove()
    scale = batch * (image_size / side) ** 2
    histogram_values = batch * image_size**2 * 3 * 8 + batch * 3 * bins * bins
    return int((_STEP_ACTIVATION_FACTOR * total * scale + histogram_values) * _FLOAT_BYTES)
