"""``animate-anyone batch JOBS.jsonl --out DIR``: many animations in one run (see ``jobs/batch.py``)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "batch",
        help="run a file of animation jobs (resumable; sharded across torchrun/accelerate processes)",
        description="One JSON object per line: reference, pose or driver, optional id and truth, and any "
        "animate setting (steps, seed, preset, model, ...). Outputs go to DIR/videos/<id>.mp4; finished jobs are "
        "skipped when rerun; a failing job is recorded in DIR/summary.json and the others go on.",
    )
    p.add_argument("jobs", help="JOBS.jsonl")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--config", help="YAML instance of AnimateConfig: the settings every job starts from")
    p.add_argument("--model", help="model directory for jobs that name none")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="AnimateConfig overrides for every job")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..config import load_config
    from ..jobs.animate_config import AnimateConfig
    from ..jobs.batch import run_batch

    values = {"model": args.model} if args.model else {}
    config = load_config(AnimateConfig, args.config, args.overrides, values)
    summary = run_batch(args.jobs, args.out, config, progress=not args.quiet)
    counts = summary["counts"]
    print(
        f"rank {summary['rank']}/{summary['world_size']}: {summary['jobs']} jobs: {counts['done']} done, "
        f"{counts['skipped']} skipped (already there), {counts['failed']} failed; see {args.out}/summary.json"
    )
    return 1 if counts["failed"] else 0
