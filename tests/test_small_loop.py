"""The small trainers' one loop (``training/small_loop.py``): an exact resume, and its checks before any work."""

from __future__ import annotations

import pytest
import torch

from animate_anyone.training.small_loop import SmallLoop, checkpoints_beside

STEPS = 10


def run(out, lr: float = 1e-2, stop_at: int | None = None, **kwargs):
    """A tiny run with every kind of state the loop keeps: a layer under AdamW with a one-cycle schedule, a second one
    under SGD with momentum and no schedule (two losses, two optimizers), batches from a generator plus noise from
    torch's global RNG, a checkpoint every 3 steps. ``stop_at``: Ctrl-C during that step. Returns the weights, the
    last loss and the loop."""
    loop = SmallLoop(out, {"lr": lr, "seed": 0}, STEPS, every=3, **kwargs)
    torch.manual_seed(0)
    first, second = torch.nn.Linear(4, 2), torch.nn.Linear(2, 1)
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(first.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=STEPS, pct_start=0.05)
    other = torch.optim.SGD(second.parameters(), lr=0.1, momentum=0.9)

    def step(i: int):
        if i == stop_at:
            raise KeyboardInterrupt
        y = first(torch.randn(8, 4, generator=generator) + 0.1 * torch.randn(8, 4))
        return y.pow(2).mean(), (second(y.detach()) - 1).pow(2).mean()

    modules = {"first": first, "second": second}
    loss = loop.run(step, [(optimizer, schedule), (other, None)], modules, {"batches": generator}, progress=False)
    weights = {f"{name}.{k}": v for name, module in modules.items() for k, v in module.state_dict().items()}
    return weights, loss, loop


def test_a_stopped_then_resumed_run_equals_an_uninterrupted_one_bit_for_bit(tmp_path, capsys):
    """Stopped during step 8 (its checkpoint: step 6), then resumed: the same weights and last loss as a run that
    never stopped; the stop says where the run is kept; ``finish`` removes the checkpoints."""
    straight, straight_loss, _ = run(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "stopped", stop_at=7)
    folder = checkpoints_beside(tmp_path / "stopped")
    assert [p.name for p in folder.iterdir()] == ["step-000006.pt"]  # the newest alone
    assert "step-000006.pt keeps the run, continue with resume" in capsys.readouterr().err
    resumed, resumed_loss, loop = run(tmp_path / "stopped", resume=True)
    assert loop.start == 6 and resumed_loss == straight_loss
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    loop.finish()
    assert not folder.exists()


def test_checks_before_work(tmp_path):
    """A checkpoint of other settings is refused in one line naming it and the first difference; so is a fresh start
    over an unfinished run (unless overwrite) and the resume of a finished one (its output exists, no checkpoint)."""
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "out", stop_at=4)
    checkpoint = checkpoints_beside(tmp_path / "out") / "step-000003.pt"
    with pytest.raises(ValueError, match="another run's checkpoint") as refused:
        SmallLoop(tmp_path / "out", {"lr": 2e-2, "seed": 0}, STEPS, resume=True)
    assert str(checkpoint) in str(refused.value) and "lr=0.01 there, 0.02 here" in str(refused.value)
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="steps=10 there, 12 here"):
        SmallLoop(tmp_path / "out", {"lr": 1e-2, "seed": 0}, 12, resume=True)
    with pytest.raises(FileExistsError, match="holds an unfinished run; pass resume to continue it or overwrite"):
        SmallLoop(tmp_path / "out", {"lr": 1e-2, "seed": 0}, STEPS)
    names = {"resume": "--resume", "overwrite": "--overwrite"}  # a command's flags, as it passes them
    with pytest.raises(FileExistsError, match="pass --resume to continue it or --overwrite to start over$"):
        SmallLoop(tmp_path / "out", {"lr": 1e-2, "seed": 0}, STEPS, names=names)
    assert SmallLoop(tmp_path / "out", {"lr": 1e-2, "seed": 0}, STEPS, resume=True).start == 3
    _, _, loop = run(tmp_path / "out", overwrite=True)  # starts over: the unfinished run's checkpoints go first
    assert loop.start == 0 and [p.name for p in loop.folder.iterdir()] == ["step-000010.pt"]
    (tmp_path / "out").mkdir()  # its output, written
    loop.finish()
    with pytest.raises(FileExistsError, match="is finished .* nothing to resume"):
        SmallLoop(tmp_path / "out", {"lr": 1e-2, "seed": 0}, STEPS, resume=True)
