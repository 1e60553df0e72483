"""``animate-anyone pose extract | render | align``: the pose toolchain on files."""

from __future__ import annotations

# The pose jobs' parameters (pose/sequences.py, pose/track.py name them in messages) -> this command's flags.
FLAGS = {
    "out": "--out",
    "overlay_out": "--overlay",
    "video": "--video",
    "fps": "--fps",
    "size": "--size",
    "smoothing": "--smoothing",
    "person": "--person",
}


def register(subparsers) -> None:
    from ..pose.track import PERSON_HELP
    from .flags import add_size_argument

    p = subparsers.add_parser("pose", help="extract, render and retarget pose keypoints")
    jobs = p.add_subparsers(dest="job", required=True)

    e = jobs.add_parser("extract", help="keypoints of a video, image folder or image -> .npz/.json")
    e.add_argument("source", help="video, folder of images, or image")
    e.add_argument("-o", "--out", required=True, help="keypoint file to write (.npz or .json)")
    _backend_arguments(e)
    e.add_argument(
        "--max-gap", type=int, default=8, help="interpolate missing detections over at most this many frames"
    )
    e.add_argument("--person", help=PERSON_HELP)
    e.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    e.set_defaults(run=run_extract)

    r = jobs.add_parser("render", help="keypoint file -> OpenPose-style skeleton video (.mp4, .gif, PNG folder)")
    r.add_argument("poses", help="keypoint file (.npz or .json)")
    r.add_argument("-o", "--out", required=True, help="skeleton video to write: .mp4, .gif, or a folder of PNG frames")
    add_size_argument(r, note="default: the keypoints' image size")
    r.add_argument("--fps", type=float, help="default: the keypoint file's")
    r.add_argument("--no-hands", action="store_true", help="leave the hand keypoints out")
    r.add_argument("--no-face", action="store_true", help="leave the face keypoints out")
    r.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    r.set_defaults(run=run_render)

    a = jobs.add_parser("align", help="retarget a driver's keypoints to a reference image's body")
    a.add_argument("driver", help="driver keypoint file (.npz or .json)")
    a.add_argument("--reference", required=True, help="reference image of the character")
    a.add_argument("-o", "--out", required=True, help="aligned keypoint file to write")
    a.add_argument("--overlay", help="also write a before/after debug video here")
    a.add_argument("--video", help="the driver's video: the overlay's 'before' panel is drawn over it")
    a.add_argument("--smoothing", type=float, default=1.0, help="temporal smoothing, Gaussian sigma in frames (0: off)")
    _backend_arguments(a)
    a.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    a.set_defaults(run=run_align)


def _backend_arguments(parser) -> None:
    parser.add_argument(
        "--backend", default="mediapipe", choices=["mediapipe", "dwpose"], help="default mediapipe (offline)"
    )
    parser.add_argument("--dwpose-det", help="DWPose detector ONNX (default $ANIMATE_ANYONE_DWPOSE_DET)")
    parser.add_argument("--dwpose-pose", help="DWPose pose ONNX (default $ANIMATE_ANYONE_DWPOSE_POSE)")


def run_extract(args) -> None:
    from ..config import SettingError
    from ..pose.sequences import check_keypoint_output, extract_file
    from .flags import renamed

    if args.max_gap < 0:
        raise ValueError(f"--max-gap {args.max_gap}: must be 0 or more frames")
    check_keypoint_output(args.out, FLAGS["out"], args.overwrite)  # in this command's words, before the job's own check
    try:
        out, report = extract_file(
            args.source,
            args.out,
            backend=args.backend,
            det_model=args.dwpose_det,
            pose_model=args.dwpose_pose,
            max_gap=args.max_gap,
            person=args.person,
            overwrite=args.overwrite,
        )
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, FLAGS) from None
    print(f"wrote {out}; {report}")


def run_render(args) -> None:
    from ..config import SettingError
    from ..media import check_video_output
    from ..pose.sequences import render_file
    from .flags import renamed

    check_video_output(args.out, FLAGS["out"], args.overwrite)
    try:
        out = render_file(
            args.poses,
            args.out,
            size=args.size,
            fps=args.fps,
            hands=not args.no_hands,
            face=not args.no_face,
            overwrite=args.overwrite,
        )
    except SettingError as error:
        raise renamed(error, FLAGS) from None
    print(f"wrote {out}")


def run_align(args) -> None:
    from ..config import SettingError
    from ..media import check_video_output
    from ..pose.sequences import align_file, check_keypoint_output
    from .flags import renamed

    check_keypoint_output(args.out, FLAGS["out"], args.overwrite)
    if args.overlay is not None:
        check_video_output(args.overlay, FLAGS["overlay_out"], args.overwrite)
    try:
        out = align_file(
            args.reference,
            args.driver,
            args.out,
            backend=args.backend,
            smoothing=args.smoothing,
            overlay_out=args.overlay,
            video=args.video,
            det_model=args.dwpose_det,
            pose_model=args.dwpose_pose,
            overwrite=args.overwrite,
        )
    except SettingError as error:
        raise renamed(error, FLAGS) from None
    print(f"wrote {out}" + (f" and {args.overlay}" if args.overlay else ""))
