"""``animate-anyone batch JOBS.jsonl --out DIR --engine ray``: the same jobs on a Ray cluster whose workers come
and go (the ``ray`` extra).

Each worker is a Ray actor that loads the pipeline once and renders whatever job it is handed (``render_job``,
as the torchrun engine does); the driver hands the next job to the first worker that frees up. A worker whose
process dies (killed, out of memory, its node gone) is replaced, and its job goes back to the queue, up to
``max_attempts`` tries in all; a job that fails by itself (an input changed since the check) is recorded at once
and not retried. The job file and ``DIR`` are checked as by the torchrun engine (``check_out``, ``check_jobs``, with
the config the workers get) before Ray starts. Outputs are written atomically and skipped when present, so a rerun
does only what is missing (and nothing, saying so, when everything is there); a killed run's temporaries are removed
when the next run starts, before any worker, and again at its end. ``DIR/summary.json`` is the torchrun engine's
with, per job, the worker (``host:pid``) that rendered it, its attempts and seconds, and per worker its pipeline
loads.

Paths in the job file must be readable, and ``DIR`` writable, at the same place on every node (a shared
filesystem), as for any Ray job that works on files; the driver checks them where it runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text
from ..config import SettingError
from ..distributed import Launch
from .batch import PipelineCache, count, job_record, render_job
from .job_file import Job, check_jobs, check_out, output_path


@dataclass
class RaySettings:
    """Where and how the jobs run on Ray; checked once, here."""

    address: str | None = None  # None: start a local cluster for this run; "auto": join the running one; HOST:PORT
    workers: int | None = None  # None: as many as the cluster's resources hold (and no more than the jobs)
    cpus_per_job: float = 1.0  # Ray resources each worker reserves (a worker renders one job at a time)
    gpus_per_job: float = 0.0
    max_attempts: int = 3  # tries per job when workers die under it

    def __post_init__(self) -> None:
        """``SettingError`` naming the field (a front end renames it: ``batch`` to its flag)."""
        if self.workers is not None and self.workers < 1:
            raise SettingError("workers", self.workers, "give at least 1 (or leave it out: the cluster's size)")
        for name in ("cpus_per_job", "gpus_per_job"):
            if getattr(self, name) < 0:
                raise SettingError(name, getattr(self, name), "must be >= 0")
        if self.cpus_per_job + self.gpus_per_job == 0:
            raise SettingError(
                "cpus_per_job",
                self.cpus_per_job,
                "a worker must reserve some CPU or GPU; give it more than 0, or 1 GPU per job on GPU nodes",
            )
        if self.max_attempts < 1:
            raise SettingError("max_attempts", self.max_attempts, "give at least 1")


class BatchWorker:
    """A Ray actor (``ray.remote`` is applied at run time): one process, one pipeline cache, one job at a time."""

    def __init__(self, base_config) -> None:
        self.base_config = base_config
        self.pipes = PipelineCache()
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def render(self, job: Job, out: str) -> dict:
        outcome = render_job(job, Path(out), self.base_config, self.pipes)
        return {**outcome, "worker": self.name, "pipeline_loads": self.pipes.loads}


def _worker_died(exc: BaseException) -> bool:
    """The worker's process is gone (killed, crashed, its node lost, or stopped by Ray's memory monitor)."""
    import ray.exceptions as errors

    lost = (errors.RayActorError, errors.WorkerCrashedError, errors.NodeDiedError, errors.OutOfMemoryError)
    return isinstance(exc, lost)


def run_batch_ray(
    jobs_file, out, base_config, settings: RaySettings, *, launch: Launch | None = None, progress: bool = True
) -> dict:
    """Run every job of ``jobs_file`` on Ray; returns the summary (also written to ``out/summary.json``, unless
    there was nothing to do: then ``summary["nothing_to_do"]`` is true and the folder is left as it was).
    ``launch``: what a launcher told this process (the ``batch`` command passes it): Ray's driver is one process."""
    if launch is not None and launch.launched:
        raise ValueError("the Ray engine runs from one process; start it without torchrun/accelerate")
    out = check_out(out).absolute()
    # The whole file, as the workers will run it, before Ray starts or anything is written; the jobs' paths are
    # absolute: workers may run in other folders, on other nodes.
    jobs = check_jobs(jobs_file, _for_workers(base_config, settings), progress=progress)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)  # a killed run's, before any worker starts
    records = {job.id: job_record(job, out) for job in jobs}
    todo = [job for job in jobs if not output_path(out, job).exists()]
    for job in jobs:
        if output_path(out, job).exists():
            records[job.id].update(status="skipped", reason="output exists")
    if not todo:
        return {"engine": "ray", "jobs": len(jobs), "counts": count(list(records.values())), "nothing_to_do": True}

    import ray
    from tqdm.auto import tqdm

    start = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        _init(ray, settings)
    actors, bar = [], None
    try:
        workers = _worker_count(ray.cluster_resources(), settings, len(todo))
        actor = ray.remote(num_cpus=settings.cpus_per_job, num_gpus=settings.gpus_per_job, max_restarts=0)(BatchWorker)
        base = ray.put(_for_workers(base_config, settings))
        idle = [actor.remote(base) for _ in range(workers)]
        actors += idle
        queue, running, attempts, lost = deque(todo), {}, dict.fromkeys(records, 0), {}
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="batch (ray)", unit="job", disable=not progress)
        while queue or running:
            # 1. Every idle worker takes the next job; with none left to hand out, idle workers free their resources.
            while idle and queue:
                job, worker = queue.popleft(), idle.pop()
                attempts[job.id] += 1
                running[worker.render.remote(job, str(out))] = (job, worker)
            if not queue:
                for worker in idle:
                    ray.kill(worker)
                idle.clear()
            # 2. The first job to end: its record, or, if its worker died, the job back in line for a new worker.
            [ref], _ = ray.wait(list(running), num_returns=1)
            job, worker = running.pop(ref)
            try:
                records[job.id].update(ray.get(ref), attempts=attempts[job.id])
                idle.append(worker)
            except Exception as exc:
                if not _worker_died(exc):
                    raise
                lost.setdefault(job.id, []).append(_first_line(exc))
                ray.kill(worker)
                if attempts[job.id] < settings.max_attempts:
                    queue.appendleft(job)
                    idle.insert(0, actor.remote(base))  # taken after the live idle workers
                    actors.append(idle[0])
                    continue
                records[job.id].update(
                    status="failed",
                    error=f"its worker died {attempts[job.id]} times (max_attempts {settings.max_attempts})",
                    attempts=attempts[job.id],
                )
            if job.id in lost:
                records[job.id]["workers_lost"] = lost[job.id]
            bar.update()
    finally:
        if bar is not None:
            bar.close()
        for worker in actors:  # also when the caller started Ray and keeps it up
            ray.kill(worker)
        if started_here:
            ray.shutdown()
    _remove_stale_temporaries(out)
    listed = list(records.values())
    summary = {
        "engine": "ray",
        "jobs": len(jobs),
        "workers_started": len(actors),
        "counts": count(listed),
        "retried": sorted(job_id for job_id, n in attempts.items() if n > 1),
        "seconds": round(time.perf_counter() - start, 3),
        "workers": _workers(listed),
        "records": listed,
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _for_workers(config, settings: RaySettings):
    """The config the workers get: its model path absolute (workers run elsewhere; a Hub id stays as it is), and,
    where the jobs reserve no GPU, the CPU for ``device: auto`` (Ray hides no GPU from a worker that reserved none,
    so every such worker would pick the first GPU)."""
    from ..hub import hub_id

    local = config.model and hub_id(config.model) is None
    changes = {"model": str(Path(config.model).absolute())} if local else {}
    if settings.gpus_per_job == 0 and config.device == "auto":
        changes["device"] = "cpu"
    return dataclasses.replace(config, **changes)


def _init(ray, settings: RaySettings) -> None:
    """Join ``settings.address``, or start a new local cluster sized for ``settings.workers`` (all CPUs if unset;
    ``address="local"``: never a cluster that ``ray start`` or ``RAY_ADDRESS`` left running)."""
    quiet = {"log_to_driver": False, "configure_logging": True, "logging_level": "warning"}
    if settings.address is not None:
        ray.init(address=settings.address, **quiet)
        return
    cpus = None if settings.workers is None else max(1, int(settings.workers * settings.cpus_per_job + 0.999))
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)


