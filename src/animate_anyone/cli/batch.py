"""``animate-anyone batch JOBS.jsonl --out DIR``: many animations in one run (see ``jobs/batch.py``; on Ray,
``jobs/batch_ray.py``)."""

from __future__ import annotations

RAY_FLAGS = ("address", "workers", "cpus_per_job", "gpus_per_job", "max_attempts")
# The batch functions' parameters (RaySettings' fields, job_file.check_out's out) -> this command's flags
FLAGS = {"out": "--out", **{name: "--" + name.replace("_", "-") for name in RAY_FLAGS}}


def register(subparsers) -> None:
    from .flags import add_overrides_argument, add_sampling_arguments

    p = subparsers.add_parser(
        "batch",
        help="run a file of animation jobs (resumable; on torchrun/accelerate processes or a Ray cluster)",
        description="One JSON object per line: reference, pose or driver, optional id and truth, and any "
        "animate setting (steps, seed, preset, model, ...). Every line and its inputs are checked before the first "
        "job: one bad line refuses the file (every bad line listed, nothing written, exit status 2). Outputs go to "
        "DIR/videos/<id>.mp4; finished jobs are skipped when rerun; a failing job is recorded in DIR/summary.json "
        "and the others go on.",
    )
    p.add_argument("jobs", help="JOBS.jsonl")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--config", help="YAML instance of AnimateConfig: the settings every job starts from")
    p.add_argument("--model", help="model directory (or Hub id org/name; revision=REV) for jobs that name none")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--engine",
        choices=("torchrun", "ray"),
        default="torchrun",
        help="torchrun (default): this process, or the processes torchrun/accelerate started, each taking a fixed "
        "share; ray: workers of a Ray cluster take jobs as they free up, and a job whose worker dies is retried "
        "(needs the ray extra)",
    )
    ray = p.add_argument_group("Ray engine (--engine ray)")
    ray.add_argument(
        "--address", help="the cluster to join: auto (the running one) or HOST:PORT; default: start one for this run"
    )
    ray.add_argument("--workers", type=int, help="workers (default: as many as the cluster's resources hold)")
    ray.add_argument("--cpus-per-job", type=float, help="CPUs each worker reserves (default 1)")
    ray.add_argument("--gpus-per-job", type=float, help="GPUs each worker reserves (default 0)")
    ray.add_argument("--max-attempts", type=int, help="tries per job when its worker dies (default 3)")
    add_sampling_arguments(p)
    add_overrides_argument(p, "AnimateConfig keys for every job (a job line's own keys win)")
    p.set_defaults(run=run, memory_advice=MEMORY_ADVICE)


MEMORY_ADVICE = (
    "out of memory; give the jobs a smaller size, fewer frames or a shorter context_frames (job lines, or key=value "
    "for every job)"
)


def run(args) -> int:
    from ..config import SettingError, load_config
    from ..jobs.animate_config import AnimateConfig
    from ..jobs.job_file import check_out
    from .flags import renamed, sampling_values

    values = ({"model": args.model} if args.model else {}) | sampling_values(args)
    config = load_config(AnimateConfig, args.config, args.overrides, values)
    given = {name: getattr(args, name) for name in RAY_FLAGS if getattr(args, name) is not None}
    if args.engine != "ray":
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ValueError(f"{flags} belong to the Ray engine; add --engine ray")
        check_out(args.out, FLAGS["out"])  # in this command's words, before the engine's own check
        return _torchrun(args, config)
    try:
        import ray  # noqa: F401
    except ImportError:
        from ..extras import install_hint

        raise ValueError(f"--engine ray needs Ray: {install_hint('ray')}") from None
    from ..distributed import Launch
    from ..jobs.batch_ray import RaySettings, run_batch_ray

    try:
        settings = RaySettings(**given)
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, FLAGS) from None
    check_out(args.out, FLAGS["out"])
    launch = Launch.from_env()
    summary = run_batch_ray(args.jobs, args.out, config, settings, launch=launch, progress=not args.quiet)
    counts = summary["counts"]
    if summary.get("nothing_to_do"):
        print(f"{summary['jobs']} jobs: every video is already in {args.out}/videos; nothing to do")
        return 0
    retried = f", {len(summary['retried'])} retried after a worker died" if summary["retried"] else ""
    print(
        f"ray: {summary['jobs']} jobs on {summary['workers_started']} workers: {counts['done']} done, "
        f"{counts['skipped']} skipped (already there), {counts['failed']} failed{retried}; see {args.out}/summary.json"
    )
    return 1 if counts["failed"] else 0


def _torchrun(args, config) -> int:
    from ..distributed import Launch
    from ..jobs.batch import run_batch

    summary = run_batch(args.jobs, args.out, config, launch=Launch.from_env(), progress=not args.quiet)
    counts = summary["counts"]
    print(
        f"rank {summary['rank']}/{summary['world_size']}: {summary['jobs']} jobs: {counts['done']} done, "
        f"{counts['skipped']} skipped (already there), {counts['failed']} failed; see {args.out}/summary.json"
    )
    return 1 if counts["failed"] else 0
