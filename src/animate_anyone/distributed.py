"""Parallelism, handed down: what the launcher said (``Launch``) and the processes that share one piece of work
(``Ranks``).

This is the one module that reads the launcher's environment (torchrun, ``accelerate launch``: ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ...), in ``Launch.from_env``, and only front ends launched for it call that
(``animate``, ``batch``, ``train``). Library code never asks the global process group whether to split its work:
the pipeline and the sampler take a ``Ranks`` argument and work alone by default, whatever group exists, so a
pipeline called on one process of a caller's own group (training's validation, a user's DDP job) runs alone. To
share one video across the processes of a group, a caller hands it over: ``pipe(..., ranks=Ranks.of_group())``.

A collective that waits longer than the group's timeout (``join``'s ``timeout_s``: ``collective_timeout`` of the
train and animate configs, ``DEFAULT_TIMEOUT_S`` by default) ends the command with one line (``PeerTimeout``,
raised by ``peers``) instead of waiting for ever for a process that died or hangs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

# Seconds a process waits in a collective for the others (torch's own default for gloo); under training it must
# cover the longest wait of a step: the main process's validation video and checkpoint write.
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Launch:
    """What the launcher told this process (``Launch.from_env``); ``Launch()`` is a process run alone."""

    rank: int = 0  # RANK: this process among all of the launch
    world: int = 1  # WORLD_SIZE: the processes of the launch
    local_rank: int = 0  # LOCAL_RANK: this process among those of its machine (its GPU under torchrun)
    local_world: int = 1  # LOCAL_WORLD_SIZE: the processes of this machine
    restart: int = 0  # TORCHELASTIC_RESTART_COUNT: how often torchrun restarted the group so far
    max_restarts: int = 0  # TORCHELASTIC_MAX_RESTARTS: torchrun --max-restarts
    fresh_store: bool = False  # TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1: a new rendezvous store per restart

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world or not 0 <= self.local_rank < self.local_world:
            raise ValueError(
                f"RANK={self.rank} WORLD_SIZE={self.world} LOCAL_RANK={self.local_rank} "
                f"LOCAL_WORLD_SIZE={self.local_world}: a rank must be below its world size (set by torchrun)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Launch:
        """The launcher's variables (``os.environ`` unless given); the defaults where they are not set."""
        env = os.environ if environ is None else environ

        def number(name: str, default: int) -> int:
            value = env.get(name, "")
            try:
                return int(value) if value.strip() else default
            except ValueError:
                raise ValueError(f"{name}={value!r} is not a whole number (it is set by the launcher)") from None

        world = number("WORLD_SIZE", 1)
        return cls(
            rank=number("RANK", 0),
            world=world,
            local_rank=number("LOCAL_RANK", 0),
            local_world=number("LOCAL_WORLD_SIZE", world if "LOCAL_RANK" in env else 1),
            restart=number("TORCHELASTIC_RESTART_COUNT", 0),
            max_restarts=number("TORCHELASTIC_MAX_RESTARTS", 0),
            fresh_store=env.get("TORCH_DISABLE_SHARE_RDZV_TCP_STORE") == "1",
        )

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def launched(self) -> bool:
        """Started as one of several processes."""
        return self.world > 1


