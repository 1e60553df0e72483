"""``animate-anyone synthetic make | preview``: the synthetic benchmark of 2D articulated characters."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("synthetic", help="generate the synthetic benchmark (2D characters, exact keypoints)")
    jobs = p.add_subparsers(dest="job", required=True)

    mk = jobs.add_parser("make", help="write train / heldout_character / heldout_motion dataset directories",
                         description="Render procedurally generated characters and motions into OUT/<split>/ in the "
                         "training data format (manifest.jsonl, videos, poses/*.npz with exact keypoints), plus "
                         "references/, characters.json, motions.json, clips.json. Rerunning with the same settings "
                         "resumes: clips already written are kept.")  # fmt: skip
    mk.add_argument("--out", "-o", required=True, help="output folder")
    mk.add_argument("--clips", type=int, required=True, help="clips per split")
    mk.add_argument("--size", type=_size, default=(128, 128), help="SIZE or WIDTHxHEIGHT in pixels (default 128)")
    mk.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    mk.add_argument("--fps", type=float, default=12.0, help="frame rate (default 12)")
    mk.add_argument("--seed", type=int, default=0, help="seed of everything (default 0)")
    mk.add_argument("--splits", default="train,heldout_character,heldout_motion", help="comma-separated splits")
    mk.add_argument("--png", action="store_true", help="videos as folders of PNG frames (exact) instead of mp4")
    mk.add_argument("--pose-videos", action="store_true", help="also write pose_images/<id>.mp4 (pose.draw)")
    mk.add_argument("--overwrite", action="store_true", help="replace a dataset made with other settings")
    mk.add_argument("--quiet", action="store_true", help="no progress bar")
    mk.set_defaults(run=run_make)

    pv = jobs.add_parser("preview", help="write a contact sheet: reference, frames and pose images per character")
    pv.add_argument("--out", "-o", required=True, help="image to write (.png)")
    pv.add_argument("--seed", type=int, default=0)
    pv.add_argument("--characters", type=int, default=4, help="rows (default 4)")
    pv.add_argument("--frames", type=int, default=4, help="frames per row (default 4)")
    pv.add_argument("--size", type=int, default=128, help="tile size in pixels (default 128)")
    pv.set_defaults(run=run_preview)


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 16:
        raise argparse.ArgumentTypeError(f"expected SIZE or WIDTHxHEIGHT (>= 16), got {text!r}")
    return (parts[0], parts[-1])


def run_make(args) -> None:
    from ..synthetic import make_dataset
    from ..synthetic.splits import SPLITS

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    if not splits or set(splits) - set(SPLITS):
        raise ValueError(f"--splits must name some of {', '.join(SPLITS)}, got {args.splits!r}")
    if args.clips < 1:
        raise ValueError(f"--clips must be >= 1, got {args.clips}")
    out = make_dataset(args.out, args.clips, size=args.size, frames=args.frames, fps=args.fps, seed=args.seed,
                       splits=splits, video="png" if args.png else "mp4", pose_videos=args.pose_videos,
                       overwrite=args.overwrite, progress=not args.quiet)  # fmt: skip
    print(f"wrote {out}: {', '.join(f'{s}/ ({args.clips} clips)' for s in splits)}, "
          f"{args.frames} frames at {args.fps:g} fps, {args.size[0]}x{args.size[1]}")


def run_preview(args) -> None:
    from ..synthetic import preview

    path = preview(args.out, args.seed, characters=args.characters, frames=args.frames, size=args.size)
    print(f"wrote {path} ({args.characters} characters: reference | {args.frames} frames | their poses)")
