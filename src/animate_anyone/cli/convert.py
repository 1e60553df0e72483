"""``animate-anyone convert``: public release files (``moore``) or this project's trained networks (``assemble``)
-> a model directory of this project."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SD15_HELP = "Stable Diffusion 1.5: a diffusers folder (vae/, unet/config.json, ...) or an original .safetensors/.ckpt"
VAE_HELP = "VAE folder (sd-vae-ft-mse: config.json + weights); default: the VAE of --sd15"
ENCODER_HELP = "sd-image-variations-diffusers folder (image_encoder/ + feature_extractor/) or its image_encoder/"
NETWORKS_ONLY_NOTE = (
    "note: wrote the three networks only; the pipeline also needs the VAE and the image encoder: "
    "pass --image-encoder and --vae or --sd15 (or add them later with `animate-anyone convert assemble`)"
)


def register(subparsers) -> None:
    p = subparsers.add_parser("convert", help="convert public checkpoints into this project's format")
    sources = p.add_subparsers(dest="source", required=True)
    _register_moore(sources)
    _register_assemble(sources)


def _register_moore(sources) -> None:
    m = sources.add_parser("moore", help="Moore-AnimateAnyone release files (+ AnimateDiff motion module)")
    m.add_argument("--denoising-unet", required=True, nargs="+", help="denoising_unet.pth (.pth or .safetensors)")
    m.add_argument("--reference-unet", required=True, help="reference_unet.pth")
    m.add_argument("--pose-guider", required=True, help="pose_guider.pth")
    m.add_argument(
        "--motion-module", help="motion_module.pth, or AnimateDiff's mm_sd_v15_v2.ckpt (same naming)"
    )
    m.add_argument("--unet-config", help="SD-1.5 style unet/config.json (default: --sd15's, else SD-1.5)")
    m.add_argument("--unet-additional-kwargs", help="JSON of Moore's unet_additional_kwargs (default: inference_v2)")
    m.add_argument("--sd15", help=SD15_HELP)
    m.add_argument("--vae", help=VAE_HELP)
    m.add_argument("--image-encoder", help=ENCODER_HELP)
    m.add_argument("--out", required=True, help="model directory to create")
    m.add_argument("--overwrite", action="store_true")
    m.set_defaults(run=run_moore)


def _register_assemble(sources) -> None:
    a = sources.add_parser("assemble", help="this project's networks + VAE + image encoder -> complete model directory")
    a.add_argument("--networks", required=True, help="folder with reference_net/, denoising_unet/, pose_guider/")
    a.add_argument("--image-encoder", required=True, help=ENCODER_HELP)
    vae = a.add_mutually_exclusive_group(required=True)
    vae.add_argument("--vae", help="VAE folder (sd-vae-ft-mse: config.json + weights)")
    vae.add_argument("--sd15", help=SD15_HELP + " (for its VAE)")
    a.add_argument("--out", required=True, help="model directory to create")
    a.add_argument("--overwrite", action="store_true")
    a.set_defaults(run=run_assemble)


def _read_json(path: str | None, default):
    if path is None:
        return default
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    return json.loads(p.read_text())


def _moore_unet_config(args) -> tuple[dict, str]:
    """The SD-1.5 style UNet config: --unet-config, else --sd15's unet/config.json, else SD-1.5's."""
    from ..convert.components import unet_config_from_sd15
    from ..models.specs import SD15_UNET

    if args.unet_config is not None:
        return _read_json(args.unet_config, None), args.unet_config
    from_sd15 = unet_config_from_sd15(args.sd15) if args.sd15 else None
    if from_sd15 is not None:
        return from_sd15, str(Path(args.sd15) / "unet" / "config.json")
    return SD15_UNET, "the default SD-1.5 UNet config"


def _convert_moore_networks(args, unet_config: dict):
    from ..convert.files import load_weights
    from ..convert.moore import configs_from_moore, networks_from_moore, pose_guider_config_from_weights
    from ..models.specs import INFERENCE_V2_TEMPORAL

    pose_guider = load_weights(args.pose_guider)
    configs = configs_from_moore(
        unet_config,
        _read_json(args.unet_additional_kwargs, INFERENCE_V2_TEMPORAL),
        pose_guider_config_from_weights(pose_guider),
    )
    return networks_from_moore(
        denoising_unet=[load_weights(f) for f in args.denoising_unet],
        reference_unet=load_weights(args.reference_unet),
        pose_guider=pose_guider,
        motion_module=load_weights(args.motion_module) if args.motion_module else None,
        configs=configs,
    )


MOORE_PATHS = ("denoising_unet", "reference_unet", "pose_guider", "motion_module", "unet_config",
               "unet_additional_kwargs", "sd15", "vae", "image_encoder")  # fmt: skip
ASSEMBLE_PATHS = ("networks", "image_encoder", "vae", "sd15")


def _given_paths(args, names: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """(flag, path) for the path arguments ``names`` (``nargs="+"`` ones give a pair per path)."""
    pairs = []
    for name in names:
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        pairs += [(flag, v) for v in value] if isinstance(value, list) else [(flag, value)]
    return pairs


def run_moore(args) -> None:
    from ..convert import components as c
    from ..model_dir import NETWORKS, atomic_directory, save_networks, write_model_index

    c.require_paths(_given_paths(args, MOORE_PATHS))
    c.require_new_output(args.out, args.overwrite)
    unet = _moore_unet_config(args)
    vae = args.vae or args.sd15
    complete = args.image_encoder is not None and vae is not None
    if complete:
        c.check_compatible(unet, c.read_vae_config(vae), c.read_image_encoder_config(args.image_encoder))
    model = _convert_moore_networks(args, unet[0])
    if complete:
        c.assemble_model_directory(args.out, model, vae, args.image_encoder, overwrite=args.overwrite)
    else:
        with atomic_directory(args.out, overwrite=args.overwrite) as tmp:
            save_networks(model, tmp)
            write_model_index(tmp, list(NETWORKS))
        print(NETWORKS_ONLY_NOTE, file=sys.stderr)
    print(f"wrote {args.out}")


def run_assemble(args) -> None:
    from ..convert.components import assemble_model_directory, require_paths

    require_paths(_given_paths(args, ASSEMBLE_PATHS))
    vae = args.vae or args.sd15
    assemble_model_directory(args.out, Path(args.networks), vae, args.image_encoder, overwrite=args.overwrite)
    print(f"wrote {args.out}")