@dataclass(frozen=True)
class Ranks:
    """The processes that share one piece of work, and this one's place among them; ``Ranks()``: alone.

    ``group``: the ``torch.distributed`` process group their collectives run in (None: the default group)."""

    rank: int = 0
    world: int = 1
    group: Any = None

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} is outside a world of {self.world} processes")

    @classmethod
    def of_group(cls, group: Any = None) -> Ranks:
        """This process's place in ``group`` (default: the initialised default group), which must exist."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            raise ValueError("Ranks.of_group: no torch.distributed process group is initialised in this process")
        rank, world = torch.distributed.get_rank(group), torch.distributed.get_world_size(group)
        return cls(rank, world, group)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, count: int) -> list[int]:
        """The indices ``0 .. count-1`` this process takes: ``rank, rank + world, ...``."""
        return list(range(self.rank, count, self.world))

    def all_reduce_sum(self, *tensors: torch.Tensor) -> None:
        """Sum each tensor over the processes, in place (nothing to do alone)."""
        if self.world > 1:
            for tensor in tensors:
                torch.distributed.all_reduce(tensor, group=self.group)

    def gather_to_main(self, obj) -> list | None:
        """``[obj of rank 0, obj of rank 1, ...]`` on rank 0, None elsewhere (``[obj]`` alone)."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world if self.main else None
        dst = 0 if self.group is None else torch.distributed.get_global_rank(self.group, 0)
        torch.distributed.gather_object(obj, out, dst=dst, group=self.group)
        return out


def local_device(device: torch.device, launch: Launch) -> torch.device:
    """This process's device under a launcher: ``cuda:LOCAL_RANK`` for CUDA (others unchanged)."""
    if device.type == "cuda" and launch.launched:
        device = torch.device("cuda", launch.local_rank)
        torch.cuda.set_device(device)
    return device


def join(launch: Launch, device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[Ranks, torch.device]:
    """Join the launch's processes into one group (NCCL on CUDA, gloo otherwise; once per process), so that they can
    share a video's work; returns (their ranks, this process's device). Alone: ``Ranks()`` and ``device``."""
    device = local_device(device, launch)
    if not launch.launched:
        return Ranks(), device
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return Ranks.of_group(), device


def shutdown() -> None:
    """Leave the process group if this process joined one: at exit, an undestroyed gloo group can abort the process
    ("terminate called without an active exception", seen once in 3 two-process runs of a short video)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class PeerTimeout(TimeoutError):
    """A collective that waited ``timeout_s`` for a process that never came (dead, hung, or much slower)."""


class PeerLost(ConnectionError):
    """A collective whose other side left the group (that process failed or was stopped, and said so itself)."""


def peer_failure(exc: BaseException) -> str | None:
    """ "timeout" or "lost" for a collective's error as torch.distributed, gloo or NCCL word it; None for any other
    error (a CUDA kernel's "timed out", a file's "broken pipe": not a peer's)."""
    if not isinstance(exc, RuntimeError):
        return None
    text = str(exc).lower()
    # gloo's own words in a collective that DDP runs inside the backward pass name no library: "Application
    # timeout caused pair closure" (its TCP pair, closed when the collective's timeout passed)
    distributed = isinstance(exc, torch.distributed.DistError) or any(
        word in text for word in ("gloo", "nccl", "c10d", "processgroup", "pair closure")
    )
    if not distributed:
        return None
    if "timed out" in text or "timeout" in text:
        return "timeout"
    lost = ("connection closed by peer", "connection reset by peer", "broken pipe", "remote process exited")
    return "lost" if any(word in text for word in lost) else None


@contextmanager
def peers(launch: Launch, timeout_s: float, waiting_for: str = "the other processes") -> Iterator[None]:
    """Inside the block, a collective's timeout becomes one ``PeerTimeout`` line naming the wait and the setting, and a
    peer that left the group one ``PeerLost`` line (the command then ends with exit status 2, and the launcher stops
    the others). Run alone, errors pass as they are."""
    try:
        yield
    except RuntimeError as exc:
        kind = peer_failure(exc) if launch.launched else None
        where = f"rank {launch.rank} of {launch.world}"
        said = " ".join(str(exc).split())[:200]  # torch's own words, shortened
        if kind == "timeout":
            raise PeerTimeout(
                f"{where} waited collective_timeout={timeout_s:g} s for {waiting_for}, which never came (a process "
                f"died or hangs); raise collective_timeout if it is only slow [{said}]"
            ) from None
        if kind == "lost":
            raise PeerLost(
                f"{where}: another process left the group while this one waited for {waiting_for} (it failed or was "
                f"stopped; its own line says why) [{said}]"
            ) from None
        raise