def _worker_count(resources: dict, settings: RaySettings, jobs: int) -> int:
    """As many workers as the cluster's CPUs (and GPUs) hold, at most ``settings.workers`` and the jobs."""
    fits = [] if settings.workers is None else [settings.workers]
    if settings.cpus_per_job:
        fits.append(int(resources.get("CPU", 0) // settings.cpus_per_job))
    if settings.gpus_per_job:
        fits.append(int(resources.get("GPU", 0) // settings.gpus_per_job))
    if min(fits) < 1:
        raise ValueError(
            f"the Ray cluster has {resources.get('CPU', 0)} CPUs and {resources.get('GPU', 0)} GPUs: not enough "
            f"for one worker of {settings.cpus_per_job} CPUs and {settings.gpus_per_job} GPUs"
        )
    return min(min(fits), jobs)


def _workers(records: list[dict]) -> list[dict]:
    """Per worker that finished a job: its pipeline loads and the jobs it rendered."""
    workers: dict[str, dict] = {}
    for record in records:
        if "worker" in record:
            entry = workers.setdefault(record["worker"], {"worker": record["worker"], "pipeline_loads": 0, "jobs": 0})
            entry["pipeline_loads"] = max(entry["pipeline_loads"], record.pop("pipeline_loads"))
            entry["jobs"] += 1
    return sorted(workers.values(), key=lambda w: w["worker"])


def _remove_stale_temporaries(out: Path) -> None:
    """The hidden ``.ID.mp4.<random>.partial...`` files (or PNG folders) a killed worker (or driver) left behind;
    called when no worker runs: at the start, before any worker starts, and at the end. (Job ids never start with a
    dot, so every hidden entry of ``out/videos`` is a temporary.)"""
    for path in (out / "videos").glob(".*.partial*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
