"""Parallelism is handed down (issue 40): one module reads the launcher's environment, the library splits work only
across the ranks a caller hands it, and a collective that waits too long ends in one line. The multi-process
behaviour itself is tested in tests/integration (test_shipped_configs, test_distributed*)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from animate_anyone.distributed import Launch, PeerLost, PeerTimeout, Ranks, peers

ROOT = Path(__file__).parents[1]
LAUNCHER_VARIABLES = r"(LOCAL_)?RANK|(LOCAL_)?WORLD_SIZE|TORCHELASTIC_\w+|TORCH_DISABLE_SHARE_RDZV_TCP_STORE"
READS = [
    re.compile(rf"environ(\.get)?[\[(]\s*[\"']({LAUNCHER_VARIABLES})[\"']"),  # os.environ["RANK"], .get("RANK", ...)
    re.compile(rf"getenv\(\s*[\"']({LAUNCHER_VARIABLES})[\"']"),
    re.compile(r"\b(torch\.)?distributed\.(get_rank|get_world_size|is_initialized)\("),  # the global group's state
    re.compile(r"\bdist\.(get_rank|get_world_size|is_initialized)\("),
]


def test_one_module_reads_the_launchers_environment_and_the_global_group():
    offenders = []
    for path in sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "integrations").rglob("*.py")]):
        if path.name == "distributed.py" and path.parent.name == "animate_anyone":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(pattern.search(line) for pattern in READS):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "read the launcher through animate_anyone.distributed.Launch:\n" + "\n".join(offenders)


def test_launch_reads_the_launchers_variables_once_and_checks_them():
    assert Launch.from_env({}) == Launch()  # alone
    torchrun = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    launch = Launch.from_env({**torchrun, "TORCHELASTIC_RESTART_COUNT": "1", "TORCHELASTIC_MAX_RESTARTS": "2"})
    assert (launch.rank, launch.world, launch.local_rank, launch.local_world) == (3, 4, 1, 2)
    assert launch.launched and not launch.main and (launch.restart, launch.max_restarts) == (1, 2)
    # a launcher that does not say LOCAL_WORLD_SIZE: the whole launch may be on this machine (the memory check's count)
    assert Launch.from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}).local_world == 2
    assert not launch.fresh_store and Launch.from_env({"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}).fresh_store
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        Launch.from_env({"WORLD_SIZE": "two"})
    with pytest.raises(ValueError, match="RANK=2 WORLD_SIZE=2"):
        Launch.from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_ranks_default_to_one_process_and_split_windows_round_robin():
    alone = Ranks()
    assert alone.main and alone.mine(5) == [0, 1, 2, 3, 4] and alone.gather_to_main("x") == ["x"]
    assert Ranks(1, 3).mine(8) == [1, 4, 7] and not Ranks(1, 3).main
    with pytest.raises(ValueError, match="rank 2 is outside a world of 2"):
        Ranks(2, 2)


GLOO_TIMEOUT = "[../gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 1800000ms for recv operation to complete"
GLOO_LOST = "[../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:41884. This is typically..."


def test_a_collective_that_waits_too_long_or_loses_its_peer_is_one_line():
    launch = Launch(rank=1, world=2)
    with pytest.raises(PeerTimeout) as caught:
        with peers(launch, 90, "the main process's validation video"):
            raise RuntimeError(GLOO_TIMEOUT)
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, OSError)  # the CLI's one line, exit 2
    assert "rank 1 of 2 waited collective_timeout=90 s for the main process's validation video" in message
    assert "Timed out waiting 1800000ms" in message  # torch's own words kept
    with pytest.raises(PeerTimeout, match="rank 1 of 2 waited collective_timeout=90 s"):  # in DDP's backward
        with peers(launch, 90):
            raise RuntimeError("Application timeout caused pair closure")
    with pytest.raises(PeerLost, match="rank 1 of 2: another process left the group"):
        with peers(launch, 90):
            raise RuntimeError(GLOO_LOST)
    with pytest.raises(RuntimeError, match="Timed out"):  # alone, nothing is a peer's: the error as it was
        with peers(Launch(), 90):
            raise RuntimeError(GLOO_TIMEOUT)
    for other in ("shape mismatch", "CUDA error: the launch timed out and was terminated", "[Errno 32] Broken pipe"):
        with pytest.raises(RuntimeError, match=re.escape(other)):  # not a collective's error: as it was
            with peers(launch, 90):
                raise RuntimeError(other)
