"""The Animate Anyone networks."""

from .animate_anyone import AnimateAnyone
from .denoising_unet import AnimateAnyoneUNet, zero_init_motion_modules
from .pose_guider import PoseGuider
from .reference_attention import ReferenceBank
from .reference_net import ReferenceNet

__all__ = ["AnimateAnyone", "AnimateAnyoneUNet", "PoseGuider", "ReferenceBank", "ReferenceNet", "zero_init_motion_modules"]
