"""``animate-anyone synthetic make | preview``: the synthetic benchmark of 2D articulated characters."""

from __future__ import annotations

from animate_anyone.cli.flags import (
    SAMPLING_FLAGS,
    TRAINER_FLAGS,
    add_overrides_argument,
    add_sampling_arguments,
    add_size_argument,
    add_trainer_arguments,
    retire,
)
from animate_anyone.devices import DEVICE_HELP, DTYPE_HELP

# The lab's parameters (make_dataset, predict_split, measure_split, the small trainers and SmallLoop name them in
# messages) -> the flags of these commands; a word means one thing per command: the trainers' steps are optimizer
# steps (--max-steps), predict's denoising steps (--steps).
FLAGS = {
    "out": "--out",
    "overwrite": "--overwrite",
    "decoder": "--decoder",
    "fresh_dir": "--fresh",
    "device": "--device",
    "dtype": "--dtype",
}
TRAINING_FLAGS = {**FLAGS, **TRAINER_FLAGS}  # synthetic autoencoder, synthetic oracle
PREDICT_FLAGS = {**FLAGS, **SAMPLING_FLAGS}  # synthetic predict


def register(subparsers) -> None:
    from . import benchmark_defaults

    p = subparsers.add_parser("synthetic", help="generate the synthetic benchmark (2D characters, exact keypoints)")
    jobs = p.add_subparsers(dest="job", required=True)

    mk = jobs.add_parser(
        "make",
        help="write train / heldout_character / heldout_motion dataset directories",
        description="Render procedurally generated characters and motions into OUT/<split>/ in the "
        "training data format (manifest.jsonl, videos, poses/*.npz with exact keypoints), plus "
        "references/, characters.json, motions.json, clips.json. Rerunning with the same settings "
        "resumes: clips already written are kept.",
    )
    mk.add_argument("--out", "-o", required=True, help="output folder")
    mk.add_argument("--clips", type=int, required=True, help="clips per split (train: also the size of the train pool)")
    mk.add_argument("--heldout-clips", type=int, help="clips of each heldout split (default: --clips)")
    add_size_argument(mk, default="128", note="of every clip")
    mk.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    mk.add_argument("--fps", type=float, default=12.0, help="frame rate (default 12)")
    mk.add_argument("--seed", type=int, default=0, help="seed of everything (default 0)")
    mk.add_argument(
        "--splits",
        default="train,heldout_character,heldout_motion",
        help="comma-separated splits; the world splits long, cross_body_small and cross_body_large are made only "
        "when named here (with masks/, and driver_poses/ + reference_poses/ for cross-body)",
    )
    mk.add_argument(
        "--long-frames", type=int, default=240, help="frames of a long clip (default 240, >= 10 x --frames)"
    )
    mk.add_argument("--png", action="store_true", help="videos as folders of PNG frames (exact) instead of mp4")
    mk.add_argument("--pose-videos", action="store_true", help="also write pose_images/<id>.mp4 (pose.draw)")
    mk.add_argument("--overwrite", action="store_true", help="replace a dataset made with other settings")
    mk.add_argument("--quiet", action="store_true", help="no progress bar")
    mk.set_defaults(run=run_make)

    pv = jobs.add_parser("preview", help="write a contact sheet: reference, frames and pose images per character")
    pv.add_argument("--out", "-o", required=True, help="image to write (.png)")
    pv.add_argument("--seed", type=int, default=0, help="seed of the drawn characters (default 0)")
    pv.add_argument("--characters", type=int, default=4, help="rows (default 4)")
    pv.add_argument("--frames", type=int, default=4, help="frames per row (default 4)")
    add_size_argument(pv, default="128", square=True, note="of each tile")
    pv.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    pv.set_defaults(run=run_preview)

    pr = jobs.add_parser(
        "predict",
        help="animate every clip of a split with a model (for evaluate)",
        description="Animate each clip of SPLIT (references/<id>.png, skeletons drawn from the exact "
        "keypoints) and write OUT/<id>/ PNG frames; score with: animate-anyone evaluate --pred OUT "
        "--gt SPLIT/videos --pose-dir SPLIT/poses. Existing clip folders are kept (resumable). OUT/predict.json "
        "records the model (and its fingerprint) and the resolved sampling settings; evaluate copies it into its "
        "results, and a rerun with other settings is refused unless --overwrite.",
    )
    who = pr.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="model directory")
    who.add_argument("--copy-reference", action="store_true", help="the baseline that repeats the reference image")
    who.add_argument(
        "--vae-roundtrip",
        metavar="MODEL",
        help="the ceiling of a model directory's VAE: its encode + decode of the true frames instead of an animation",
    )
    pr.add_argument("--data", required=True, help="a split folder of a synthetic dataset (e.g. DIR/heldout_character)")
    pr.add_argument("--out", "-o", required=True, help="folder for the predictions")
    pr.add_argument("--seed", type=int, default=0, help="clip k uses seed + k")
    pr.add_argument(
        "--driver",
        default="truth",
        choices=["truth", "raw", "aligned"],
        help="cross-body splits: drive with the truth's skeleton, the driver's as extracted, or the driver's "
        "retargeted onto the reference (pose align)",
    )
    pr.add_argument(
        "--chunk", type=int, help="animate each clip as fresh short clips of this many frames, concatenated"
    )
    pr.add_argument(
        "--decoder",
        default="vae",
        choices=("vae", "light"),
        help="vae (default) or light: the model's light decoder (train light-decoder)",
    )
    pr.add_argument("--device", default="auto", help=DEVICE_HELP)
    pr.add_argument("--dtype", default="auto", help=DTYPE_HELP)
    pr.add_argument(
        "--overwrite", action="store_true", help="redo clips already predicted (also those made with other settings)"
    )
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    add_sampling_arguments(pr, benchmark_defaults())
    retire(
        pr, "--sampling", "give the sampling settings as flags or key=value after the options, e.g. cache_interval=1"
    )
    add_overrides_argument(pr, "sampling settings (without a preset: the benchmark's, 20 steps at guidance 2)")
    pr.set_defaults(run=run_predict)

    ms = jobs.add_parser(
        "measure",
        help="the world metrics (long videos, background, body shape) of predictions on a world split",
        description="Score OUT of synthetic predict on a world split with the metrics only the world can "
        "measure exactly (animate_anyone_lab.world_metrics): window_gap and drift_slope (with --fresh, a prediction "
        "folder made with --chunk 24), seam_ratio, colour drift, background change and PSNR inside the static mask, "
        "and leakage of the driver's proportions (cross-body splits). Writes a JSON file.",
    )
    ms.add_argument("--data", required=True, help="a world split folder (e.g. DIR/long)")
    ms.add_argument("--pred", required=True, help="prediction folder (or the split's videos/ for the truth)")
    ms.add_argument("--fresh", help="the same clips predicted with --chunk (fresh short clips)")
    ms.add_argument("--out", "-o", required=True, help="JSON file to write")
    ms.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ms.add_argument("--quiet", action="store_true", help="no progress bar")
    ms.set_defaults(run=run_measure)

    rp = jobs.add_parser(
        "report",
        help="the benchmark table (mean ± spread over seeds) from evaluate JSON files",
        description="Each --results entry is VARIANT:SPLIT:FILE (an evaluate --out JSON); entries with "
        "the same variant and split are seeds. Prints a markdown table; --out writes it too.",
    )
    rp.add_argument("--results", nargs="+", required=True, help="VARIANT:SPLIT:FILE ...")
    rp.add_argument("--out", "-o", help="markdown file to write")
    rp.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    rp.set_defaults(run=run_report)

    sh = jobs.add_parser(
        "sheet",
        help="a contact sheet of predictions beside the ground truth (the pictures of docs/benchmark.md)",
        description="Per clip of the split, one row for the ground truth and one per --pred NAME=DIR (a "
        "synthetic predict folder); each row is the clip's reference image, then the chosen frames.",
    )
    sh.add_argument("--data", required=True, help="the split folder (e.g. DIR/heldout_character)")
    sh.add_argument("--pred", nargs="+", required=True, metavar="NAME=DIR", help="prediction folders, in row order")
    sh.add_argument("--out", "-o", required=True, help="image to write (.png)")
    sh.add_argument("--clips", type=int, default=4, help="the split's first N clips (default 4)")
    sh.add_argument("--frames", default="0,8,16", help="frame indices, comma-separated (default 0,8,16)")
    sh.add_argument("--scale", type=int, default=2, help="nearest-neighbour upscaling of each tile (default 2)")
    sh.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    sh.set_defaults(run=run_sheet)

    ae = jobs.add_parser(
        "autoencoder",
        help="train the miniature model's small VAE on synthetic frames",
        description="Train a small AutoencoderKL (4x downsampling, 8 latent channels) on every frame "
        "of the given datasets and save it as a diffusers folder (for init-model --vae).",
    )
    ae.add_argument("--data", required=True, nargs="+", help="dataset folder(s) with manifest.jsonl (e.g. DIR/train)")
    ae.add_argument("--out", "-o", required=True, help="folder to write the VAE to")
    add_size_argument(ae, default="64", square=True, note="of the training frames")
    add_trainer_arguments(ae, steps=6000, checkpoints="OUT.checkpoints")
    ae.add_argument("--batch-size", type=int, default=8, help="frames per step (default 8)")
    ae.add_argument(
        "--lr", type=float, default=5e-4, help="peak learning rate of the one-cycle schedule (default 5e-4)"
    )
    ae.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches (default 0)")
    ae.add_argument("--init", help="continue training this VAE (a diffusers folder) instead of a fresh one")
    ae.add_argument(
        "--decoder-only",
        action="store_true",
        help="with --init: train only the decoder; the latents stay the same, so models trained on them can use it",
    )
    ae.add_argument(
        "--perceptual-weight",
        type=float,
        default=0.0,
        help="weight of an LPIPS loss beside L1 + MSE (default 0: off; the public SD VAEs used 1)",
    )
    ae.add_argument(
        "--perceptual-net",
        choices=["vgg", "alex"],
        default="vgg",
        help="LPIPS backbone of the perceptual loss (default vgg; the benchmark scores with alex)",
    )
    ae.add_argument(
        "--adversarial-weight",
        type=float,
        default=0.0,
        help="weight of a patch adversarial loss, scaled by the gradient ratio (default 0: off; SD's VAEs used 0.5)",
    )
    ae.add_argument(
        "--adversarial-start",
        type=int,
        default=500,
        help="step from which the adversarial loss reaches the VAE; the discriminator trains from step 0 (default 500)",
    )
    ae.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ae.add_argument("--quiet", action="store_true", help="no progress bar")
    ae.set_defaults(run=run_autoencoder)

    oc = jobs.add_parser(
        "oracle",
        help="train the keypoint regressor that scores pose accuracy on synthetic frames",
        description="Train a small keypoint regressor on the frames and exact keypoints of the given "
        "datasets (pose.regressor) and save it as a folder for evaluate --pose-backend regressor "
        "--pose-model OUT. With --heldout, print its PCK on those true frames: the ceiling of the measure.",
    )
    oc.add_argument("--data", required=True, nargs="+", help="dataset folder(s) with manifest.jsonl and poses/")
    oc.add_argument(
        "--heldout", nargs="*", default=[], help="dataset folder(s) to report PCK on (e.g. DIR/heldout_character)"
    )
    oc.add_argument("--out", "-o", required=True, help="folder to write the regressor to")
    add_size_argument(oc, default="64", square=True, note="of the regressor's input")
    add_trainer_arguments(oc, steps=3000, checkpoints="OUT.checkpoints")
    oc.add_argument("--batch-size", type=int, default=64, help="frames per step (default 64)")
    oc.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule")
    oc.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches (default 0)")
    oc.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    oc.add_argument("--quiet", action="store_true", help="no progress bar")
    oc.set_defaults(run=run_oracle)


