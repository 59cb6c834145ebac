"""nn.Module histogram losses for image-to-image training: EMD, mutual information and Hue-Net's objective.

Images are RGB in [0, 1] of shape (B, 3, H, W) unless stated otherwise; each loss converts them to its colour
space and builds one soft histogram per channel with that channel's value range. A periodic channel (hue)
uses the circular boundary and the cyclic EMD, and is weighted per pixel by saturation or chroma so that
grey pixels, whose hue is undefined, do not vote for one.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from . import _checks, color
from .backends import DEFAULT_BACKEND
from .emd import emd
from .histogram import DEFAULT_BANDWIDTH, DEFAULT_BINS, DEFAULT_BOUNDARY, DEFAULT_RANGE, soft_histogram
from .information import conditional_entropy, mi_distance

_TO_SPACE = {"rgb": lambda img: img, "hsv": color.rgb_to_hsv, "yuv": color.rgb_to_yuv}
#: Hue-Net compares hues in HSV, each hue weighted by its pixel's saturation, with the circular W1 (order 1).
DEFAULT_COLORSPACE = "hsv"
DEFAULT_HUE_WEIGHT = "saturation"
DEFAULT_ORDER = 1
HUE_WEIGHTS = (DEFAULT_HUE_WEIGHT, "chroma", None)
# Added to the hue weights so that an entirely grey image still has a positive total weight; it is far
# below one saturated pixel's vote, so it only decides the (spike at hue 0) histogram of such images.
HUE_WEIGHT_FLOOR = 1e-6
# A target whose mean HSV saturation is below this has no hue to give: grey photos (JPEG chroma noise keeps
# them at about 0.01) and scans. Its hue histogram is the floor's spike at red, so matching it would paint the
# output red; the hue term takes no weight from such a sample instead (with a warning).
GREY_TARGET_SATURATION = 0.03


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class _ColorChannels:
    """Which channels of which colour space a loss reads, with their ranges, boundaries and hue weights."""

    def __init__(self, op: str, arg: str, colorspace: str, channels: str, hue_weight, detach_hue_weight=False):
        _checks.check_choice(op, "colorspace", colorspace, tuple(_TO_SPACE))
        names = color.CHANNEL_NAMES[colorspace]
        if (
            not isinstance(channels, str)
            or not channels
            or any(ch not in names for ch in channels)
            or len(set(channels)) != len(channels)
        ):
            _checks.fail(op, arg, f"a non-empty string of distinct letters from {names!r}", repr(channels))
        _checks.check_choice(op, "hue_weight", hue_weight, HUE_WEIGHTS)
        if not isinstance(detach_hue_weight, bool):
            _checks.fail(op, "detach_hue_weight", "a bool", repr(detach_hue_weight), TypeError)
        self.colorspace, self.hue_weight, self.detach_hue_weight = colorspace, hue_weight, detach_hue_weight
        self.index = [names.index(ch) for ch in channels]
        self.range = [color.CHANNEL_RANGES[colorspace][i] for i in self.index]
        self.periodic = [color.PERIODIC[colorspace][i] for i in self.index]

    def convert(self, op: str, arg: str, image: torch.Tensor) -> torch.Tensor:
        _checks.check_image(op, arg, image)
        if image.ndim != 4 or image.shape[1] != 3:
            _checks.fail(op, arg, "an RGB batch of shape (B, 3, H, W)", f"shape {tuple(image.shape)}")
        return _TO_SPACE[self.colorspace](image)

    def weight(
        self, image: torch.Tensor, converted: torch.Tensor, pixel_weight: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Per-pixel hue weight (B, 1, H, W): saturation or chroma (max - min) of the RGB image, times
        ``pixel_weight`` if given."""
        if self.hue_weight is None:
            return pixel_weight
        sat = converted[:, 1:2] if self.colorspace == "hsv" else color.rgb_to_hsv(image)[:, 1:2]
        w = sat if self.hue_weight == "saturation" else sat * image.amax(1, keepdim=True)
        # Detached, the weight only selects which pixels vote; attached, lowering a wrongly hued pixel's
        # saturation also lowers the loss, a path a generator can exploit by desaturating.
        w = w.detach() if self.detach_hue_weight else w
        return w + HUE_WEIGHT_FLOOR if pixel_weight is None else (w + HUE_WEIGHT_FLOOR) * pixel_weight


