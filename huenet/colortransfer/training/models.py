r"""Hue-Net's networks: a histogram-conditioned U-Net generator, a 70x70 PatchGAN and the GAN losses.

``output = G(source, G.target_statistics(target))``: the generator repaints ``source`` with the colours whose soft,
normalised histograms it is given. Unlike the official code, whose count-embedding table fixes the image size
at 256², the histograms go through a small MLP whose output is tiled over the bottleneck, so one model runs
at any image size.

Example:
    >>> G, D = HueNetGenerator(image_size=64, ngf=8), PatchDiscriminator(ndf=8)
    >>> source, target = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 80, 48)
    >>> out = G(source, G.target_statistics(target))
    >>> out.shape, D(out).shape
    (torch.Size([2, 3, 64, 64]), torch.Size([2, 1, 6, 6]))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...color import hsv_to_rgb, lab_to_rgb, rgb_to_hsv, rgb_to_lab, rgb_to_yuv
from ...histogram import DEFAULT_BACKEND, DEFAULT_BANDWIDTH
from ...losses import DEFAULT_COLORSPACE, HistogramEMDLoss
from ..baselines import lab_moments, match_moments
from ..metrics import hue_histogram

DEFAULT_GAN_MODE = "bce"
GAN_MODES = (DEFAULT_GAN_MODE, "lsgan")
DEFAULT_GLOBAL_MAPPING = "curves"
GLOBAL_MAPPINGS = (DEFAULT_GLOBAL_MAPPING, "none")
#: Bins per channel of the target histograms G is conditioned on.
COND_BINS = 32
# Bins of the hard hue and saturation histograms the global curves are matched on, and the steepest slope a
# curve may have where the source has pixels: unbounded quantile matching stretches a narrow source peak (a blue box)
# over the target's whole spread, which paints noise as a rainbow; Reinhard's affine map never does.
CURVE_BINS = 128
CURVE_MAX_SLOPE = 3.0
# Source values are clamped to [eps, 1 - eps] before the logit: 8-bit black and white (exact 0 and 1) stay
# within reach, at logits of -/+5.5, instead of at -/+inf.
_LOGIT_EPS = 1 / 255


def _check_int(op: str, arg: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{op}: `{arg}` must be an int >= {minimum}; got {value!r}")
    return value


def generator_depth(image_size: int) -> int:
    """Number of stride-2 levels of the U-Net for a training size: the bottleneck is about 4x4 there.

    pix2pix goes down to 1x1 at 256² (8 levels); with the histogram code tiled over the bottleneck a 4x4 one
    loses nothing and keeps some layout, and the depth grows with the size (64 -> 4, 256 -> 6, 512 -> 7).
    """
    return max(3, min(8, int(math.log2(image_size)) - 2))


def init_weights(module: nn.Module) -> None:
    """pix2pix initialisation: conv and linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _up(in_ch: int, out_ch: int, dropout: float) -> nn.Sequential:
    # Bilinear upsampling + 3x3 conv (as the official code) instead of a transposed conv: no checkerboard.
    layers = [
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def matching_curves(
    source_hist: torch.Tensor, target_hist: torch.Tensor, cyclic: bool, max_slope: float = CURVE_MAX_SLOPE
) -> torch.Tensor:
    r"""Slope-limited histogram-matching curves: (M, K) histograms on [0, 1] -> curves (M, K) at the bin centres
    (cyclic: (M, K + 1), the first knot repeated one turn up).

    The curve is :math:`g = F_t^{-1} \circ F_s` (the classical quantile match, which sends the source's
    histogram to the target's), taken at each bin's mid-CDF level. ``cyclic`` (hue): the optimal monotone map
    of the circle (Rabin, Delon and Gousseau), :math:`g = F_t^{-1}((F_s - \theta) \bmod 1)` with
    :math:`\theta` the median of :math:`F_s - F_t`, unwrapped so that it rises by exactly one turn. Then the
    steps between knots are capped at ``max_slope`` where the source has at least a uniform share of pixels,
    and the rise cut off is paid back at the next step with fewer: no narrow range of source values is
    stretched over a wide one (quantile matching would paint a flat blue box's noise as the target's whole
    rainbow), and the curve returns to the matched values after each stretch.
    """
    m, k = source_hist.shape
    zero = source_hist.new_zeros(m, 1)
    cdf_t = torch.cat([zero, target_hist.cumsum(1)], 1).clamp(max=1)
    cdf_s = source_hist.cumsum(1).clamp(max=1)
    level, turns = cdf_s - source_hist / 2, zero
    if cyclic:
        theta = (torch.cat([zero, cdf_s[:, :-1]], 1) - cdf_t[:, :k]).median(1, keepdim=True).values
        turns = (level - theta).floor()
        level = level - theta - turns
    # The target's inverse CDF, interpolated linearly between the edges that bracket each level.
    upper = torch.searchsorted(cdf_t.contiguous(), level.contiguous(), right=True).clamp(1, k)
    c0, c1 = cdf_t.gather(1, upper - 1), cdf_t.gather(1, upper)
    curve = (upper - 1 + ((level - c0) / (c1 - c0).clamp(min=1e-12)).clamp(0, 1)) / k + turns
    curve = _fill_empty(curve, source_hist > 1e-4 / k, cyclic)
    busy = source_hist >= 1 / k
    if cyclic:
        curve = torch.cat([curve, curve[:, :1] + 1], 1)
        busy = busy | busy.roll(-1, 1)
    else:
        busy = busy[:, :-1] | busy[:, 1:]
    steps = curve.diff(dim=1)
    owed, capped = zero, []
    for j in range(steps.shape[1] - 1):
        step = steps[:, j : j + 1]
        keep = torch.where(busy[:, j : j + 1], step.clamp(max=max_slope / k), step + owed)
        owed = torch.where(busy[:, j : j + 1], owed + step - keep, zero)
        capped.append(keep)
    capped.append(steps[:, -1:] + owed)  # the last step pays whatever is still owed
    return curve[:, :1] + torch.cat([zero, torch.cat(capped, 1).cumsum(1)], 1)


def _fill_empty(curve: torch.Tensor, valid: torch.Tensor, cyclic: bool) -> torch.Tensor:
    """Replace the knots of bins without source pixels, whose levels sit on a CDF plateau and so could map to
    either end of a gap in the target, by linear interpolation between the nearest valid knots (around the
    circle if ``cyclic``, where the curve gains one turn per lap)."""
    m, k = curve.shape
    laps = 3 if cyclic else 1
    index = torch.arange(laps * k, device=curve.device).expand(m, -1)
    ok = valid.repeat(1, laps)
    values = torch.cat([curve + lap for lap in range(laps)], 1) if cyclic else curve
    prev = torch.where(ok, index, torch.zeros_like(index)).cummax(1).values
    after = torch.where(ok, index, torch.full_like(index, laps * k - 1)).flip(1).cummin(1).values.flip(1)
    v0, v1 = values.gather(1, prev), values.gather(1, after)
    frac = (index - prev) / (after - prev).clamp(min=1)
    filled = (v0 + (v1 - v0) * frac)[:, (laps // 2) * k : (laps // 2 + 1) * k] - (laps // 2)
    # A row with no valid bin (an empty image) keeps its curve.
    return torch.where(valid.any(1, keepdim=True), filled, curve)


def apply_curves(values: torch.Tensor, curves: torch.Tensor, cyclic: bool) -> torch.Tensor:
    """Evaluate :func:`matching_curves` at values in [0, 1] (a hue in turns if ``cyclic``): (M, N) -> (M, N)."""
    k = curves.shape[1] - 1 if cyclic else curves.shape[1]
    position = (values * k - 0.5) % k if cyclic else (values * k - 0.5).clamp(0, k - 1)
    lo = position.floor().clamp(0, curves.shape[1] - 2)
    frac = position - lo
    lo = lo.long()
    out = curves.gather(1, lo) * (1 - frac) + curves.gather(1, lo + 1) * frac
    return out % 1 if cyclic else out


class HueNetGenerator(nn.Module):
    r"""pix2pix U-Net conditioned on the target's colour histograms through an MLP at the bottleneck.

    - Encoder: ``depth = generator_depth(image_size)`` stride-2 4x4 conv levels, ``ngf * min(2^i, 8)`` channels.
    - Conditioning: the target's histograms (:meth:`target_statistics`: the three channels of ``colorspace``,
      ``cond_bins`` bins each; in HSV the hue is circular and saturation-weighted, as in the loss) go through
      a 2-layer MLP. Its code is tiled over the bottleneck, concatenated and fused by a 3x3 conv; with the
      bottleneck's spatial mean (a summary of the source) it also gives a global colour transform.
    - Decoder: mirrors the encoder (bilinear x2 + 3x3 conv) with skip connections.
    - Output: a full-resolution head sees the decoder's features next to the source and predicts, per pixel,
      an affine colour transform (A, b) of the source's logits, to which the global transform is added:
      ``output = sigmoid(A @ logit(source) + b)``, RGB in (0, 1). It starts at A = I, b = 0: the identity.

    Why not pix2pix's tanh output: Hue-Net has no pixel loss, so a plain U-Net starts from a grey image and
    must rebuild the source's structure through the weak D_MI term while the EMD paints flat colours; on the
    built-in data it had a V-SSIM to the source below 0.1 after a 5-minute CPU run. A colour transform of the
    source keeps the structure from the first step, and a hue change is a product of the source's colour and
    coefficients that depend on the target (a hue rotation is a 3x3 matrix about the grey axis), which a
    concatenation at the bottleneck alone reaches the full-resolution output too slowly to learn; hence the
    global path from the code (cf. HDRNet's local and global affine colour coefficients).

    Inputs of any height and width work: they are reflect-padded to a multiple of ``2^depth`` and the output
    is cropped back.

    Args:
        image_size: the training size; sets the depth (:func:`generator_depth`).
        ngf: channels of the first level (64 in pix2pix).
        cond_bins: bins per channel of the conditioning histograms.
        colorspace: "hsv" or "yuv": the space of the conditioning histograms.
        bandwidth: soft-histogram kernel width, in bins.
        dropout: dropout in the first three decoder levels (pix2pix: 0.5).
        backend: histogram backend, as in :func:`huenet.soft_histogram`.
        global_mapping: "curves" (the global Lab moment match and hue curve, see :meth:`_match_globally`) or
            "none".
        keep_luma: give the output the source's BT.601 luma (colorize: the grey input is the lightness to keep,
            so G only chooses the chroma): each pixel's R, G, B move by the same amount, which changes Y alone
            (U and V do not see it), then are clipped to [0, 1].

    Shape:
        source: (B, 3, H, W) RGB in [0, 1]; hist: (B, 3 * cond_bins). Output: (B, 3, H, W) in [0, 1].
    """

    def __init__(
        self,
        image_size: int = 256,
        ngf: int = 64,
        cond_bins: int = COND_BINS,
        colorspace: str = DEFAULT_COLORSPACE,
        bandwidth: float = DEFAULT_BANDWIDTH,
        dropout: float = 0.0,
        backend: str = DEFAULT_BACKEND,
        global_mapping: str = DEFAULT_GLOBAL_MAPPING,
        keep_luma: bool = False,
    ):
        super().__init__()
        op = "HueNetGenerator"
        _check_int(op, "image_size", image_size, 8)
        _check_int(op, "ngf", ngf, 1)
        _check_int(op, "cond_bins", cond_bins, 2)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{op}: `dropout` must be in [0, 1); got {dropout!r}")
        if colorspace not in ("hsv", "yuv"):
            raise ValueError(f"{op}: `colorspace` must be 'hsv' or 'yuv'; got {colorspace!r}")
        if global_mapping not in GLOBAL_MAPPINGS:
            raise ValueError(f"{op}: `global_mapping` must be one of {GLOBAL_MAPPINGS}; got {global_mapping!r}")
        self.config = dict(
            image_size=image_size,
            ngf=ngf,
            cond_bins=cond_bins,
            colorspace=colorspace,
            bandwidth=bandwidth,
            dropout=dropout,
            backend=backend,
            global_mapping=global_mapping,
            keep_luma=bool(keep_luma),
        )
        self.keep_luma = bool(keep_luma)
        self.global_match = global_mapping == "curves"
        # The conditioning vector: soft histograms of the target for the MLP, then (curves) its Lab moments
        # and its hard hue histogram for the global mapping.
        self.cond_size = 3 * cond_bins + (6 + CURVE_BINS if self.global_match else 0)
        self.depth = generator_depth(image_size)
        self.cond_bins = cond_bins
        self._hist = HistogramEMDLoss(colorspace, colorspace, cond_bins, bandwidth, backend=backend)

        widths = [ngf * min(2**i, 8) for i in range(self.depth)]
        self.down = nn.ModuleList([nn.Sequential(nn.Conv2d(3, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True))])
        for i in range(1, self.depth):
            self.down.append(
                nn.Sequential(
                    nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=False),
                    nn.BatchNorm2d(widths[i]),
                    nn.LeakyReLU(0.2, True),
                )
            )
        bottleneck = widths[-1]
        self.mlp = nn.Sequential(
            nn.Linear(3 * cond_bins, 2 * bottleneck),
            nn.ReLU(True),
            nn.Linear(2 * bottleneck, bottleneck),
            nn.ReLU(True),
        )
        # 12 global affine coefficients, then (curves) how far to follow the L, a, b moment match and the hue curve.
        self.global_coef = nn.Linear(2 * bottleneck, 16 if self.global_match else 12)
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * bottleneck, bottleneck, 3, padding=1, bias=False), nn.BatchNorm2d(bottleneck), nn.ReLU(True)
        )
        # Decoder level i takes level i+1's output concatenated with encoder level i+1's skip (the deepest
        # takes the fused bottleneck alone) and produces encoder level i's width.
        self.up = nn.ModuleList()
        for i in reversed(range(self.depth - 1)):
            in_ch = bottleneck if i == self.depth - 2 else 2 * widths[i + 1]
            self.up.append(_up(in_ch, widths[i], dropout if len(self.up) < 3 else 0.0))
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        # The head sees the source itself at full resolution next to the upsampled features: bilinear
        # upsampling cannot restore single-pixel detail, and colour transfer is mostly a per-pixel mapping.
        self.head = nn.Sequential(
            nn.Conv2d(2 * widths[0] + 3, widths[0], 3, padding=1), nn.ReLU(True), nn.Conv2d(widths[0], 12, 1)
        )
        init_weights(self)
        # Start at the identity transform: A = I (bias), b = 0, no dependence on the features yet.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.global_coef.weight)
        nn.init.zeros_(self.global_coef.bias)
        with torch.no_grad():
            self.head[-1].bias.copy_(torch.cat([torch.eye(3).flatten(), torch.zeros(3)]))
            # The global mapping starts almost fully followed (sigmoid(3) = 0.95); training decides how far.
            self.global_coef.bias[12:] = 3.0

    @torch.no_grad()
    def target_statistics(self, target: torch.Tensor) -> torch.Tensor:
        """The conditioning input for ``target``, (B, 3, H', W') -> (B, cond_size): its soft histograms, and
        with ``global_mapping="curves"`` its Lab moments and hard hue histogram (:func:`huenet.colortransfer.metrics.hue_histogram`)."""
        parts = list(self._hist.histograms(target.float(), "target"))
        if self.global_match:
            parts += [lab_moments(rgb_to_lab(target.float())), hue_histogram(target, CURVE_BINS)]
        return torch.cat(parts, 1)

    def forward(self, source: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        if source.ndim != 4 or source.shape[1] != 3:
            raise ValueError(f"HueNetGenerator: `source` must be of shape (B, 3, H, W); got {tuple(source.shape)}")
        expected = (source.shape[0], self.cond_size)
        if hist.shape != expected:
            raise ValueError(
                f"HueNetGenerator: `hist` must be of shape {expected} (from .target_statistics(target)); "
                f"got {tuple(hist.shape)}"
            )
        h, w = source.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = -h % multiple, -w % multiple
        # Reflect padding needs pad < size; tiny inputs fall back to replicating the border.
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = padded = F.pad(source * 2 - 1, (0, pad_w, 0, pad_h), mode=mode) if pad_h or pad_w else source * 2 - 1

        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        # Histograms sum to 1 over their bins; times the bin count they average 1, a better MLP input scale.
        code = self.mlp(hist[:, : 3 * self.cond_bins].to(x.dtype) * self.cond_bins)
        glob = self.global_coef(torch.cat([code, x.mean((2, 3))], 1))
        x = self.fuse(torch.cat([x, code[:, :, None, None].expand_as(x)], 1))
        for k, layer in enumerate(self.up):
            x = layer(x if k == 0 else torch.cat([x, skips[-1 - k]], 1))
        coef = self.head(torch.cat([self.upsample(torch.cat([x, skips[0]], 1)), padded], 1))[..., :h, :w]
        coef = coef + glob[:, :12, None, None]
        matrix = coef[:, :9].unflatten(1, (3, 3))
        base = (
            self._match_globally(source, hist[:, 3 * self.cond_bins :], glob[:, 12:]) if self.global_match else source
        )
        logits = torch.logit(base, _LOGIT_EPS).to(coef.dtype)
        out = torch.sigmoid(torch.einsum("bijhw,bjhw->bihw", matrix, logits) + coef[:, 9:])
        if self.keep_luma:
            out = (out + rgb_to_yuv(source.to(out.dtype))[:, :1] - rgb_to_yuv(out)[:, :1]).clamp(0, 1)
        return out

    def _match_globally(self, source: torch.Tensor, target_stats: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        """The global mapping, each stage followed a learnt fraction of the way: Reinhard's match of the Lab
        channels' means and deviations, then a rotation-dominant hue curve (:func:`matching_curves`) from the
        result's hue histogram to the target's. V is not touched by the curve, so the structure is kept."""
        follow = torch.sigmoid(strength.float())
        lab = rgb_to_lab(source.float())
        moved = match_moments(lab, lab_moments(lab), target_stats[:, :6].float())
        if self.keep_luma:
            # The output gets the source's lightness back: matching L* to the target's would only push the
            # colours out of gamut at that lightness, to be clipped.
            moved = torch.cat([lab[:, :1], moved[:, 1:]], 1)
        base = lab_to_rgb(lab + follow[:, :3, None, None] * (moved - lab))
        b, _, h, w = source.shape
        hsv = rgb_to_hsv(base)
        hue = hsv[:, 0].flatten(1)
        with torch.no_grad():
            curves = matching_curves(hue_histogram(base, CURVE_BINS), target_stats[:, 6:].float(), cyclic=True)
            # The hue's way along the curve, taken the short way round the circle.
            hue_step = (apply_curves(hue, curves, cyclic=True) - hue + 0.5) % 1 - 0.5
        hue = (hue + follow[:, 3:] * hue_step) % 1
        return hsv_to_rgb(torch.cat([hue.view(b, 1, h, w), hsv[:, 1:]], 1)).to(source.dtype)


class PatchDiscriminator(nn.Module):
    r"""pix2pix's 70x70 PatchGAN: a real/fake logit for each overlapping 70x70 patch (with ``n_layers=3``).

    C(ndf)-C(2ndf)-C(4ndf) with 4x4 stride-2 convs, then C(8ndf) and a 1-channel conv, both 4x4 stride 1.
    For colour transfer it is unconditional (``conditional=False``): it sees one image, the source counting
    as real, as in the official code. ``conditional=True`` concatenates a condition image (the input of a
    paired task) to the image judged.

    Args:
        ndf: channels of the first layer (64 in pix2pix).
        n_layers: stride-2 layers; 3 gives 70x70 receptive fields.
        conditional: take ``(image, condition)``.

    Shape:
        image, condition: (B, 3, H, W) RGB in [0, 1], H, W >= 16 * 2^(n_layers - 3). Output: (B, 1, H', W')
        logits (H' = H / 2^n_layers - 2).
    """

    def __init__(self, ndf: int = 64, n_layers: int = 3, conditional: bool = False):
        super().__init__()
        _check_int("PatchDiscriminator", "ndf", ndf, 1)
        _check_int("PatchDiscriminator", "n_layers", n_layers, 1)
        self.conditional = bool(conditional)
        ch = ndf
        layers = [nn.Conv2d(6 if conditional else 3, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for i in range(1, n_layers + 1):
            prev, ch = ch, ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(prev, ch, 4, stride, 1, bias=False), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, image: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional != (condition is not None):
            raise ValueError(
                "PatchDiscriminator: `condition` must be given exactly when conditional=True; "
                f"conditional={self.conditional}, condition={'given' if condition is not None else None}"
            )
        x = image if condition is None else torch.cat([image, condition], 1)
        return self.net(x * 2 - 1)


class GANLoss(nn.Module):
    r"""Adversarial losses on discriminator logits: "bce" (non-saturating, default) or "lsgan".

    - bce: D minimises :math:`-\log D(real) - \log(1 - D(fake))`, G minimises :math:`-\log D(fake)`
      (BCE with logits; the non-saturating generator loss of Goodfellow et al. and pix2pix).
    - lsgan: D minimises :math:`(D(real) - 1)^2 + D(fake)^2`, G minimises :math:`(D(fake) - 1)^2`.

    The D loss is the sum of its real and fake terms, as in the official code. Logits are cast to float32,
    so the losses are computed in full precision under autocast.

    Example:
        >>> gan = GANLoss("bce")
        >>> logits = torch.zeros(2, 1, 6, 6)
        >>> round(gan.generator(logits).item(), 4), round(gan.discriminator(logits, logits).item(), 4)
        (0.6931, 1.3863)
    """

    def __init__(self, mode: str = "bce"):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"GANLoss: `mode` must be one of {', '.join(map(repr, GAN_MODES))}; got {mode!r}")
        self.mode = mode

    def _loss(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        logits = logits.float()
        label = torch.full_like(logits, 1.0 if real else 0.0)
        if self.mode == "bce":
            return F.binary_cross_entropy_with_logits(logits, label)
        return F.mse_loss(logits, label)

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """The generator's loss: make D call its output real."""
        return self._loss(fake_logits, True)

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss: real -> 1, fake -> 0."""
        return self._loss(real_logits, True) + self._loss(fake_logits, False)
