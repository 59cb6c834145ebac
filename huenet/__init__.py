"""huenet: fast, exact differentiable histogram, EMD and mutual-information losses (Hue-Net) for PyTorch."""

from . import color, losses
from .emd import emd
from .histogram import joint_histogram, soft_histogram
from .information import conditional_entropy, joint_entropy, mi_distance, mutual_information
from .registration import GlobalMutualInformationLoss, global_mutual_information
from .rgb_uv import RGBuvHistogramLoss, rgb_uv_histogram

__all__ = [
    "soft_histogram",
    "joint_histogram",
    "emd",
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
