"""Drop-in losses for the users of neighbouring libraries, on huenet's fused Parzen kernels: MONAI's
``GlobalMutualInformationLoss`` for registration (:mod:`.registration`) and HistoGAN's RGB-uv histogram and
Hellinger loss (:mod:`.rgb_uv`), both on the weighted joint Parzen sums of :mod:`.parzen`."""

from .registration import GlobalMutualInformationLoss, global_mutual_information
from .rgb_uv import RGBuvHistogramLoss, rgb_uv_histogram

__all__ = ["GlobalMutualInformationLoss", "global_mutual_information", "RGBuvHistogramLoss", "rgb_uv_histogram"]
