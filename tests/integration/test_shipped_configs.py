"""Every shipped configuration in the mode users run it (issue 40): each ``configs/train/*.yaml`` on two processes
(torchrun, gloo) with validation, checkpoints and ``--resume`` on, and each ``configs/animate/*.yaml`` through
``animate`` and ``batch`` under torchrun. The configs are shrunk to the tiny networks by ``key=value`` overrides
only, computed from each config's own values, so a new file in those folders is covered without editing this test.
A collective that waits (the hang of a validation on the main process alone) fails in ``collective_timeout`` with one
line, not at the test's time limit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from animate_anyone.config import load_config
from animate_anyone.jobs.animate_config import AnimateConfig
from animate_anyone.training.config import TrainConfig

pytestmark = pytest.mark.integration
CONFIGS = Path(__file__).parents[2] / "configs"
TRAIN_CONFIGS = sorted(CONFIGS.glob("train/*.yaml"))
ANIMATE_CONFIGS = sorted(CONFIGS.glob("animate/*.yaml"))
WAIT = "collective_timeout=120"  # a hang ends in 2 minutes with one line naming what was waited for
CLI = ["-m", "animate_anyone.cli.main"]


def torchrun(n: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"]


def run(command, timeout=600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


def test_every_shipped_config_is_found():
    assert {p.name for p in TRAIN_CONFIGS} >= {"stage1.yaml", "stage2.yaml", "distill.yaml", "tiny.yaml"}
    assert {p.name for p in ANIMATE_CONFIGS} >= {"default.yaml", "long_video_gpu.yaml"}


# -- training -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from toy_data import make_toy_dataset

    return make_toy_dataset(tmp_path_factory.mktemp("data") / "toy", clips=4, frames=8, size=(64, 64))


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """The weight files the full-size configs start from, at the tiny networks' shapes and in the formats users have:
    an SD-1.5-style diffusers UNet folder (``model.sd15_unet``) and a Moore/AnimateDiff motion module with
    temporal layers that are not zero (``model.motion_module``)."""
    from diffusers import UNet2DConditionModel

    from animate_anyone.convert.moore import convert_motion_module
    from animate_anyone.convert.tables import target_shapes
    from animate_anyone.model_dir import ModelDirectory

    folder = tmp_path_factory.mktemp("weights")
    networks = ModelDirectory(tiny_model_dir).load_networks()
    torch.manual_seed(0)  # an SD-1.5-style UNet of the tiny shape, every tensor real (ReferenceNet's head is unused)
    UNet2DConditionModel.from_config(networks.reference_net.config).save_pretrained(folder / "sd15" / "unet")
    unet = networks.denoising_unet
    generator = torch.Generator().manual_seed(0)
    ours = {
        k: torch.randn(v.shape, generator=generator) * 0.02
        for k, v in unet.state_dict().items()
        if ".motion_modules." in k
    }
    moore = moore_motion_module(ours)
    torch.save(moore, folder / "motion_module.pth")
    converted = convert_motion_module(moore, target_shapes(unet))  # the stand-in converts back to exactly ours
    assert converted.keys() == ours.keys() and all(torch.equal(converted[k], ours[k]) for k in ours)
    return {"sd15_unet": folder / "sd15", "motion_module": folder / "motion_module.pth"}


def moore_motion_module(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our temporal-layer names -> Moore-AnimateAnyone / AnimateDiff ones (the inverse of ``MOTION_MODULE_RULES``;
    AnimateDiff keeps one positional table per attention block)."""
    out = {}
    for key, value in ours.items():
        name = re.sub(r"(\.motion_modules\.\d+)\.", r"\1.temporal_transformer.", key)
        for ours_part, theirs in ((".attn1.", ".attention_blocks.0."), (".attn2.", ".attention_blocks.1.")):
            name = name.replace(ours_part, theirs)
        for ours_part, theirs in ((".norm1.", ".norms.0."), (".norm2.", ".norms.1."), (".norm3.", ".ff_norm.")):
            name = name.replace(ours_part, theirs)
        if name.endswith(".pos_embed.pe"):
            for block in (0, 1):
                out[name.replace(".pos_embed.pe", f".attention_blocks.{block}.pos_encoder.pe")] = value.clone()
        else:
            out[name] = value
    return out


