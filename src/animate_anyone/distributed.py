"""The process-group policy of inference: one video (or a batch of jobs) across the processes of a launcher.

Under ``torchrun --nproc-per-node N`` (or ``accelerate launch``) every process runs the same command;
``init_from_env`` joins them into one ``torch.distributed`` group (NCCL on CUDA, gloo on CPU) and picks each
process's device (``cuda:LOCAL_RANK``). Run alone (no ``WORLD_SIZE`` > 1 in the environment) nothing is
initialised and ``current()`` is rank 0 of 1, so every caller has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, count: int) -> list[int]:
        """The indices ``0 .. count-1`` this process takes: ``rank, rank + world, ...``."""
        return list(range(self.rank, count, self.world))


def current() -> Ranks:
    """This process's place in the initialised group (rank 0 of 1 when there is none)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return Ranks(torch.distributed.get_rank(), torch.distributed.get_world_size())
    return Ranks()


def local_device(device: torch.device) -> torch.device:
    """This process's device under a launcher: ``cuda:LOCAL_RANK`` for CUDA (others unchanged)."""
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device


def init_from_env(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the launcher's group when ``WORLD_SIZE`` > 1 (once), so that the processes share each video's work;
    returns (ranks, this process's device). Batch jobs do not join: each process runs its own videos."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    device = local_device(device)
    if world <= 1:
        return current(), device
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return current(), device


def shutdown() -> None:
    """Leave the process group if this process joined one: at exit, an undestroyed gloo group can abort the process
    ("terminate called without an active exception", seen once in 3 two-process runs of a short video)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def all_reduce_sum(*tensors: torch.Tensor) -> None:
    """Sum each tensor over the group, in place (nothing to do alone)."""
    if current().world > 1:
        for tensor in tensors:
            torch.distributed.all_reduce(tensor)


def gather_to_main(obj):
    """``[obj of rank 0, obj of rank 1, ...]`` on rank 0, None elsewhere (``[obj]`` alone)."""
    ranks = current()
    if ranks.world == 1:
        return [obj]
    out = [None] * ranks.world if ranks.main else None
    torch.distributed.gather_object(obj, out, dst=0)
    return out