def run_make(args) -> None:
    from animate_anyone_lab.dataset import make_dataset
    from animate_anyone_lab.splits import ALL_SPLITS

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    if not splits or set(splits) - set(ALL_SPLITS):
        raise ValueError(f"--splits must name some of {', '.join(ALL_SPLITS)}, got {args.splits!r}")
    if args.clips < 1 or (args.heldout_clips is not None and args.heldout_clips < 1):
        raise ValueError(f"--clips and --heldout-clips must be >= 1, got {args.clips} and {args.heldout_clips}")
    heldout = args.clips if args.heldout_clips is None else args.heldout_clips
    counts = {s: (args.clips if s == "train" else heldout) for s in splits}
    out = make_dataset(
        args.out,
        counts,
        size=args.size,
        frames=args.frames,
        fps=args.fps,
        seed=args.seed,
        splits=splits,
        video="png" if args.png else "mp4",
        pose_videos=args.pose_videos,
        overwrite=args.overwrite,
        progress=not args.quiet,
        train_pool=args.clips,
        long_frames=args.long_frames,
        names=FLAGS,
    )
    long = f" ({args.long_frames} in long clips)" if "long" in splits else ""
    print(
        f"wrote {out}: {', '.join(f'{s}/ ({counts[s]} clips)' for s in splits)}, "
        f"{args.frames} frames at {args.fps:g} fps{long}, {args.size[0]}x{args.size[1]}"
    )