def shrink(config: TrainConfig, model: Path, toy: Path, out: Path, stand_ins: dict[str, Path]) -> list[str]:
    """Overrides that put ``config`` on the tiny networks, the toy data (64x64, 8-frame clips) and short steps; every
    other setting (stage, precision, checkpointing, EMA, losses, logger, ...) stays as shipped. Validation and
    checkpoints every 2 steps, two kept; no 8-bit Adam (bitsandbytes needs CUDA)."""
    overrides = [
        f"model.pretrained={model}",
        f"data.root={toy}",
        f"output_dir={out}",
        "data.resolution=[64, 64]",
        f"data.frames={min(config.data.frames, 4)}",
        "data.stride=1",
        "batch_size=1",
        "checkpoint_every=2",
        "checkpoints_kept=2",
        "optim.adam_8bit=false",  # bitsandbytes is CUDA only
        "validate_every=2",
        "validation_steps=2",
        "log_every=1",
        WAIT,
    ]
    for key in ("sd15_unet", "motion_module"):
        if getattr(config.model, key):
            overrides.append(f"model.{key}={stand_ins[key]}")
    if config.distill.teacher:
        overrides.append(f"distill.teacher={model}")
    return overrides


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.name)
def test_every_train_config_on_two_processes_with_validation_checkpoints_and_resume(
    path, tmp_path, tiny_model_dir, toy, stand_ins
):
    from animate_anyone.media import probe_frames
    from animate_anyone.model_dir import ModelDirectory

    config = load_config(TrainConfig, path)
    stage = "stage1" if config.stage == 1 else "stage2" if config.stage == 2 else "distill"
    out = tmp_path / "run"
    command = [*torchrun(2), *CLI, "train", stage, "--config", str(path), "--quiet"]
    overrides = shrink(config, tiny_model_dir, toy, out, stand_ins)
    # --resume from the start, as under a launcher that may restart the group (docs/distributed.md)
    first = run([*command, "--resume", *overrides, "max_steps=2"])
    assert first.stderr.count("--resume: no checkpoint in") == 1  # said once, by the main process
    resumed = run([*command, "--resume", *overrides, "max_steps=4"])  # continues from step 2's checkpoint
    assert "no checkpoint" not in resumed.stderr
    videos = sorted(p.name for p in (out / "validation").iterdir())
    assert videos == ["step-000002.mp4", "step-000004.mp4"], videos
    frames = min(config.data.frames, 4)
    assert all(probe_frames(out / "validation" / v).num_frames == frames for v in videos)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    assert json.loads((out / "checkpoints" / "step-000004" / "trainer.json").read_text())["step"] == 4
    final = ModelDirectory(out / "final").check()
    assert not final.random_weights
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]  # the resumed run continued the same log
    assert resumed.stdout.count(f"wrote {out / 'final'}") == 1  # said once, by the main process


# -- inference ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def motion(tmp_path_factory) -> dict[str, Path]:
    """A held-out reference and 30 frames of its motion as rendered skeletons (two windows of 24)."""
    from PIL import Image

    from animate_anyone.media import write_video
    from animate_anyone_lab.demo import demo_clip

    folder = tmp_path_factory.mktemp("motion")
    reference, _, poses = demo_clip(1, 30, 64)
    Image.fromarray(reference).save(folder / "ref.png")
    write_video(folder / "pose.mp4", list(poses), 8.0)
    return {"reference": folder / "ref.png", "pose": folder / "pose.mp4"}


@pytest.mark.parametrize("path", ANIMATE_CONFIGS, ids=lambda p: p.name)
def test_every_animate_config_under_torchrun_in_animate_and_batch(path, tmp_path, motion):
    """The packaged miniature model (trained temporal layers: a window split shows), 30 frames, 4 steps: two processes
    write what one writes (PNG frames, within 2 levels), and ``batch`` shares its jobs between them."""
    from animate_anyone.assets import packaged_model
    from animate_anyone.media import iter_frames

    config = load_config(AnimateConfig, path)
    model = str(packaged_model())
    animate = ["animate", "--config", str(path), "--model", model, "--quiet", "steps=4", WAIT]
    animate += ["--reference", str(motion["reference"]), "--pose", str(motion["pose"])]
    run([sys.executable, *CLI, *animate, "--out", str(tmp_path / "one")])
    two = run([*torchrun(2), *CLI, *animate, "--out", str(tmp_path / "two")])
    assert two.stdout.count("wrote ") == 1
    one_frames = np.stack(list(iter_frames(tmp_path / "one"))).astype(int)
    two_frames = np.stack(list(iter_frames(tmp_path / "two"))).astype(int)
    assert one_frames.shape == two_frames.shape == (30, 64, 64, 3)
    assert np.abs(one_frames - two_frames).max() <= 2, (path.name, config.optimisations)

    jobs = tmp_path / "jobs.jsonl"
    lines = [
        {"id": f"j{i}", "reference": str(motion["reference"]), "pose": str(motion["pose"]), "seed": i} for i in range(3)
    ]
    jobs.write_text("".join(json.dumps({**line, "frames": 12, "format": "png"}) + "\n" for line in lines))
    batch = ["batch", str(jobs), "--out", str(tmp_path / "batch"), "--config", str(path), "--model", model]
    run([*torchrun(2), *CLI, *batch, "--quiet", "steps=4"])
    summary = json.loads((tmp_path / "batch" / "summary.json").read_text())
    assert summary["counts"] == {"done": 3, "skipped": 0, "failed": 0}
    assert {r["rank"] for r in summary["records"]} == {0, 1}
    assert all(len(list((tmp_path / "batch" / "videos" / f"j{i}").iterdir())) == 12 for i in range(3))


def test_the_pipeline_on_rank_0_alone_inside_a_two_process_group(tmp_path):
    """A caller's own two-process group (as in training's validation or a user's DDP job): rank 0 calls the pipeline
    alone and gets the frames one process gets, bit for bit; rank 1 never calls it."""
    helper = Path(__file__).with_name("pipeline_on_rank_0.py")
    run([sys.executable, str(helper), str(tmp_path / "alone")], timeout=300)
    run([*torchrun(2), str(helper), str(tmp_path / "group")], timeout=300)
    alone, group = np.load(tmp_path / "alone" / "frames.npy"), np.load(tmp_path / "group" / "frames.npy")
    assert alone.shape == (12, 64, 64, 3) and np.array_equal(alone, group)
    assert json.loads((tmp_path / "group" / "rank-1.json").read_text()) == {"world": 2, "called": False}
