r"""Test-time refinement of a Hue-Net output: a few steps of the training-free fit, starting from that output.

The network's output becomes the *source* of :func:`huenet.recolor.fit`, whose colour table starts at the
closed-form MKL map from the output's colours to the target's and takes ``steps`` Adam steps on the fit's losses
(the sliced EMD of CIELAB colours, the chroma-weighted hue EMD, the palette and gain terms); zero steps give the
network's output back. The network supplies the structure; the fit pulls its colour histograms the rest of the way
to the target's, which a generator trained for a few CPU minutes does not do on its own (docs/training.md, "Real
photos").

Only the hue and saturation of the fitted result are kept; the value channel (HSV V, the brightness structure
that D_MI and V-SSIM are about) stays the network's. A fit run from an output that is already recoloured moves
V as well, and on real-photo crops that cost more structure than Reinhard (V-SSIM 0.56 against 0.74) for the
same hue gain. Being a LUT, the refinement is one global colour mapping: it adds or removes no spatial detail.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> output, target = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g) * 0.5
    >>> refine(output, target, steps=3).shape
    torch.Size([2, 3, 16, 16])
    >>> bool(torch.equal(refine(output, target, steps=0), output))
    True
"""

from __future__ import annotations

import torch

from ... import recolor
from ...color import hsv_to_rgb, rgb_to_hsv

# Default steps of refinement in transfer and evaluate; docs/training.md has how it was chosen.
REFINE_STEPS = 20


def check_steps(op: str, steps: object) -> int:
    """``steps`` as an int >= 0, or a ValueError naming ``op`` and what was given."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"{op}: `steps` must be an int >= 0; got {steps!r}")
    return steps


def refine(output: torch.Tensor, target: torch.Tensor, steps: int = REFINE_STEPS) -> torch.Tensor:
    """Refine each output towards its target's colours; ``steps`` = 0 returns ``output`` itself.

    Args:
        output: (B, 3, H, W) or (3, H, W) RGB in [0, 1], the network's output.
        target: the target image(s) whose colours to take, the same form (a batch pairs output i with target i);
            the sizes may differ from ``output``'s.
        steps: Adam steps of :func:`huenet.recolor.fit` (its other settings are its defaults).

    Returns:
        The refined image(s), the shape of ``output``, in [0, 1].
    """
    check_steps("refine", steps)
    if steps == 0:
        return output
    batch, targets = (output, target) if output.ndim == 4 else (output[None], target[None])
    if len(batch) != len(targets):
        raise ValueError(f"refine: `target` must be a batch of {len(batch)} images, like `output`; got {len(targets)}")
    # clamp: trilinear interpolation can round a hair past 1.
    fitted = torch.stack([recolor.fit(o, t, steps=steps)(o) for o, t in zip(batch, targets)]).clamp(0, 1)
    hsv = torch.cat([rgb_to_hsv(fitted)[:, :2], batch.amax(1, keepdim=True)], 1)  # the fit's H, S; G's V
    refined = hsv_to_rgb(hsv).clamp(0, 1).to(output.dtype)
    return refined if output.ndim == 4 else refined[0]
