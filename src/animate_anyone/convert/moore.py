"""Moore-AnimateAnyone release files and AnimateDiff motion modules -> this project's networks.

Name tables (source -> target):

* ``reference_unet``: identical to ReferenceNet (a stock SD-1.5 UNet without ``conv_norm_out``/``conv_out``).
* ``pose_guider``: identical.
* ``denoising_unet`` 2D part: identical to diffusers' SD-1.5 UNet names.
* temporal layers (``motion_module.pth``, AnimateDiff ``mm_sd_v15_v2.ckpt``): ``MOTION_MODULE_RULES``;
  AnimateDiff keeps one positional-encoding table per attention, diffusers one per transformer block: the
  two (identical) tables are merged, and a difference between them is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from ..models.sizes import SIZES, build_networks
from ..weights import load_strict
from .tables import ConversionError, Rule, convert_state_dict, target_shapes

MOTION_MODULE_RULES = (
    Rule(r"\.temporal_transformer\.", "."),
    Rule(r"\.attention_blocks\.(\d+)\.pos_encoder\.pe$", ".pos_embed.pe"),
    Rule(r"\.attention_blocks\.0\.", ".attn1."),
    Rule(r"\.attention_blocks\.1\.", ".attn2."),
    Rule(r"\.norms\.0\.", ".norm1."),
    Rule(r"\.norms\.1\.", ".norm2."),
    Rule(r"\.ff_norm\.", ".norm3."),
)
POSITIONAL_TABLE = r"\.pos_embed\.pe$"

# Moore-AnimateAnyone ``configs/inference/inference_v2.yaml`` -> ``unet_additional_kwargs``: the default of
# ``convert moore --unet-additional-kwargs``.
INFERENCE_V2_TEMPORAL = {
    "use_inflated_groupnorm": True,
    "unet_use_cross_frame_attention": False,
    "unet_use_temporal_attention": False,
    "use_motion_module": True,
    "motion_module_resolutions": [1, 2, 4, 8],
    "motion_module_mid_block": True,
    "motion_module_decoder_only": False,
    "motion_module_type": "Vanilla",
    "motion_module_kwargs": {
        "num_attention_heads": 8,
        "num_transformer_block": 1,
        "attention_block_types": ["Temporal_Self", "Temporal_Self"],
        "temporal_position_encoding": True,
        "temporal_position_encoding_max_len": 32,
        "temporal_attention_dim_div": 1,
    },
}


def sd15_unet_config() -> dict[str, Any]:
    """SD-1.5's ``unet/config.json`` (the default of ``convert moore --unet-config``): the ``sd15`` ReferenceNet
    preset, which is a ``UNet2DConditionModel`` config, with the fields a config file also carries."""
    return dict(
        SIZES["sd15"].networks()["reference_net"],
        out_channels=4,
        center_input_sample=False,
        flip_sin_to_cos=True,
        freq_shift=0,
    )


def is_motion_key(key: str) -> bool:
    return ".motion_modules." in key


def convert_denoising_unet(
    sources: Sequence[Mapping[str, Tensor]], target: Mapping[str, Any], what: str = "denoising UNet"
) -> dict[str, Tensor]:
    """Moore ``denoising_unet`` (2D part, optionally with temporal layers) + ``motion_module`` files ->
    ``AnimateAnyoneUNet`` state dict. ``target``: key -> shape of the model to fill."""
    return convert_state_dict(sources, MOTION_MODULE_RULES, target, what, merge_equal=POSITIONAL_TABLE)


def convert_motion_module(source: Mapping[str, Tensor], target: Mapping[str, Any]) -> dict[str, Tensor]:
    """AnimateDiff / Moore motion-module names -> the temporal-layer subset of ``AnimateAnyoneUNet``."""
    motion_target = {k: v for k, v in target.items() if is_motion_key(k)}
    return convert_state_dict(
        [source], MOTION_MODULE_RULES, motion_target, "motion module", merge_equal=POSITIONAL_TABLE
    )


def convert_reference_unet(source: Mapping[str, Tensor], target: Mapping[str, Any]) -> dict[str, Tensor]:
    return convert_state_dict([source], (), target, "reference UNet")


def convert_pose_guider(source: Mapping[str, Tensor], target: Mapping[str, Any]) -> dict[str, Tensor]:
    return convert_state_dict([source], (), target, "pose guider")


# ---------------------------------------------------------------------------------------------------------
# Architecture: Moore's configuration (SD-1.5 unet/config.json + inference yaml) -> this project's configs
# ---------------------------------------------------------------------------------------------------------

_BLOCKS_2D_TO_MOTION = {
    "CrossAttnDownBlock2D": "CrossAttnDownBlockMotion",
    "DownBlock2D": "DownBlockMotion",
    "CrossAttnUpBlock2D": "CrossAttnUpBlockMotion",
    "UpBlock2D": "UpBlockMotion",
}
_BLOCKS_3D_TO_2D = {name.replace("2D", "3D"): name for name in _BLOCKS_2D_TO_MOTION}


def configs_from_moore(
    unet_config: Mapping[str, Any], unet_additional_kwargs: Mapping[str, Any], pose_guider: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Return ``{"reference_net": ..., "denoising_unet": ..., "pose_guider": ...}`` constructor kwargs
    (ReferenceNet takes ``UNet2DConditionModel``'s, the denoising UNet ``UNetMotionModel``'s).

    ``unet_config``: an SD-1.5-style ``unet/config.json`` (2D or Moore's 3D block names);
    ``unet_additional_kwargs``: Moore's ``unet_additional_kwargs`` (inference yaml). Options this project's
    architecture cannot express raise ``ConversionError``.
    """
    down = [_BLOCKS_3D_TO_2D.get(b, b) for b in unet_config["down_block_types"]]
    up = [_BLOCKS_3D_TO_2D.get(b, b) for b in unet_config["up_block_types"]]
    for b in down + up:
        if b not in _BLOCKS_2D_TO_MOTION:
            raise ConversionError(f"unsupported UNet block type {b!r}")
    heads = unet_config["attention_head_dim"]  # legacy SD naming: the number of heads
    if not isinstance(heads, int):
        raise ConversionError(f"per-block head counts are not supported (attention_head_dim={heads})")
    common = dict(
        sample_size=unet_config.get("sample_size"),
        in_channels=unet_config["in_channels"],
        block_out_channels=tuple(unet_config["block_out_channels"]),
        layers_per_block=unet_config["layers_per_block"],
        downsample_padding=unet_config.get("downsample_padding", 1),
        mid_block_scale_factor=unet_config.get("mid_block_scale_factor", 1),
        act_fn=unet_config.get("act_fn", "silu"),
        norm_num_groups=unet_config["norm_num_groups"],
        norm_eps=unet_config["norm_eps"],
        cross_attention_dim=unet_config["cross_attention_dim"],
    )
    for key, expected in (("flip_sin_to_cos", True), ("freq_shift", 0), ("center_input_sample", False)):
        if unet_config.get(key, expected) != expected:
            raise ConversionError(f"unsupported UNet option {key}={unet_config[key]!r} (expected {expected!r})")

    extra = dict(unet_additional_kwargs)
    mm = dict(extra.get("motion_module_kwargs", {}))
    requirements = {
        "use_inflated_groupnorm": (extra.get("use_inflated_groupnorm"), True),
        "use_motion_module": (extra.get("use_motion_module"), True),
        "unet_use_cross_frame_attention": (bool(extra.get("unet_use_cross_frame_attention")), False),
        "unet_use_temporal_attention": (bool(extra.get("unet_use_temporal_attention")), False),
        "motion_module_decoder_only": (bool(extra.get("motion_module_decoder_only")), False),
        "motion_module_type": (extra.get("motion_module_type"), "Vanilla"),
        "attention_block_types": (list(mm.get("attention_block_types", [])), ["Temporal_Self", "Temporal_Self"]),
        "temporal_position_encoding": (mm.get("temporal_position_encoding"), True),
        "temporal_attention_dim_div": (mm.get("temporal_attention_dim_div", 1), 1),
    }
    for key, (value, expected) in requirements.items():
        if value != expected:
            raise ConversionError(f"unsupported temporal-layer option {key}={value!r} (supported: {expected!r})")
    resolutions = set(extra.get("motion_module_resolutions", []))
    needed = {2**i for i in range(len(down))}
    if not needed <= resolutions:
        raise ConversionError(
            f"motion_module_resolutions={sorted(resolutions)} leaves blocks without temporal layers; "
            f"this architecture needs them at {sorted(needed)}"
        )
    denoising = dict(
        common,
        out_channels=unet_config["out_channels"],
        down_block_types=tuple(_BLOCKS_2D_TO_MOTION[b] for b in down),
        up_block_types=tuple(_BLOCKS_2D_TO_MOTION[b] for b in up),
        num_attention_heads=heads,
        motion_num_attention_heads=mm["num_attention_heads"],
        motion_max_seq_length=mm.get("temporal_position_encoding_max_len", 24),
        temporal_transformer_layers_per_block=mm.get("num_transformer_block", 1),
        temporal_transformer_layers_per_mid_block=mm.get("num_transformer_block", 1),
        use_motion_mid_block=bool(extra.get("motion_module_mid_block", False)),
    )
    reference = dict(common, down_block_types=tuple(down), up_block_types=tuple(up), attention_head_dim=heads)
    guider = dict(
        conditioning_embedding_channels=pose_guider.get("conditioning_embedding_channels", 320),
        conditioning_channels=pose_guider.get("conditioning_channels", 3),
        block_out_channels=tuple(pose_guider.get("block_out_channels", (16, 32, 96, 256))),
    )
    return {"reference_net": reference, "denoising_unet": denoising, "pose_guider": guider}


