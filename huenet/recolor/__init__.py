"""Training-free recolouring: a smooth 3D colour LUT fitted against huenet's losses, applied at any size.

- :mod:`.lut`: :class:`ColorLUT` (trilinear application, blending, ``.cube`` files) and :func:`apply_lut`;
- :mod:`.pixels`: the fit's inputs checked and pooled into weighted colours;
- :mod:`.fit`: :func:`fit`, the MKL start refined by the sliced EMD, hue, palette and gain terms.

Example:
    >>> import torch
    >>> source, target = torch.rand(3, 32, 32), torch.rand(3, 24, 40) * 0.5
    >>> fit(source, target, steps=3)(source).shape
    torch.Size([3, 32, 32])
"""

from .fit import DEFAULTS, fit, mkl_matrix
from .lut import ColorLUT, apply_lut, identity_table

__all__ = ["ColorLUT", "DEFAULTS", "apply_lut", "fit", "identity_table", "mkl_matrix"]
