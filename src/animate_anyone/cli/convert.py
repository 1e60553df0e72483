"""``animate-anyone convert``: public release files (``moore``) or this project's trained networks (``assemble``)
-> a model directory of this project."""

from __future__ import annotations

import sys

SD15_HELP = "Stable Diffusion 1.5: a diffusers folder (vae/, unet/config.json, ...) or an original .safetensors/.ckpt"
VAE_HELP = "VAE folder (sd-vae-ft-mse: config.json + weights); default: the VAE of --sd15"
ENCODER_HELP = "sd-image-variations-diffusers folder (image_encoder/ + feature_extractor/) or its image_encoder/"
NETWORKS_ONLY_NOTE = (
    "note: wrote the three networks only; the pipeline also needs the VAE and the image encoder: "
    "pass --image-encoder and --vae or --sd15 (or add them later with `animate-anyone convert assemble`)"
)
# convert_moore's and assemble's parameters (convert/release.py names them in messages) -> this command's flags:
# here each flag is its parameter's name with dashes
PARAMETERS = ("denoising_unet", "reference_unet", "pose_guider", "motion_module", "unet_config")
PARAMETERS += ("unet_additional_kwargs", "sd15", "vae", "image_encoder", "networks", "out", "overwrite")
FLAGS = {name: "--" + name.replace("_", "-") for name in PARAMETERS}


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
    m.add_argument("--motion-module", help="motion_module.pth, or AnimateDiff's mm_sd_v15_v2.ckpt (same naming)")
    m.add_argument("--unet-config", help="SD-1.5 style unet/config.json (default: --sd15's, else SD-1.5)")
    m.add_argument("--unet-additional-kwargs", help="JSON of Moore's unet_additional_kwargs (default: inference_v2)")
    m.add_argument("--sd15", help=SD15_HELP)
    m.add_argument("--vae", help=VAE_HELP)
    m.add_argument("--image-encoder", help=ENCODER_HELP)
    m.add_argument("--out", "-o", required=True, help="model directory to create")
    m.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    m.set_defaults(run=run_moore)


def _register_assemble(sources) -> None:
    a = sources.add_parser("assemble", help="this project's networks + VAE + image encoder -> complete model directory")
    a.add_argument("--networks", required=True, help="folder with reference_net/, denoising_unet/, pose_guider/")
    a.add_argument("--image-encoder", required=True, help=ENCODER_HELP)
    vae = a.add_mutually_exclusive_group(required=True)
    vae.add_argument("--vae", help="VAE folder (sd-vae-ft-mse: config.json + weights)")
    vae.add_argument("--sd15", help=SD15_HELP + " (for its VAE)")
    a.add_argument("--out", "-o", required=True, help="model directory to create")
    a.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    a.set_defaults(run=run_assemble)


def run_moore(args) -> None:
    from ..convert.release import convert_moore

    out, complete = convert_moore(
        args.out,
        args.denoising_unet,
        args.reference_unet,
        args.pose_guider,
        args.motion_module,
        unet_config=args.unet_config,
        unet_additional_kwargs=args.unet_additional_kwargs,
        sd15=args.sd15,
        vae=args.vae,
        image_encoder=args.image_encoder,
        overwrite=args.overwrite,
        names=FLAGS,
    )
    if not complete:
        print(NETWORKS_ONLY_NOTE, file=sys.stderr)
    print(f"wrote {out}")


def run_assemble(args) -> None:
    from ..convert.release import assemble

    vae, vae_name = (args.vae, FLAGS["vae"]) if args.vae else (args.sd15, FLAGS["sd15"])  # the flag that gave it
    names = {**FLAGS, "vae": vae_name}
    out = assemble(args.out, args.networks, vae, args.image_encoder, overwrite=args.overwrite, names=names)
    print(f"wrote {out}")
