"""The Animate Anyone networks."""

# diffusers' pipeline loader looks a component's base class up in the library named in model_index.json
# ("animate_anyone.models"), so the base class is exported here too.
from diffusers import ModelMixin

from .animate_anyone import NETWORKS, AnimateAnyone
from .denoising_unet import AnimateAnyoneUNet, zero_init_motion_modules
from .light_decoder import LightDecoder
from .pose_guider import PoseGuider
from .reference_attention import ReferenceBank
from .reference_net import ReferenceNet

__all__ = [
    "AnimateAnyone",
    "ModelMixin",
    "AnimateAnyoneUNet",
    "LightDecoder",
    "NETWORKS",
    "PoseGuider",
    "ReferenceBank",
    "ReferenceNet",
    "zero_init_motion_modules",
]