def run_preview(args) -> None:
    from animate_anyone.atomic import refuse_existing
    from animate_anyone_lab.dataset import preview

    refuse_existing(args.out, args.overwrite, FLAGS["out"])

    path = preview(args.out, args.seed, characters=args.characters, frames=args.frames, size=args.size)
    print(f"wrote {path} ({args.characters} characters: reference | {args.frames} frames | their poses)")


def run_sheet(args) -> None:
    from animate_anyone.atomic import refuse_existing
    from animate_anyone_lab.benchmark import results_sheet

    refuse_existing(args.out, args.overwrite, FLAGS["out"])
    predictions = {}
    for entry in args.pred:
        name, sep, folder = entry.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--pred entries are NAME=DIR, got {entry!r}")
        predictions[name] = folder
    try:
        frames = tuple(int(f) for f in args.frames.split(","))
    except ValueError:
        raise ValueError(f"--frames takes comma-separated frame indices (e.g. 0,8,16), got {args.frames!r}") from None
    if args.clips < 1 or args.scale < 1:
        raise ValueError(f"--clips and --scale must be >= 1, got {args.clips} and {args.scale}")
    path = results_sheet(args.data, predictions, args.out, clips=args.clips, frames=frames, scale=args.scale)
    print(f"wrote {path} ({args.clips} clips: ground truth, {', '.join(predictions)}; frames {args.frames})")


