"""``animate-anyone batch JOBS.jsonl --out DIR``: many animations, resumable, sharded across processes.

One job per line of JOBS.jsonl, a JSON object::

    {"id": "dance-01", "reference": "refs/a.png", "pose": "poses/dance.mp4", "steps": 20, "seed": 3}

* exactly one motion: ``pose`` (rendered skeletons or a keypoint file) or ``driver`` (a video of a person);
* ``id`` (default: the line number, ``job-00007``) names the output ``DIR/videos/<id>.mp4``;
* ``format`` (optional): ``mp4`` (default), ``mov``, ``mkv``, ``gif``, or ``png`` (a folder ``DIR/videos/<id>`` of
  lossless frames: H.264 encodes of equal frames are not always equal byte for byte, PNG frames are);
* ``truth`` (optional): the ground-truth video, linked as ``DIR/truth/<id>.<ext>`` so that
  ``animate-anyone evaluate --pred DIR/videos --gt DIR/truth`` scores the batch as it is;
* any other key is an ``AnimateConfig`` field (``steps``, ``guidance``, ``preset``, ``frames``, ``size``,
  ``model``, ``pose.align``, ...) over the batch's own config. Relative paths are relative to JOBS.jsonl.

Resumable: a job whose video exists is skipped (videos are written atomically, so an existing one is
complete). A failing job is recorded with its error and the others go on. Launched by torchrun/accelerate
(``WORLD_SIZE`` > 1), rank ``r`` runs the jobs ``r, r + N, r + 2N, ...`` with its own model copy; every rank
writes ``DIR/summary.rank-<r>.json`` and the last rank to finish merges them into ``DIR/summary.json``.
On a Ray cluster (``--engine ray``, ``jobs/batch_ray.py``) workers take jobs as they free up and a job whose
worker died is retried elsewhere; both engines render a job with ``render_job`` and write the same summary.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_text
from ..jsonl import read_jsonl

JOB_KEYS = {"id", "reference", "pose", "driver", "truth", "format"}
FORMATS = ("mp4", "mov", "mkv", "gif", "png")


@dataclass
class Job:
    id: str
    reference: Path
    pose: Path | None
    driver: Path | None
    truth: Path | None
    settings: dict = field(default_factory=dict)
    format: str = "mp4"


def read_jobs(path: str | Path) -> list[Job]:
    """The jobs of a JSON-lines file, checked (a bad line raises ``ValueError`` naming the line)."""
    path = Path(path)
    base = path.parent.absolute()  # workers elsewhere (Ray) find the files whatever their folder
    jobs, seen = [], set()
    for number, entry in read_jsonl(path):
        where = f"{path} line {number}"
        if "reference" not in entry:
            raise ValueError(f"{where}: no 'reference' (the character image)")
        if ("pose" in entry) == ("driver" in entry):
            raise ValueError(f"{where}: give exactly one of 'pose' (skeletons or keypoints) and 'driver' (a video)")
        job_id = str(entry.get("id", f"job-{number:05d}"))
        if not job_id or "/" in job_id or job_id in seen:
            raise ValueError(f"{where}: id {job_id!r} is empty, contains '/', or repeats an earlier id")
        seen.add(job_id)
        kind = entry.get("format", "mp4")
        if kind not in FORMATS:
            raise ValueError(f"{where}: format {kind!r} is not one of {', '.join(FORMATS)}")
        paths = {
            key: None if entry.get(key) is None else base / entry[key]
            for key in ("reference", "pose", "driver", "truth")
        }
        settings = {k: v for k, v in entry.items() if k not in JOB_KEYS}
        jobs.append(Job(job_id, paths["reference"], paths["pose"], paths["driver"], paths["truth"], settings, kind))
    if not jobs:
        raise ValueError(f"{path}: no jobs")
    return jobs


def shard() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment (torchrun, accelerate); (0, 1) when run alone."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return rank, world


class PipelineCache:
    """One loaded pipeline per (model, device, dtype), kept for the jobs that follow; ``loads`` counts the loads."""

    def __init__(self) -> None:
        self.pipes: dict[tuple, object] = {}
        self.loads = 0

    def get(self, config):
        from ..jobs.animate import process_device
        from ..pipelines.loading import load_pipeline

        key = (config.model, config.device, config.dtype)
        if key not in self.pipes:  # one job, one process: the processes do not share videos
            device = process_device(config, share_videos=False)
            options = config.optimisations
            self.pipes[key] = load_pipeline(config.model, device, config.dtype, progress=False, optimisations=options)
            self.loads += 1
        return self.pipes[key]


def output_path(out: Path, job: Job) -> Path:
    """``out/videos/<id>.<format>``, or the folder ``out/videos/<id>`` of PNG frames."""
    return out / "videos" / (job.id if job.format == "png" else f"{job.id}.{job.format}")


def job_record(job: Job, out: Path) -> dict:
    """The start of a job's summary record (its output; its ground truth linked beside the videos)."""
    record = {"id": job.id, "output": str(output_path(out, job))}
    if job.truth is not None:
        record["truth"] = str(_link_truth(job.truth, out / "truth", job.id))
    return record


def render_job(job: Job, out: Path, base_config, pipes: PipelineCache) -> dict:
    """Render one job into ``out/videos/<id>.mp4`` (atomically) with a pipeline from ``pipes``; returns its record
    with status ``done`` and seconds, or ``failed`` with the error (a failing job never raises)."""
    from ..config import dotted, load_config
    from ..jobs.animate import animate
    from ..jobs.animate_config import AnimateConfig

    start = time.perf_counter()
    try:
        config = load_config(AnimateConfig, None, [], {**dotted(base_config), **job.settings})
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


def run_batch(jobs_file, out, base_config, *, progress: bool = True) -> dict:
    """Run this process's share of the jobs; returns its summary (see the module doc)."""
    from tqdm.auto import tqdm

    jobs = read_jobs(jobs_file)
    rank, world = shard()
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    mine = jobs[rank::world]
    pipes = PipelineCache()
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


def _link_truth(truth: Path, folder: Path, job_id: str) -> Path:
    """``folder/<id><suffix>`` pointing at the ground truth (a symbolic link; a folder of frames keeps its form)."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / f"{job_id}{truth.suffix if truth.is_file() else ''}"
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
