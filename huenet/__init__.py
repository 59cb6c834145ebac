"""huenet: fast, exact differentiable histogram, EMD and mutual-information losses (Hue-Net) for PyTorch."""

from . import color, losses
from .dropin import GlobalMutualInformationLoss, RGBuvHistogramLoss, global_mutual_information, rgb_uv_histogram
from .emd import emd, sliced_emd, sliced_histograms
from .histogram import joint_histogram, soft_histogram
from .information import conditional_entropy, joint_entropy, mi_distance, mutual_information

__all__ = [
    "soft_histogram",
    "joint_histogram",
    "emd",
    "sliced_emd",
    "sliced_histograms",
    "mutual_information",
    "joint_entropy",
    "mi_distance",
    "conditional_entropy",
    "GlobalMutualInformationLoss",
    "global_mutual_information",
    "rgb_uv_histogram",
    "RGBuvHistogramLoss",
    "color",
    "losses",
]
__version__ = "0.1.0"