def run_autoencoder(args) -> None:
    from animate_anyone.cli.flags import renamed
    from animate_anyone.config import SettingError
    from animate_anyone_lab.autoencoder import train_and_report

    try:
        out, report = train_and_report(
            args.data,
            args.out,
            size=args.size,
            steps=args.max_steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            init=args.init,
            decoder_only=args.decoder_only,
            overwrite=args.overwrite,
            progress=not args.quiet,
            perceptual_weight=args.perceptual_weight,
            perceptual_net=args.perceptual_net,
            adversarial_weight=args.adversarial_weight,
            adversarial_start=args.adversarial_start,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            names=TRAINING_FLAGS,
        )
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, TRAINING_FLAGS) from None
    print(f"wrote {out}: {report}")


def run_oracle(args) -> None:
    from animate_anyone.cli.flags import renamed
    from animate_anyone.config import SettingError
    from animate_anyone_lab.oracle import train_and_report

    try:
        out, report = train_and_report(
            args.data,
            args.out,
            args.heldout,
            size=args.size,
            steps=args.max_steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            overwrite=args.overwrite,
            progress=not args.quiet,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            names=TRAINING_FLAGS,
        )
    except SettingError as error:
        raise renamed(error, TRAINING_FLAGS) from None
    print(f"wrote {out}: {report}")


def run_predict(args) -> None:
    from animate_anyone.cli.flags import renamed, sampling_request
    from animate_anyone.pipelines.settings import SettingError
    from animate_anyone_lab.benchmark import predict_split

    try:
        out = predict_split(
            args.model or args.vae_roundtrip,
            args.data,
            args.out,
            sampling=sampling_request(args),
            seed=args.seed,
            device=args.device,
            dtype=args.dtype,
            overwrite=args.overwrite,
            progress=not args.quiet,
            driver=args.driver,
            vae_roundtrip=args.vae_roundtrip is not None,
            chunk=args.chunk,
            decoder=args.decoder,
            names=PREDICT_FLAGS,
        )
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, PREDICT_FLAGS) from None
    print(f"wrote predictions to {out}")


def run_measure(args) -> None:
    import json

    from animate_anyone.atomic import refuse_existing, write_text
    from animate_anyone.cli.flags import renamed
    from animate_anyone.config import SettingError
    from animate_anyone_lab.measure import measure_split

    refuse_existing(args.out, args.overwrite, FLAGS["out"])
    try:
        result = measure_split(args.data, args.pred, fresh_dir=args.fresh, progress=not args.quiet)
    except SettingError as error:
        raise renamed(error, FLAGS) from None
    write_text(args.out, json.dumps(result, indent=1) + "\n")
    means = ", ".join(f"{k} {v['mean']:.4g}" for k, v in result["metrics"].items() if v["mean"] is not None)
    print(f"wrote {args.out}: {means}")


def run_report(args) -> None:
    if args.out:
        from animate_anyone.atomic import refuse_existing

        refuse_existing(args.out, args.overwrite, FLAGS["out"])
    from animate_anyone.atomic import write_text
    from animate_anyone_lab.benchmark import markdown_table, summarize

    results: dict = {}
    for entry in args.results:
        parts = entry.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"--results entries are VARIANT:SPLIT:FILE, got {entry!r}")
        results.setdefault(parts[0], {}).setdefault(parts[1], []).append(parts[2])
    table = markdown_table(summarize(results))
    print(table, end="")
    if args.out:
        write_text(args.out, table)