class HistogramEMDLoss(nn.Module):
    r"""EMD between the soft colour histograms of two images, cyclic on hue.

    For each selected channel c: ``emd(hist(input_c), hist(target_c), order, cyclic=c is hue)``, the hue
    histograms weighted by ``hue_weight``.

    Args:
        colorspace: "hsv" (default), "yuv" or "rgb".
        channels: letters of the channels to compare, e.g. "h" (default) or "hsv".
        bins, bandwidth: as in :func:`huenet.soft_histogram`.
        order: EMD order l, 1 (W1, default) or 2 (the official code's RMS form).
        hue_weight: "saturation" (default), "chroma" or None.
        reduction: "mean", "sum" or "none".
        backend: as in :func:`huenet.soft_histogram`.
        detach_hue_weight: take no gradient through the hue weights, so that the loss can move hues but cannot
            be lowered by desaturating pixels (default False: the full gradient).

    Shape:
        input, target: (B, 3, H, W) RGB in [0, 1] (the sizes may differ). Output: scalar, or (B, len(channels))
        with ``reduction="none"``.

    Example:
        >>> loss = HistogramEMDLoss(channels="hsv")
        >>> loss(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 48, 40)).shape
        torch.Size([])
    """

    def __init__(
        self,
        colorspace: str = DEFAULT_COLORSPACE,
        channels: str = "h",
        bins: int = DEFAULT_BINS,
        bandwidth: float = DEFAULT_BANDWIDTH,
        order: int = DEFAULT_ORDER,
        hue_weight: str | None = DEFAULT_HUE_WEIGHT,
        reduction: str = _checks.DEFAULT_REDUCTION,
        backend: str = DEFAULT_BACKEND,
        detach_hue_weight: bool = False,
    ):
        super().__init__()
        op = "HistogramEMDLoss"
        self.channels = _ColorChannels(op, "channels", colorspace, channels, hue_weight, detach_hue_weight)
        _checks.check_bins(op, bins)
        _checks.check_bandwidth(op, bandwidth)
        if isinstance(order, bool) or order not in (1, 2):
            _checks.fail(op, "order", "1 or 2", repr(order))
        _checks.check_choice(op, "reduction", reduction, _checks.REDUCTIONS)
        self.bins, self.bandwidth, self.order, self.reduction, self.backend = bins, bandwidth, order, reduction, backend

    def histograms(
        self,
        image: torch.Tensor,
        arg: str = "input",
        weight: torch.Tensor | None = None,
        converted: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Soft histograms (B, bins) of the selected channels of an RGB batch; ``weight`` (B, 1, H, W) >= 0
        weights its pixels (e.g. an alpha channel: transparent pixels take no part). ``converted``: the batch
        already in this loss's colour space, to save converting it again."""
        if converted is None:
            converted = self.channels.convert(type(self).__name__, arg, image)
        hists = []
        for i, value_range, periodic in zip(self.channels.index, self.channels.range, self.channels.periodic):
            hist = soft_histogram(
                converted[:, i : i + 1],
                self.bins,
                value_range,
                self.bandwidth,
                "circular" if periodic else "reflect",
                self.channels.weight(image, converted, weight) if periodic else weight,
                self.backend,
            )
            hists.append(hist[:, 0])
        return hists

    def per_channel(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        input_weight: torch.Tensor | None = None,
        target_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Unreduced loss, (B, len(channels)); the optional (B, 1, H, W) weights weight each image's pixels."""
        return self._per_channel(input, target, input_weight, target_weight)

    def _per_channel(self, input, target, input_weight=None, target_weight=None, converted_input=None):
        """``per_channel``, with ``input`` already converted to the colour space when ``converted_input`` is
        given; the target is converted once for both its histograms and the grey-target check."""
        hist_in = self.histograms(input, "input", input_weight, converted_input)
        converted_target = self.channels.convert(type(self).__name__, "target", target)
        hist_tgt = self.histograms(target, "target", target_weight, converted_target)
        if target.shape[0] != input.shape[0]:
            _checks.fail(
                type(self).__name__,
                "target",
                f"a batch of {input.shape[0]} images like `input`",
                f"shape {tuple(target.shape)}",
            )
        pairs = zip(hist_in, hist_tgt, self.channels.periodic)
        loss = torch.stack([emd(p, q, self.order, cyclic) for p, q, cyclic in pairs], 1)
        if any(self.channels.periodic):
            loss = self._drop_grey_targets(loss, target, converted_target)
        return loss

    def _drop_grey_targets(self, loss: torch.Tensor, target: torch.Tensor, converted: torch.Tensor) -> torch.Tensor:
        """Zero the hue columns of the samples whose target has (almost) no saturation; ``converted`` is the
        target in this loss's colour space (its saturation, when that is HSV).

        The columns are zeroed on the tensors' device. Whether any target is grey is only known on the host
        after a sync, so the warning is given on the CPU, where that costs nothing; on a GPU it would stop the
        host on every step and rule out CUDA-graph capture (the policy of the weight checks, ``validate``).
        """
        hsv = converted if self.channels.colorspace == "hsv" else color.rgb_to_hsv(target)
        grey = hsv[:, 1].detach().flatten(1).mean(1) < GREY_TARGET_SATURATION
        if grey.device.type == "cpu" and bool(grey.any()):
            warnings.warn(
                f"{type(self).__name__}: {int(grey.sum())} target(s) have no hue (mean saturation < "
                f"{GREY_TARGET_SATURATION}); the hue term takes no weight from them",
                stacklevel=3,
            )
        columns = loss.unbind(1)
        kept = [torch.where(grey, 0.0, c) if periodic else c for c, periodic in zip(columns, self.channels.periodic)]
        return torch.stack(kept, 1)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _reduce(self.per_channel(input, target), self.reduction)


class MutualInformationLoss(nn.Module):
    r"""Per-channel mutual-information loss between two tensors: D_MI = 1 - I/H (default) or H(target|input).

    Args:
        bins, range, bandwidth, boundary, backend: as in :func:`huenet.joint_histogram`.
        objective: "mi_distance" (Hue-Net's D_MI, in [0, 1]) or "conditional_entropy" (the official code's
            H(target | input) in nats, with target as the source image and input as the output).
        reduction: "mean", "sum" or "none".

    Shape:
        input, target: (B, C, *spatial) of the same shape, values in ``range``. Output: scalar, or (B, C) with
        ``reduction="none"``.

    Example:
        >>> x, noise = torch.rand(2, 1, 1, 64, 64).unbind(0)
        >>> loss = MutualInformationLoss(bins=32)
        >>> loss(x, 1 - x) < loss(x, noise)
        tensor(True)
    """

    def __init__(
        self,
        bins: int = DEFAULT_BINS,
        range=DEFAULT_RANGE,
        bandwidth: float = DEFAULT_BANDWIDTH,
        boundary: str = DEFAULT_BOUNDARY,
        objective: str = "mi_distance",
        reduction: str = _checks.DEFAULT_REDUCTION,
        backend: str = DEFAULT_BACKEND,
    ):
        super().__init__()
        op = "MutualInformationLoss"
        _checks.check_choice(op, "objective", objective, ("mi_distance", "conditional_entropy"))
        _checks.check_choice(op, "reduction", reduction, _checks.REDUCTIONS)
        self.kwargs = dict(bins=bins, range=range, bandwidth=bandwidth, boundary=boundary, backend=backend)
        self.objective, self.reduction = objective, reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.objective == "mi_distance":
            loss = mi_distance(input, target, **self.kwargs)
        else:
            loss = conditional_entropy(target, input, **self.kwargs)
        return _reduce(loss, self.reduction)


class HueNetLoss(nn.Module):
    r"""Hue-Net's colour-transfer histogram objective for ``output = G(source, hist(target))``.

    .. math::
        \lambda_{hist}\,\overline{EMD}(output, target) + \lambda_{mi}\,\overline{D_{MI}}(output, source)

    where each bar is the mean over the selected channels: the EMD of the soft (hue-weighted, cyclic on hue)
    histograms pulls the output's colours to the target's, and D_MI keeps the output a deterministic function
    of the source per channel, which preserves its structure. The adversarial term is the trainer's.

    Args:
        colorspace: "hsv" (default) or "yuv" (the official code's).
        bins, bandwidth: as in :func:`huenet.soft_histogram`.
        lambda_hist: weight of the EMD term (100, as in the official code).
        lambda_mi: weight of the D_MI term (1).
        hist_channels: channels of the EMD term; default "h" for hsv, "yuv" for yuv.
        mi_channels: channels of the D_MI term; default "v" for hsv, "yuv" for yuv.
        order: EMD order, 1 (default) or 2.
        hue_weight: "saturation" (default), "chroma" or None.
        reduction: "mean", "sum" or "none" (per sample, (B,)).
        backend: as in :func:`huenet.soft_histogram`.
        detach_hue_weight: as in :class:`HistogramEMDLoss`.

    Shape:
        output, source: (B, 3, H, W) RGB in [0, 1]; target: (B, 3, H', W'). Output: scalar, or (B,).

    Example:
        >>> loss = HueNetLoss(bins=64)
        >>> out, src, tgt = torch.rand(3, 2, 3, 32, 32).unbind(0)
        >>> sorted(loss.terms(out, src, tgt))
        ['hist', 'mi']
    """

    _DEFAULT_CHANNELS = {"hsv": ("h", "v"), "yuv": ("yuv", "yuv")}

    def __init__(
        self,
        colorspace: str = DEFAULT_COLORSPACE,
        bins: int = DEFAULT_BINS,
        bandwidth: float = DEFAULT_BANDWIDTH,
        lambda_hist: float = 100.0,
        lambda_mi: float = 1.0,
        hist_channels: str | None = None,
        mi_channels: str | None = None,
        order: int = DEFAULT_ORDER,
        hue_weight: str | None = DEFAULT_HUE_WEIGHT,
        reduction: str = _checks.DEFAULT_REDUCTION,
        backend: str = DEFAULT_BACKEND,
        detach_hue_weight: bool = False,
    ):
        super().__init__()
        op = "HueNetLoss"
        _checks.check_choice(op, "colorspace", colorspace, tuple(self._DEFAULT_CHANNELS))
        default_hist, default_mi = self._DEFAULT_CHANNELS[colorspace]
        self.hist = HistogramEMDLoss(
            colorspace,
            hist_channels or default_hist,
            bins,
            bandwidth,
            order,
            hue_weight,
            "none",
            backend,
            detach_hue_weight,
        )
        self.mi_space = _ColorChannels(op, "mi_channels", colorspace, mi_channels or default_mi, hue_weight)
        _checks.check_choice(op, "reduction", reduction, _checks.REDUCTIONS)
        self.lambda_hist, self.lambda_mi = float(lambda_hist), float(lambda_mi)
        self.bins, self.bandwidth, self.reduction, self.backend = bins, bandwidth, reduction, backend

    def terms(
        self,
        output: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        source_weight: torch.Tensor | None = None,
        target_weight: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Unweighted per-sample terms: {"hist": mean EMD to target, "mi": mean D_MI to source}, each (B,).

        ``source_weight`` (B, 1, H, W) weights the pixels of source and output (the source repainted), and
        ``target_weight`` those of the target: a pixel of weight 0 (transparent) takes no part in any histogram.
        """
        op = type(self).__name__
        out = self.mi_space.convert(op, "output", output)
        src = self.mi_space.convert(op, "source", source)
        _checks.check_same(op, "source", source, "output", output)
        mi = []
        for i, value_range, periodic in zip(self.mi_space.index, self.mi_space.range, self.mi_space.periodic):
            mi.append(
                mi_distance(
                    out[:, i : i + 1],
                    src[:, i : i + 1],
                    self.bins,
                    value_range,
                    self.bandwidth,
                    "circular" if periodic else "reflect",
                    source_weight,
                    self.backend,
                )[:, 0]
            )
        hist = self.hist._per_channel(output, target, source_weight, target_weight, out)  # out: converted once
        return {"hist": hist.mean(1), "mi": torch.stack(mi, 1).mean(1)}

    def weigh(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The objective from :meth:`terms`: ``lambda_hist * hist + lambda_mi * mi``, per sample (B,)."""
        return self.lambda_hist * terms["hist"] + self.lambda_mi * terms["mi"]

    def forward(self, output: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _reduce(self.weigh(self.terms(output, source, target)), self.reduction)
