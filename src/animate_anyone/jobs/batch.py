"""``animate-anyone batch JOBS.jsonl --out DIR``: many animations, resumable, sharded across processes.

One job per line of JOBS.jsonl, a JSON object::

    {"id": "dance-01", "reference": "refs/a.png", "pose": "poses/dance.mp4", "steps": 20, "seed": 3}

* exactly one motion: ``pose`` (rendered skeletons or a keypoint file) or ``driver`` (a video of a person);
* ``id`` (default: the line number, ``job-00007``) names the output ``DIR/videos/<id>.mp4``: a plain name (no
  ``/`` or ``\\``, not ``.`` or ``..``, no leading ``.``: hidden names are the batch's temporaries), and no two jobs'
  outputs may be one path (id ``a.mp4`` as ``png`` and id ``a`` as ``mp4`` both name ``videos/a.mp4``);
* ``format`` (optional): ``mp4`` (default), ``mov``, ``mkv``, ``gif``, or ``png`` (a folder ``DIR/videos/<id>`` of
  lossless frames: H.264 encodes of equal frames are not always equal byte for byte, PNG frames are);
* ``truth`` (optional, must exist): the ground-truth video, linked as ``DIR/truth/<id>.<ext>`` so that
  ``animate-anyone evaluate --pred DIR/videos --gt DIR/truth`` scores the batch as it is;
* any other key is an ``AnimateConfig`` field in dotted form (``steps``, ``guidance``, ``preset``, ``frames``,
  ``size``, ``model``, ``pose.align``, ...) over the batch's own config. Relative paths are relative to JOBS.jsonl.

Checked before the first job (``check_out``, ``check_jobs``; both engines): ``DIR`` is a folder, or can be made, and
is writable; every line is a JSON object with known keys, a good id and format; its config (the batch's under its
settings, as the job will run) has good values, and ``jobs.animate.check_job`` passes its inputs (model directory,
sampling settings, reference image, size, and frames against the motion's header); its ``truth`` exists. One bad
line refuses the whole file, before anything is written (not even ``DIR/videos``): ``JobFileError``, one line
listing every bad line as ``JOBS.jsonl line N: reason`` (lines that share a reason together, ``lines 1-3, 7``;
the first 20, then ``and N more bad lines``), joined by ``; ``. The ``batch`` command prints it and exits with 2.

Resumable: a job whose video exists is skipped (videos are written atomically, so an existing one is complete); the
hidden temporaries (``.NAME.<random>.partial...``) a killed run left are removed when the next run starts, each
process removing only those of its own jobs' outputs. A failing job is recorded with its error and the others go
on. Launched by torchrun/accelerate (the ``batch`` command passes ``run_batch`` its ``distributed.Launch``), rank
``r`` runs the jobs ``r, r + N, r + 2N, ...`` with its own model copy; every rank writes
``DIR/summary.rank-<r>.json`` and the last rank to finish merges them into ``DIR/summary.json``. On a Ray cluster
(``--engine ray``, ``jobs/batch_ray.py``) workers take jobs as they free up and a job whose worker died is retried
elsewhere; both engines render a job with ``render_job`` and write the same summary.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import traceback
from pathlib import Path

from ..atomic import write_text
from ..distributed import Launch
from .job_file import Job, check_jobs, check_out, job_config, output_name, output_path, truth_name


class PipelineCache:
    """One loaded pipeline per (model, revision, device, dtype), kept for the jobs that follow; ``loads`` counts the
    loads."""

    def __init__(self, launch: Launch | None = None) -> None:
        self.pipes: dict[tuple, object] = {}
        self.loads = 0
        self.launch = launch or Launch()  # under torchrun: this process's own GPU (each process works alone)

    def get(self, config):
        from ..jobs.animate import process_device
        from ..pipelines.loading import load_pipeline

        key = (config.model, config.revision, config.device, config.dtype)
        if key not in self.pipes:  # one job, one process: the processes do not share videos
            device = process_device(config, self.launch)
            options = dict(progress=False, optimisations=config.optimisations, revision=config.revision)
            self.pipes[key] = load_pipeline(config.model, device, config.dtype, **options)
            self.loads += 1
        pipe = self.pipes[key]
        if pipe.optimisations != config.optimisations:  # each job's own, whichever job loaded the pipeline
            pipe.set_optimisations(config.optimisations)
        return pipe


def remove_temporaries(out: Path, jobs: list[Job]) -> list[Path]:
    """Delete the hidden temporaries (``.NAME.<random>.partial<suffix>``, files or PNG folders: ``atomic``) that a
    killed process left in ``out/videos`` for these jobs' outputs, and only theirs: under torchrun each process
    clears its own jobs' before it starts, while the others may be writing theirs. Returns what it removed."""
    names = {output_name(job) for job in jobs}
    removed = []
    for path in (out / "videos").glob(".*.partial*"):
        match = _TEMPORARY.fullmatch(path.name)
        if match and match["name"] in names:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() and not path.is_symlink() else path.unlink(True)
            removed.append(path)
    return removed


