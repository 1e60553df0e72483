"""``animate-anyone animate``: reference image + pose video -> video of the character."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("animate", help="animate a reference image with a pose sequence")
    p.add_argument("--model", required=True, help="model directory (from `convert moore` or `init-model`)")
    p.add_argument("--reference", required=True, help="reference image of the character (any size or mode)")
    motion = p.add_mutually_exclusive_group(required=True)
    motion.add_argument("--pose", help="rendered skeletons (a video, a folder of images, one image) or a keypoint file (.npz/.json)")
    motion.add_argument("--driver", help="an ordinary video of a person: its pose is extracted, aligned and rendered")
    p.add_argument("--out", required=True, help="output: .mp4 (h264), .gif, or a folder for PNG frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=25, help="denoising steps (default 25)")
    p.add_argument("--guidance", type=float, default=3.5, help="classifier-free guidance scale (default 3.5; <= 1 disables)")
    p.add_argument("--frames", type=int, help="number of frames (default: all pose frames)")
    p.add_argument("--size", help="WIDTHxHEIGHT, multiples of 8 (default: the reference's aspect ratio)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", help="auto (float16 on CUDA, float32 on CPU), float32, float16, bfloat16")
    p.add_argument("--side-by-side", metavar="PATH", help="also write reference | pose | result to PATH")
    p.add_argument("--context-frames", type=int, default=24, help="temporal window length (default 24)")
    p.add_argument("--context-overlap", type=int, default=4, help="overlap between windows (default 4)")
    p.add_argument("--window-mode", default="shifted", choices=["shifted", "moore"], help="long-video window schedule")
    p.add_argument("--scheduler", default="ddim", choices=["ddim", "dpm++", "euler", "unipc"])
    p.add_argument("--fps", type=float, help="output frame rate (default: the pose video's)")
    p.add_argument("--no-align", action="store_true", help="keypoint/driver input: keep the driver's proportions")
    p.add_argument("--pose-backend", default="mediapipe", choices=["mediapipe", "dwpose"], help="pose extractor (default mediapipe, offline)")
    p.add_argument("--dwpose-det", help="DWPose detector ONNX (default $ANIMATE_ANYONE_DWPOSE_DET)")
    p.add_argument("--dwpose-pose", help="DWPose pose ONNX (default $ANIMATE_ANYONE_DWPOSE_POSE)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..animate import PoseOptions, animate

    options = PoseOptions(not args.no_align, args.pose_backend, args.dwpose_det, args.dwpose_pose)
    out = animate(
        args.model, args.reference, args.pose, args.out, driver=args.driver, pose_options=options, seed=args.seed, steps=args.steps, guidance=args.guidance,
        frames=args.frames, size=args.size, device=args.device, dtype=args.dtype, side_by_side=args.side_by_side,
        context_frames=args.context_frames, context_overlap=args.context_overlap, window_mode=args.window_mode,
        scheduler=args.scheduler, fps=args.fps, progress=not args.quiet,
    )  # fmt: skip
    print(f"wrote {out}")
