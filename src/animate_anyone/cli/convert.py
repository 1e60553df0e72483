"""``animate-anyone convert``: public release files (``moore``; ``public`` downloads them from the Hugging Face Hub
first) or this project's trained networks (``assemble``) -> a model directory of this project."""

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
PARAMETERS += ("unet_additional_kwargs", "sd15", "vae", "image_encoder", "networks", "out", "overwrite", "cache_dir")
FLAGS = {name: "--" + name.replace("_", "-") for name in PARAMETERS}


def register(subparsers) -> None:
    p = subparsers.add_parser("convert", help="convert public checkpoints into this project's format")
    sources = p.add_subparsers(dest="source", required=True)
    _register_moore(sources)
    _register_public(sources)
    _register_assemble(sources)
    _register_light_decoder(sources)


def _register_moore(sources) -> None:
    m = sources.add_parser("moore", help="Moore-AnimateAnyone release files (+ AnimateDiff motion module)")
    m.add_argument("--denoising-unet", required=True, nargs="+", help="denoising_unet.pth (.pth or .safetensors)")
    m.add_argument("--reference-unet", required=True, help="reference_unet.pth")
    m.add_argument("--pose-guider", required=True, help="pose_guider.pth")
    m.add_argument("--motion-module", help="motion_module.pth, or AnimateDiff's mm_sd_v15_v2.ckpt (same naming)")
    m.add_argument("--unet-config", help="SD-1.5 style unet/config.json (default: --sd15's, else SD-1.5)")
    m.add_argument(
        "--unet-additional-kwargs", help="a JSON file of Moore's unet_additional_kwargs (default: inference_v2's)"
    )
    m.add_argument("--sd15", help=SD15_HELP)
    m.add_argument("--vae", help=VAE_HELP)
    m.add_argument("--image-encoder", help=ENCODER_HELP)
    m.add_argument("--out", "-o", required=True, help="model directory to create")
    m.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    m.set_defaults(run=run_moore)


def _register_public(sources) -> None:
    from ..hub import PUBLIC_SOURCES

    repos = ", ".join(source.repo for source in PUBLIC_SOURCES)
    u = sources.add_parser(
        "public",
        help="download the public weights from the Hugging Face Hub and convert them (convert moore), in one command",
        description=f"Fetches only the files needed from {repos} at the revisions of hub.PUBLIC_SOURCES (a commit "
        "where one could be verified, else main) into the Hugging Face cache "
        "(a rerun downloads nothing again; an interrupted download resumes; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE "
        "apply), then converts them into a complete model directory whose README.md names each source's commit and "
        "license.",
    )
    u.add_argument("--out", "-o", required=True, help="model directory to create")
    u.add_argument("--cache-dir", help="Hugging Face cache to download into (default: HF_HUB_CACHE, else HF_HOME/hub)")
    u.add_argument("--unet-config", help="SD-1.5 style unet/config.json (default: SD-1.5's)")
    u.add_argument(
        "--unet-additional-kwargs", help="a JSON file of Moore's unet_additional_kwargs (default: inference_v2's)"
    )
    u.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    u.set_defaults(run=run_public)


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


def run_public(args) -> None:
    from ..convert.release import convert_public

    out = convert_public(
        args.out,
        cache_dir=args.cache_dir,
        unet_config=args.unet_config,
        unet_additional_kwargs=args.unet_additional_kwargs,
        overwrite=args.overwrite,
        names=FLAGS,
    )
    print(f"wrote {out}")


def run_assemble(args) -> None:
    from ..convert.release import assemble

    vae, vae_name = (args.vae, FLAGS["vae"]) if args.vae else (args.sd15, FLAGS["sd15"])  # the flag that gave it
    names = {**FLAGS, "vae": vae_name}
    out = assemble(args.out, args.networks, vae, args.image_encoder, overwrite=args.overwrite, names=names)
    print(f"wrote {out}")


# convert_light_decoder's parameters (jobs/light_decoder.py names them in messages) -> this sub-command's flags
LIGHT_DECODER_FLAGS = {"taesd": "--taesd", "model": "--model", "overwrite": "--overwrite"}


def _register_light_decoder(sources) -> None:
    d = sources.add_parser(
        "light-decoder",
        help="TAESD's public decoder (SD-1.x latents) -> a model directory's light decoder (decoder=light)",
    )
    d.add_argument(
        "--taesd",
        required=True,
        help="TAESD for SD-1.x: the madebyollin/taesd folder (config.json + diffusion_pytorch_model.safetensors) "
        "or taesd_decoder.pth / .safetensors",
    )
    d.add_argument(
        "--model", required=True, help="model directory (an SD-1.5 VAE); its light_decoder/ is written there"
    )
    d.add_argument("--overwrite", action="store_true", help="replace the model's light decoder")
    d.set_defaults(run=run_light_decoder)


def run_light_decoder(args) -> None:
    from ..jobs.light_decoder import convert_light_decoder

    report = convert_light_decoder(args.taesd, args.model, overwrite=args.overwrite, names=LIGHT_DECODER_FLAGS)
    print(f"wrote {report['light_decoder']} ({report['parameters'] / 1e6:.2f} M parameters, {report['layout']} layout)")
