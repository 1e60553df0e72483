"""The one loop of the small trainers (``train light-decoder``; the lab's ``synthetic autoencoder`` and ``synthetic
oracle``): N optimizer steps of a step function, with a progress bar, periodic checkpoints and an exact resume.
(The networks of the paper train in ``loop.py``, on accelerate.)

    loop = SmallLoop(out, settings, steps, resume=resume, overwrite=overwrite)   # 0. checks, before any work
    ...                                                                         # 1. networks, optimizers, data
    loss = loop.run(step, [(optimizer, schedule)], {"model": model}, {"batches": generator})  # 2. the steps
    with atomic_directory(out, overwrite=overwrite) as tmp: ...                 # 3. the output, atomically
    loop.finish()                                                               # 4. its checkpoints go

``step(i)`` (i = 0 .. steps - 1) returns the loss of step i: one tensor per (optimizer, schedule) pair, in their
order (a tuple when there are several, e.g. a VAE and its discriminator). For each pair in turn the loop then
zeroes the gradients, runs the backward of its loss, steps the optimizer and then the schedule (None: none).

Checkpoints live beside the output, ``OUT.checkpoints/step-000500.pt``: one file per checkpoint, written atomically
(the newest alone is kept), holding the step, the run's settings, the step's losses, the state of every module,
optimizer and schedule, of the named generators (the batches' draws) and of torch's global CPU RNG (the small
trainers run on the CPU). ``resume=True`` continues from the newest one, so an interrupted run ends with the same
weights, bit for bit, as an uninterrupted one. Once the output is written, ``finish`` removes the folder: a finished
run is its output (its trainer refuses to replace it without ``overwrite``), nothing is left to resume.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..config import SettingError

CHECKPOINT_EVERY = 500  # steps between checkpoints unless the caller says otherwise


def checkpoints_beside(out: str | Path) -> Path:
    """The checkpoint folder of the run that writes ``out``: ``OUT.checkpoints`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".checkpoints")


class SmallLoop:
    """A run of ``steps`` optimizer steps that writes ``out``. ``settings``: everything (JSON values) that decides
    the run's result; a checkpoint made with other settings is refused. ``every``: steps between checkpoints (and
    one after the last step; 0: none).

    Checked here, before any work (one-line errors naming the checkpoint folder): ``resume`` with a checkpoint of
    other settings (ValueError), ``resume`` of a finished run (its output exists, no checkpoint left:
    FileExistsError unless ``overwrite``), and a fresh start over an unfinished run's checkpoints (FileExistsError
    unless ``overwrite``, which then deletes them). ``start``: the step the run continues from. ``names``: the
    caller's names for ``resume`` and ``overwrite`` in those messages (a command's flags; default the parameters')."""

    def __init__(
        self,
        out: str | Path,
        settings: dict,
        steps: int,
        *,
        every: int = CHECKPOINT_EVERY,
        resume: bool = False,
        overwrite: bool = False,
        names: Mapping[str, str] | None = None,
    ):
        if every < 0:
            raise SettingError("checkpoint_every", every, "must be 0 or more (0: no checkpoints)")
        names = names or {}
        self.resume_name, overwrite_name = names.get("resume", "resume"), names.get("overwrite", "overwrite")
        self.out, self.folder, self.steps, self.every = Path(out), checkpoints_beside(out), steps, every
        self.settings = json.loads(json.dumps({"steps": steps, **settings}))  # as a checkpoint gives them back
        self.overwrite, self.checkpoint = overwrite, _newest(self.folder)
        self.start = 0
        if self.checkpoint is not None and not resume:
            if not overwrite:
                raise FileExistsError(
                    f"{self.folder} holds an unfinished run; pass {self.resume_name} to continue it or "
                    f"{overwrite_name} to start over"
                )
            self.checkpoint = None  # removed when the run starts
        elif self.checkpoint is not None:
            saved = torch.load(self.checkpoint, weights_only=True, mmap=True)
            theirs = json.loads(saved["settings"])
            if theirs != self.settings:
                key = next(k for k in sorted({*theirs, *self.settings}) if theirs.get(k) != self.settings.get(k))
                raise ValueError(
                    f"{self.resume_name}: {self.checkpoint} is another run's checkpoint ({key}={theirs.get(key)!r} "
                    f"there, {self.settings.get(key)!r} here); resume with its settings, or start over with "
                    f"{overwrite_name} (without {self.resume_name})"
                )
            self.start = int(saved["step"])
        elif resume and self.out.exists() and not overwrite:
            raise FileExistsError(
                f"{self.resume_name}: {self.out} is finished (no checkpoint left in {self.folder}); nothing to resume, "
                f"pass {overwrite_name} to train it again"
            )
        elif resume:
            print(f"{self.resume_name}: no checkpoint in {self.folder} yet; starting at step 0", file=sys.stderr)

    def run(
        self,
        step: Callable[[int], Tensor | Sequence[Tensor]],
        updates: Sequence[tuple[torch.optim.Optimizer, object | None]],
        modules: dict[str, torch.nn.Module],
        generators: dict[str, torch.Generator] | None = None,
        *,
        desc: str = "training",
        progress: bool = True,
    ) -> float:
        """Run the steps from ``start`` (restoring the checkpoint's states first); returns the last step's (first)
        loss. Call it once everything random before the loop (initial weights, a held batch) is drawn: the
        checkpoint restores the RNG states that the steps use."""
        generators = generators or {}
        last: list[float] = []
        if self.checkpoint is not None:
            last = self._restore(updates, modules, generators)
        elif self.overwrite and self.folder.exists():
            shutil.rmtree(self.folder)  # the unfinished run given up with overwrite
        bar = tqdm(total=self.steps, initial=self.start, desc=desc, disable=not progress)
        try:
            for i in range(self.start, self.steps):
                losses = step(i)
                losses = (losses,) if isinstance(losses, Tensor) else tuple(losses)
                if len(losses) != len(updates):
                    raise ValueError(f"the step gave {len(losses)} losses for {len(updates)} optimizers")
                for loss, (optimizer, schedule) in zip(losses, updates, strict=True):
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if schedule is not None:
                        schedule.step()
                last = [loss.item() for loss in losses]
                bar.update()
                bar.set_postfix(loss=f"{last[0]:.4f}")
                if self.every and ((i + 1) % self.every == 0 or i + 1 == self.steps):
                    self._save(i + 1, last, updates, modules, generators)
        except BaseException as exc:
            saved = _newest(self.folder)
            if saved is not None and not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: say what is kept
                print(f"{desc}: stopped; {saved} keeps the run, continue with {self.resume_name}", file=sys.stderr)
            raise
        finally:
            bar.close()
        return last[0]

    def finish(self) -> None:
        """The output is written: its checkpoints go."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _save(self, step: int, losses, updates, modules, generators) -> None:
        state = {
            "step": step,
            "settings": json.dumps(self.settings),
            "losses": losses,
            "modules": {name: module.state_dict() for name, module in modules.items()},
            "optimizers": [optimizer.state_dict() for optimizer, _ in updates],
            "schedules": [None if schedule is None else schedule.state_dict() for _, schedule in updates],
            "generators": {name: generator.get_state() for name, generator in generators.items()},
            "rng": torch.get_rng_state(),
        }
        path = self.folder / f"step-{step:06d}.pt"
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        for old in self.folder.glob("step-*.pt"):
            if old != path:
                old.unlink()

    def _restore(self, updates, modules, generators) -> list[float]:
        state = torch.load(self.checkpoint, weights_only=True)
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        for (optimizer, schedule), saved, saved_schedule in zip(
            updates, state["optimizers"], state["schedules"], strict=True
        ):
            optimizer.load_state_dict(saved)
            if schedule is not None:
                schedule.load_state_dict(saved_schedule)
        for name, generator in generators.items():
            generator.set_state(state["generators"][name])
        torch.set_rng_state(state["rng"])
        return list(state["losses"])


def _newest(folder: Path) -> Path | None:
    found = sorted(folder.glob("step-*.pt"))
    return found[-1] if found else None
