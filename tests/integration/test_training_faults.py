"""Training that heals itself, with real faults: a worker of a torchrun group killed with SIGKILL (torchrun restarts
the group, `--resume` picks up the latest complete checkpoint, and the result is bit-identical to a run that was
never interrupted), a truncated file in the newest checkpoint (passed over in one line, training continues from the
one before), and a disk that fills up during a checkpoint (a real tmpfs in a private mount namespace: one line, no
partial folder, and the previous checkpoint still loads)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from animate_anyone.training.checkpoint import checkpoint_damage

from .test_distributed_training import max_difference, run, train_command, weights

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from toy_data import make_toy_dataset

    return make_toy_dataset(tmp_path_factory.mktemp("data") / "toy", clips=4, frames=8, size=(64, 64))


def logged_steps(out: Path) -> list[int]:
    """The step of every line of train_log.jsonl (log_every=1: one line per step, appended across restarts)."""
    return [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def last_logged(out: Path) -> int:
    """The last step in train_log.jsonl so far (0 before the first line; a line being written is not read)."""
    try:
        lines = (out / "train_log.jsonl").read_text().split("\n")[:-1]  # the text after the last newline may be cut
    except FileNotFoundError:
        return 0
    return json.loads(lines[-1])["step"] if lines else 0


def assert_equal_weights(a_dir: Path, b_dir: Path) -> None:
    a, b = weights(a_dir), weights(b_dir)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), f"max |difference| {max_difference(a, b):.2e}"


# 1. SIGKILL to one worker of a torchrun group that may restart once.


def children(pid: int) -> list[int]:
    """The processes started by ``pid`` (any of its threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            pass
    return found


def worker_of_rank(launcher: int, rank: int) -> int:
    for pid in children(launcher):
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environment:
            return pid
    raise AssertionError(f"no worker with RANK={rank} among the launcher's children {children(launcher)}")


def test_a_killed_worker_restarts_the_group_which_resumes_bit_identically(tmp_path, tiny_model_dir, toy):
    steps, every = 40, 4
    common = [f"max_steps={steps}", f"checkpoint_every={every}", "batch_size=1"]
    run(train_command(2, "stage1", tiny_model_dir, toy, tmp_path / "straight", *common))

    out = tmp_path / "healed"
    command = train_command(2, "stage1", tiny_model_dir, toy, out, *common, "log_every=1", resume=True)
    at = command.index("--standalone") + 1
    command[at:at] = ["--max-restarts=1", "--monitor-interval=1"]
    # torch 2.13's torchrun shares its rendezvous TCPStore with the workers and keeps the same one for a restarted
    # group without a new key prefix: the new rank 0 then reads the killed worker's gloo address and the restart
    # fails ("Gloo connectFullMesh failed ... Connection refused"). Opting out of the sharing gives every round a
    # fresh store. LOGLEVEL=INFO: torchrun says when it restarts the group.
    environment = {**os.environ, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1", "LOGLEVEL": "INFO"}
    log_path = tmp_path / "launcher.log"
    with log_path.open("w") as log:
        launcher = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:
        # Kill once a checkpoint is complete (a .partial one does not match) and a step after it is logged, so
        # that the restarted group has steps to redo.
        deadline = time.monotonic() + 300
        while True:
            assert launcher.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint after 300 s:\n" + log_path.read_text()[-3000:]
            complete = sorted((out / "checkpoints").glob("step-*[0-9]"))
            if complete and last_logged(out) > int(complete[-1].name.split("-")[1]):
                break
            time.sleep(0.02)
        victim = worker_of_rank(launcher.pid, 0)  # the main process: it checks, renames and writes the log
        os.kill(victim, signal.SIGKILL)
        seen = int(complete[-1].name.split("-")[1])
        assert not (out / "final").exists() and seen < steps  # the kill landed while training was still going
        code = launcher.wait(timeout=600)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    log = log_path.read_text()
    assert code == 0, log[-3000:]
    assert f"exitcode: -9) local_rank: 0 (pid: {victim})" in log, log[-3000:]
    assert "will restart worker group" in log, log[-3000:]
    assert log.count("starting at step 0") == 1, log[-3000:]  # the first group only: the restarted one resumed
    # The log shows where the restarted group began: once, right after a checkpoint no older than the one seen.
    logged = logged_steps(out)
    assert logged.count(1) == 1 and logged[-1] == steps and set(logged) == set(range(1, steps + 1)), logged
    restarts = [after for before, after in zip(logged, logged[1:]) if after <= before]
    assert len(restarts) == 1 and (restarts[0] - 1) % every == 0 and restarts[0] - 1 >= seen, logged
    print(f"killed rank 0 (pid {victim}) after checkpoint step {seen}; logged steps {logged}")
    assert_equal_weights(tmp_path / "straight" / "final", out / "final")
    assert not list((out / "checkpoints").glob("*.partial"))


# 2. A truncated file in the newest checkpoint.


def test_a_truncated_file_in_the_newest_checkpoint_is_passed_over_in_one_line(tmp_path, tiny_model_dir, toy):
    common = ["checkpoint_every=2", "batch_size=1", "log_every=1"]
    run(train_command(2, "stage1", tiny_model_dir, toy, tmp_path / "straight", "max_steps=6", *common))
    out = tmp_path / "damaged"
    run(train_command(2, "stage1", tiny_model_dir, toy, out, "max_steps=4", *common))
    checkpoints = out / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-000002", "step-000004"]
    damaged = checkpoints / "step-000004" / "model.safetensors"
    os.truncate(damaged, damaged.stat().st_size // 2)

    resumed = run(train_command(2, "stage1", tiny_model_dir, toy, out, "max_steps=6", *common, resume=True))
    lines = [line for line in resumed.stderr.splitlines() if line.startswith("--resume:")]
    assert len(lines) == 1, resumed.stderr[-3000:]
    assert "step-000004" in lines[0] and "model.safetensors" in lines[0] and "damaged" in lines[0], lines
    assert "Traceback" not in resumed.stderr
    assert logged_steps(out) == [1, 2, 3, 4, 3, 4, 5, 6]  # the second run began after step 2
    assert (out / "final").is_dir()
    assert_equal_weights(tmp_path / "straight" / "final", out / "final")


# 3. A real full disk during a checkpoint.

# Mount a tmpfs of $3 at $1 in a private mount namespace (gone with the process: nothing to unmount), run the
# command after the first three arguments, copy what the tmpfs then holds to $2 (normal disk), and exit with the
# command's status.
IN_A_SMALL_TMPFS = """
out=$1 kept=$2 size=$3
shift 3
mount -t tmpfs -o "size=$size" tmpfs "$out" || exit 97
"$@"
status=$?
cp -a "$out/." "$kept/"
exit $status
"""


def private_mount_namespace(scratch: Path) -> list[str]:
    """``unshare`` arguments under which this process can mount a tmpfs (as root, or as root of a user
    namespace); skips the test when neither works."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare (util-linux) to make a private mount namespace")
    scratch.mkdir()
    tried = []
    for prefix in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        probe = subprocess.run(
            [*prefix, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(scratch)], capture_output=True, text=True
        )
        if probe.returncode == 0:
            return prefix
        tried.append(f"{' '.join(prefix)}: {probe.stderr.strip()}")
    pytest.skip(f"cannot mount a tmpfs in a private mount namespace ({'; '.join(tried)})")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model_dir, toy):
    """A one-process run of 4 steps on normal disk with checkpoints at steps 2 and 4: the size of a checkpoint's
    files, and the weights a run resumed from step 2 must end with."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    run(train_command(1, "stage1", tiny_model_dir, toy, out, "max_steps=4", "checkpoint_every=2", "batch_size=1"))
    return out


@pytest.mark.parametrize("failing", ["optimizer.bin", "model.safetensors"])
def test_a_full_disk_during_a_checkpoint_fails_in_one_line_and_the_previous_one_resumes(
    failing, tmp_path, tiny_model_dir, toy, uninterrupted
):
    """The tmpfs holds one checkpoint and half of ``failing`` (torch.save's optimizer state, or the safetensors
    weights written first) of the next: each library meets the full disk in its own way."""
    prefix = private_mount_namespace(tmp_path / "probe")
    first = uninterrupted / "checkpoints" / "step-000002"
    sizes = {p.name: p.stat().st_size for p in first.iterdir()}
    written_before = {"model.safetensors": 0, "optimizer.bin": sizes["model.safetensors"]}[failing]
    room = sum(sizes.values()) + written_before + sizes[failing] // 2
    out, kept = tmp_path / "full", tmp_path / "kept"
    out.mkdir()
    kept.mkdir()
    command = train_command(1, "stage1", tiny_model_dir, toy, out, "max_steps=4", "checkpoint_every=2", "batch_size=1")
    script = ["sh", "-c", IN_A_SMALL_TMPFS, "sh", str(out), str(kept), f"{room // 1024}k"]
    result = subprocess.run([*prefix, *script, *command], capture_output=True, text=True, timeout=600)
    assert result.returncode not in (0, 97), result.stderr[-3000:]
    assert not list(out.iterdir())  # the tmpfs went with its namespace; nothing was written to the disk below

    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr[-3000:]
    error = errors[0]
    assert error.startswith("animate-anyone train stage1: error: no space left for checkpoint"), error
    assert str(out / "checkpoints" / "step-000004") in error, error
    assert f"the previous checkpoint {out / 'checkpoints' / 'step-000002'} is intact" in error, error
    assert "--resume" in error
    assert result.returncode == 2

    survivors = kept / "checkpoints"
    assert sorted(p.name for p in survivors.iterdir()) == ["step-000002"]  # no step-000004.partial
    assert checkpoint_damage(survivors / "step-000002") is None
    # The survivor really loads: a fresh output_dir with only it resumes at step 2 and ends where the
    # uninterrupted run ended.
    resumed = tmp_path / "resumed"
    shutil.copytree(survivors, resumed / "checkpoints")
    extra = ["max_steps=4", "checkpoint_every=2", "batch_size=1", "log_every=1"]
    run(train_command(1, "stage1", tiny_model_dir, toy, resumed, *extra, resume=True))
    assert logged_steps(resumed) == [3, 4]
    assert_equal_weights(uninterrupted / "final", resumed / "final")