# atomic.temporary_sibling's ``.NAME.<hex>.partial<suffix>`` and atomic_directory's ``.NAME.<mkdtemp>.partial``: the
# random part has no dot, so each temporary belongs to exactly one output name.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]+\.partial(\.[A-Za-z0-9]+)?")


def job_record(job: Job, out: Path) -> dict:
    """The start of a job's summary record (its output; its ground truth linked beside the videos)."""
    record = {"id": job.id, "output": str(output_path(out, job))}
    if job.truth is not None:
        record["truth"] = str(_link_truth(job, out / "truth"))
    return record


def render_job(job: Job, out: Path, base_config, pipes: PipelineCache) -> dict:
    """Render one job into ``out/videos/<id>.mp4`` (atomically) with a pipeline from ``pipes``; returns its record
    with status ``done`` and seconds, or ``failed`` with the error (a failing job never raises)."""
    from ..jobs.animate import animate

    start = time.perf_counter()
    try:
        config = job_config(job, base_config)
        target = output_path(out, job)
        animate(config, job.reference, job.pose, target, driver=job.driver, progress=False, pipe=pipes.get(config))
        return {"status": "done", "seconds": round(time.perf_counter() - start, 3)}
    except Exception as exc:  # a failing job is recorded; the batch goes on
        return {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=5),
            "seconds": round(time.perf_counter() - start, 3),
        }


def count(records: list[dict]) -> dict[str, int]:
    return {s: sum(r["status"] == s for r in records) for s in ("done", "skipped", "failed")}


def run_batch(jobs_file, out, base_config, *, launch: Launch | None = None, progress: bool = True) -> dict:
    """Run this process's share of the jobs (``launch``: what torchrun told this process, from the ``batch``
    command; alone by default); returns its summary (see the module doc)."""
    from tqdm.auto import tqdm

    launch = launch or Launch()
    out = check_out(out)
    jobs = check_jobs(jobs_file, base_config, progress=progress)  # the whole file, before anything is written
    rank, world = launch.rank, launch.world
    (out / "videos").mkdir(parents=True, exist_ok=True)
    mine = jobs[rank::world]
    remove_temporaries(out, mine)  # a killed run's, of this process's jobs only (the others may be writing theirs)
    pipes = PipelineCache(launch)
    worker = f"rank-{rank}"
    records = []
    start = time.perf_counter()
    for job in tqdm(mine, desc=f"batch (rank {rank}/{world})", unit="job", disable=not progress):
        record = {**job_record(job, out), "rank": rank}
        if output_path(out, job).exists():
            records.append({**record, "status": "skipped", "reason": "output exists"})
            continue
        outcome = render_job(job, out, base_config, pipes)
        records.append({**record, **outcome, "worker": worker, "attempts": 1})
    summary = {
        "engine": "torchrun",
        "rank": rank,
        "world_size": world,
        "jobs": len(mine),
        "counts": count(records),
        "seconds": round(time.perf_counter() - start, 3),
        "workers": [{"worker": worker, "pipeline_loads": pipes.loads, "jobs": sum("worker" in r for r in records)}],
        "records": records,
    }
    write_text(out / f"summary.rank-{rank}.json", json.dumps(summary, indent=2) + "\n")
    _merge(out, world, len(jobs))
    return summary


def _link_truth(job: Job, folder: Path) -> Path:
    """``folder/<id><suffix>`` pointing at the ground truth (a symbolic link; a folder of frames keeps its form)."""
    truth = job.truth
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / truth_name(job)
    if not link.exists():
        link.symlink_to(truth.resolve())
    return link


def _merge(out: Path, world: int, total: int) -> None:
    """Write summary.json once every rank's part is there (whichever rank finishes last does it)."""
    parts = [out / f"summary.rank-{r}.json" for r in range(world)]
    if not all(p.exists() for p in parts):
        return
    loaded = [json.loads(p.read_text()) for p in parts]
    records = sorted((r for part in loaded for r in part["records"]), key=lambda r: r["id"])
    workers = [w for part in loaded for w in part["workers"]]
    merged = {
        "engine": "torchrun",
        "jobs": total,
        "world_size": world,
        "counts": count(records),
        "seconds": max(part["seconds"] for part in loaded),
        "workers": workers,
        "records": records,
    }
    write_text(out / "summary.json", json.dumps(merged, indent=2) + "\n")