# ---------------------------------------------------------------------------------------------------------
# Whole release -> networks
# ---------------------------------------------------------------------------------------------------------


def pose_guider_config_from_weights(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """Read channels off a Pose Guider state dict (strides cannot be read from weights: stride 2 assumed)."""
    try:
        channels = [state["conv_in.weight"].shape[0]]
        n_blocks = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
        channels += [state[f"blocks.{i}.weight"].shape[0] for i in range(1, n_blocks, 2)]
        return {
            "conditioning_embedding_channels": state["conv_out.weight"].shape[0],
            "conditioning_channels": state["conv_in.weight"].shape[1],
            "block_out_channels": tuple(channels),
        }
    except KeyError as exc:
        raise ConversionError(f"pose guider weights lack {exc}; not a Pose Guider state dict") from exc


def networks_from_moore(
    denoising_unet: Sequence[Mapping[str, Tensor]],
    reference_unet: Mapping[str, Tensor],
    pose_guider: Mapping[str, Tensor],
    motion_module: Mapping[str, Tensor] | None = None,
    configs: Mapping[str, Mapping[str, Any]] | None = None,
):
    """Build an ``AnimateAnyone`` holding exactly the given weights (strict: nothing missing or unused).

    ``denoising_unet``: one or more state dicts whose union is the denoising UNet (Moore's stage-1
    ``denoising_unet.pth``, possibly already holding temporal layers); ``motion_module``: Moore's
    ``motion_module.pth`` or AnimateDiff's ``mm_sd_v15_v2.ckpt``. ``configs``: constructor kwargs
    (default: the ``sd15`` preset). The networks are built on the meta device and take the tensors as is.
    """
    model = build_networks(dict(configs) if configs is not None else SIZES["sd15"].networks(), device="meta")
    sources = list(denoising_unet) + ([motion_module] if motion_module is not None else [])
    converted = {
        "denoising_unet": convert_denoising_unet(sources, target_shapes(model.denoising_unet)),
        "reference_net": convert_reference_unet(reference_unet, target_shapes(model.reference_net)),
        "pose_guider": convert_pose_guider(pose_guider, target_shapes(model.pose_guider)),
    }
    for name, state in converted.items():
        load_strict(getattr(model, name), state, f"Moore {name}", assign=True)
    return model
