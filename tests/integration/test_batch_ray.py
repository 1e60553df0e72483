"""``animate-anyone batch --engine ray`` on a real local Ray cluster (2 CPU workers, loopback): a worker process
SIGKILLed while it renders has its job retried elsewhere, every job ends once with the video a one-process batch
makes, each worker loads the model once, and a rerun does nothing and says so."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import free_port

pytestmark = pytest.mark.integration
JOBS = 6
# A throwaway loopback cluster: no token (Ray's token authentication is for clusters others can reach).
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def ray_cli() -> str:
    pytest.importorskip("ray")
    return str(Path(sys.executable).with_name("ray"))


@pytest.fixture
def ray_cluster():
    """A head node with 2 CPUs on 127.0.0.1 (``ray start``); yields its address; ``ray stop`` after."""
    ray = ray_cli()
    port = free_port()
    start = [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2"]
    start += ["--include-dashboard=false", "--disable-usage-stats"]
    try:
        started = subprocess.run(start, capture_output=True, text=True, timeout=120, env=ENV)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120, env=ENV)


def rendering_workers() -> list[int]:
    """Pids of Ray worker processes inside ``BatchWorker.render`` (Ray names a busy actor process by its method)."""
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if "ray::BatchWorker.render" in line]


def frames(path: Path) -> np.ndarray:
    from animate_anyone.media import iter_frames

    return np.stack(list(iter_frames(path))).astype(np.int16)


def test_a_killed_worker_has_its_job_retried_and_a_rerun_does_nothing(ray_cluster, demo_inputs, tmp_path):
    from animate_anyone.assets import packaged_model

    shutil.copy(demo_inputs["reference"], tmp_path / "reference.png")
    shutil.copy(demo_inputs["pose"], tmp_path / "pose.mp4")
    jobs = tmp_path / "jobs.jsonl"
    lines = [
        {"id": f"j{i}", "reference": "reference.png", "pose": "pose.mp4", "seed": i, "steps": 12, "format": "png"}
        for i in range(JOBS)
    ]
    jobs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    batch = [sys.executable, "-m", "animate_anyone.cli.main", "batch", str(jobs), "--model", str(packaged_model())]

    # 1. The reference: one process, the default engine.
    subprocess.run([*batch, "--out", str(tmp_path / "one"), "--quiet"], check=True, capture_output=True, timeout=600)

    # 2. On the cluster; once a video is out, SIGKILL a worker in the middle of its next job.
    out = tmp_path / "ray"
    command = [*batch, "--out", str(out), "--engine", "ray", "--address", ray_cluster, "--quiet"]
    log = tmp_path / "ray.log"
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=ENV)
    killed, deadline = None, time.monotonic() + 300
    while killed is None:
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        busy = rendering_workers() if list((out / "videos").glob("j*")) else []
        if busy:
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    assert process.wait(timeout=600) == 0, log.read_text()[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    print(json.dumps({k: v for k, v in summary.items() if k != "records"}))

    # Every job ended once, done; exactly one was retried, after its worker (the killed pid) died.
    records = {r["id"]: r for r in summary["records"]}
    assert sorted(records) == [f"j{i}" for i in range(JOBS)] and summary["counts"]["done"] == JOBS
    retried = [r for r in records.values() if r["attempts"] > 1]
    assert len(retried) == 1 and retried[0]["attempts"] == 2 and summary["retried"] == [retried[0]["id"]]
    assert len(retried[0]["workers_lost"]) == 1
    assert not retried[0]["worker"].endswith(f":{killed}")  # finished by another worker
    assert summary["workers_started"] == 3  # two, and one in place of the killed one
    # The model was loaded once per worker, and a worker rendered several jobs with it.
    assert all(w["pipeline_loads"] == 1 for w in summary["workers"]), summary["workers"]
    assert max(w["jobs"] for w in summary["workers"]) >= 2
    # The videos (lossless PNG frames): one per job, no leftovers of the killed write, equal to the one-process
    # run within 2 levels (the workers compute with 1 thread each, the one process with 2).
    assert sorted(p.name for p in (out / "videos").iterdir()) == [f"j{i}" for i in range(JOBS)]
    for i in range(JOBS):
        ours, reference = frames(out / "videos" / f"j{i}"), frames(tmp_path / "one" / "videos" / f"j{i}")
        assert ours.shape == (12, 64, 64, 3) and ours.shape == reference.shape, f"j{i}"
        assert np.abs(ours - reference).max() <= 2, f"j{i}"
    assert np.abs(frames(out / "videos" / "j0") - frames(out / "videos" / "j1")).max() > 2  # the seeds differ

    # 3. The same command again: nothing to do, said in one line, nothing rewritten.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
