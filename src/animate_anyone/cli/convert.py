"""``animate-anyone convert moore``: public release files -> a model directory of this project."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("convert", help="convert public checkpoints into this project's format")
    sources = p.add_subparsers(dest="source", required=True)
    m = sources.add_parser("moore", help="Moore-AnimateAnyone release files (+ AnimateDiff motion module)")
    m.add_argument("--denoising-unet", required=True, nargs="+", help="denoising_unet.pth (.pth or .safetensors)")
    m.add_argument("--reference-unet", required=True, help="reference_unet.pth")
    m.add_argument("--pose-guider", required=True, help="pose_guider.pth")
    m.add_argument(
        "--motion-module", help="motion_module.pth, or AnimateDiff's mm_sd_v15_v2.ckpt (same naming)"
    )
    m.add_argument("--unet-config", help="SD-1.5 style unet/config.json (default: SD-1.5)")
    m.add_argument("--unet-additional-kwargs", help="JSON of Moore's unet_additional_kwargs (default: inference_v2)")
    m.add_argument("--out", required=True, help="model directory to create")
    m.add_argument("--overwrite", action="store_true")
    m.set_defaults(run=run_moore)


def _read_json(path: str | None, default):
    if path is None:
        return default
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    return json.loads(p.read_text())


def run_moore(args) -> None:
    from ..convert.files import load_weights
    from ..convert.moore import configs_from_moore, networks_from_moore, pose_guider_config_from_weights
    from ..model_dir import atomic_directory, save_networks, write_model_index
    from ..models.specs import INFERENCE_V2_TEMPORAL, SD15_UNET

    pose_guider = load_weights(args.pose_guider)
    configs = configs_from_moore(
        _read_json(args.unet_config, SD15_UNET),
        _read_json(args.unet_additional_kwargs, INFERENCE_V2_TEMPORAL),
        pose_guider_config_from_weights(pose_guider),
    )
    model = networks_from_moore(
        denoising_unet=[load_weights(f) for f in args.denoising_unet],
        reference_unet=load_weights(args.reference_unet),
        pose_guider=pose_guider,
        motion_module=load_weights(args.motion_module) if args.motion_module else None,
        configs=configs,
    )
    with atomic_directory(args.out, overwrite=args.overwrite) as tmp:
        save_networks(model, tmp)
        write_model_index(tmp, ["reference_net", "denoising_unet", "pose_guider"])
    print(f"wrote {args.out}")
