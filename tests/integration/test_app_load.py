"""``animate-anyone app`` under load, through ``gradio_client``: 8 users at once (2 of them cancel mid-run) share
one model through the queue and see their place in it; the others get the videos that sequential runs give;
a cancelled job stops at once; after 40 jobs the server's memory is where it was after 5 and its temporary
folders hold nothing of the finished jobs."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import free_port, start, stop, wait_for

pytestmark = pytest.mark.integration
USERS, CANCELLED, STEPS, LONG = 8, (2, 5), 8, 400  # the cancelled users ask for 400 steps (minutes of work)
KEEP = 10  # --keep-results: seconds Gradio keeps a handed-out video


@pytest.fixture(scope="module")
def loaded_app(tmp_path_factory):
    """The app with 2 jobs admitted at once and a private temporary folder (TMPDIR): (url, pid, temporary folder)."""
    root = tmp_path_factory.mktemp("app-load")
    tmp = root / "tmp"
    tmp.mkdir()
    port = free_port()
    command = [sys.executable, "-m", "animate_anyone.cli.main", "app", "--port", str(port), "--concurrency", "2"]
    command += ["--keep-results", str(KEEP)]
    env = {**os.environ, "TMPDIR": str(tmp)}
    env.pop("GRADIO_TEMP_DIR", None)
    log = root / "server.log"
    process = start(command, log, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/", process, 120, log)
        yield url, process.pid, tmp
    finally:
        stop(process)


def rss(pid: int) -> int:
    """Resident memory of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def frames(path) -> np.ndarray:
    from animate_anyone.media import iter_frames

    return np.stack(list(iter_frames(path))).astype(np.int16)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return np.inf if mse == 0 else 10 * np.log10(255**2 / mse)


def job_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("animate-anyone-app-*/job-*"))


def test_eight_users_two_cancel_then_forty_jobs(loaded_app, demo_inputs, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.utils import Status

    RUNNING = (Status.PROCESSING, Status.PROGRESS, Status.ITERATING)  # PROGRESS: the step bar is updating

    url, pid, tmp = loaded_app
    inputs = (handle_file(str(demo_inputs["reference"])), handle_file(str(demo_inputs["pose"])))

    def client(name: str) -> Client:
        return Client(url, download_files=str(tmp_path / name), verbose=False)

    # 1. One user alone: the time to the video, and the video to compare with.
    alone = time.monotonic()
    first = client("alone").predict(*inputs, seed=0, steps=STEPS, api_name="/animate")
    alone = time.monotonic() - alone

    # 2. Eight users at once; users 2 and 5 cancel once their (long) job runs.
    clients = [client(f"user-{i}") for i in range(USERS)]
    begin = time.monotonic()
    jobs = [
        c.submit(*inputs, seed=i, steps=LONG if i in CANCELLED else STEPS, api_name="/animate")
        for i, c in enumerate(clients)
    ]
    ranks, cancelled_at, finished = {}, {}, {}
    deadline = time.monotonic() + 600
    while not all(j.done() for i, j in enumerate(jobs) if i not in CANCELLED) or len(cancelled_at) < len(CANCELLED):
        assert time.monotonic() < deadline, [j.status() for j in jobs]
        for i, j in enumerate(jobs):
            status = j.status()
            if j.done() and i not in finished:
                finished[i] = time.monotonic() - begin
            if status.code == Status.IN_QUEUE and status.rank is not None:
                ranks[i] = max(ranks.get(i, -1), status.rank)
            assert not (i in CANCELLED and j.done() and i not in cancelled_at), f"user {i} finished uncancelled"
            if i in CANCELLED and i not in cancelled_at and status.code in RUNNING:
                time.sleep(1.0)  # well into its denoising steps
                j.cancel()
                cancelled_at[i] = time.monotonic()
        time.sleep(0.1)
    finished = {i: t for i, t in finished.items() if i not in CANCELLED}
    # The queue told waiting users their place: someone waited behind others.
    assert ranks and max(ranks.values()) >= 1, ranks
    # The cancelled jobs stopped at once: their folders are gone long before 400 steps could have run.
    stopped = time.monotonic()
    while job_folders(tmp):
        assert time.monotonic() - stopped < 30, job_folders(tmp)
        time.sleep(0.2)
    assert time.monotonic() - max(cancelled_at.values()) < 60

    # 3. The six others: the videos of sequential runs with the same seeds, made afterwards by a fresh request
    # each (the app still answers). The generated frames are equal (tests/test_app_service.py checks jobs that
    # share a pipeline across threads, on PNG frames); here the files are H.264, and x264's encodes of equal frames
    # differ a little with the thread that runs them. So: each video is within 38 dB of its sequential twin, and
    # nearer to it by 6 dB or more than to any other seed's video (different seeds: about 31 dB apart).
    results = {i: frames(jobs[i].result()) for i in range(USERS) if i not in CANCELLED}
    sequential = client("sequential")
    twins = {i: frames(sequential.predict(*inputs, seed=i, steps=STEPS, api_name="/animate")) for i in results}
    closest, margin = np.inf, np.inf
    for i, ours in results.items():
        assert ours.shape == twins[i].shape == (12, 64, 64, 3)
        same, other = psnr(ours, twins[i]), max(psnr(ours, twins[j]) for j in twins if j != i)
        print(f"user {i}: {same:.1f} dB against its sequential twin, {other:.1f} dB against the nearest other seed")
        closest, margin = min(closest, same), min(margin, same - other)
    assert closest >= 38 and margin >= 6, (closest, margin)
    assert psnr(results[0], frames(first)) >= 38

    # 4. Forty sequential jobs: memory flat, and nothing of them left in the app's folder.
    quick = client("quick")
    memory = {}
    for n in range(1, 41):
        quick.predict(*inputs, seed=n, steps=1, frames=4, api_name="/animate")
        if n in (5, 40):
            memory[n] = rss(pid)
    assert not job_folders(tmp)
    growth = memory[40] / memory[5] - 1
    # Gradio's cache keeps handed-out videos for --keep-results seconds, then deletes them.
    cached = time.monotonic()
    while list(tmp.glob("gradio/**/animation.mp4")):
        assert time.monotonic() - cached < 3 * KEEP + 30, list(tmp.glob("gradio/**/animation.mp4"))
        time.sleep(1)
    print(
        f"app: 1 user {alone:.1f} s to the video; 8 users (2 cancelling): the 6 videos after "
        f"{min(finished.values()):.1f} to {max(finished.values()):.1f} s (mean {np.mean(list(finished.values())):.1f});"
        f" highest queue place {max(ranks.values())}; RSS after 5 jobs {memory[5] / 1024:.0f} MiB, after 40 "
        f"{memory[40] / 1024:.0f} MiB ({100 * growth:+.1f} %); lowest PSNR against the sequential runs {closest:.1f} dB"
    )
    assert abs(growth) <= 0.10, memory
