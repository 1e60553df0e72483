"""Training on CPU with a tiny model and a toy dataset: both stages end to end, overfitting, exact resume
after SIGTERM, gradient accumulation, gradient checkpointing, and what is frozen."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from animate_anyone.cli.main import main
from animate_anyone.config import load_config
from animate_anyone.training.config import TrainConfig
from animate_anyone.training.loop import train
from stop_signal import stop_at
from toy_data import make_toy_dataset

TINY = Path(__file__).parents[1] / "configs" / "train" / "tiny.yaml"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("data") / "toy", clips=2, frames=12, size=(64, 64))


def config(tmp_path, pretrained, toy, *overrides) -> TrainConfig:
    base = [f"model.pretrained={pretrained}", f"data.root={toy}", f"output_dir={tmp_path / 'run'}"]
    return load_config(TrainConfig, TINY, [*base, *overrides])


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("reference_net", "denoising_unet", "pose_guider"):
        for key, value in load_file(model_dir / name / "diffusion_pytorch_model.safetensors").items():
            out[f"{name}.{key}"] = value
    return out


def is_motion(key: str) -> bool:
    return ".motion_modules." in key


def test_stage1_then_stage2_then_animate(tmp_path, tiny_model_dir, toy):
    start = weights(tiny_model_dir)
    stage1 = train(config(tmp_path / "s1", tiny_model_dir, toy, "max_steps=3", "log_every=2"), progress=False)
    after1 = weights(stage1)
    # The loss log: the mean loss since the previous line, every log_every steps and at the end.
    lines = (tmp_path / "s1" / "run" / "train_log.jsonl").read_text().splitlines()
    log = [json.loads(line) for line in lines]
    assert [r["step"] for r in log] == [2, 3] and all(set(r) == {"step", "loss", "lr", "time"} for r in log)
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in log)
    # Stage 1: temporal layers frozen bit for bit; ReferenceNet, UNet spatial layers and Pose Guider move.
    assert all(torch.equal(after1[k], v) for k, v in start.items() if is_motion(k))
    for prefix in ("reference_net.", "pose_guider.", "denoising_unet.down_blocks.0.attentions"):
        assert any(not torch.equal(after1[k], v) for k, v in start.items() if k.startswith(prefix)), prefix
    stage2_config = config(
        tmp_path / "s2",
        stage1,
        toy,
        "stage=2",
        "max_steps=2",
        "data.frames=4",
        "data.stride=2",
        "ema_decay=0.9",
        "validate_every=2",
        "validation_steps=1",
    )
    stage2 = train(stage2_config, progress=False)
    assert (Path(stage2_config.output_dir) / "validation" / "step-000002.mp4").is_file()
    after2 = weights(stage2)
    # Stage 2: everything but the temporal layers frozen bit for bit; the temporal layers move.
    assert all(torch.equal(after2[k], v) for k, v in after1.items() if not is_motion(k))
    assert any(not torch.equal(after2[k], v) for k, v in after1.items() if is_motion(k))
    for component in ("vae", "image_encoder", "feature_extractor", "scheduler"):
        assert (stage2 / component).is_dir()
    # The export animates.
    import PIL.Image

    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.media import iter_frames, probe_frames

    clip = read_manifest(toy)[0]
    PIL.Image.fromarray(next(iter_frames(clip.video))).save(tmp_path / "ref.png")
    out = tmp_path / "out.mp4"
    argv = ["animate", "--model", str(stage2), "--reference", str(tmp_path / "ref.png"), "--pose", str(clip.pose)]
    assert main([*argv, "--no-align", "--out", str(out), "--steps", "2", "--frames", "5", "--quiet"]) == 0
    assert probe_frames(out).num_frames == 5


def test_overfits_a_single_clip(tiny_model_dir, toy):
    """The same sample, noise and timestep at every step: the loss must fall at least 5x."""
    from animate_anyone.data.dataset import VideoPoseDataset, collate
    from animate_anyone.training.loop import training_step
    from animate_anyone.training.setup import apply_stage, load_components

    cfg = load_config(
        TrainConfig, TINY, [f"model.pretrained={tiny_model_dir}", f"data.root={toy}", "noise.reference_dropout=0"]
    )
    model, vae, encoder, processor, scheduler = load_components(cfg)
    params = apply_stage(model, 1)
    optimizer = torch.optim.Adam(params, lr=2e-3)
    batch = {**collate([VideoPoseDataset(toy, resolution=(64, 64), augment=False)[(0, 0)]]), "seed": torch.tensor([7])}
    losses = []
    for _ in range(60):
        loss = training_step(model, vae, encoder, processor, scheduler, batch, cfg)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-5:]) * 5 <= losses[0], losses[::10]


def test_gradient_accumulation_matches_a_larger_batch(tiny_model_dir, toy):
    """The loop's machinery (sampler positions, per-sample seeds, accelerate's accumulate/backward): the
    accumulated gradient of 2 micro-batches of 1 equals the gradient of one batch of 2 (with mixed
    reference dropout, so a bank from one micro-batch must not reach the other)."""
    from accelerate import Accelerator

    from animate_anyone.data.dataset import VideoPoseDataset, collate
    from animate_anyone.training.batch_sampler import ResumableBatchSampler
    from animate_anyone.training.loop import training_step
    from animate_anyone.training.setup import apply_stage, load_components

    cfg = load_config(
        TrainConfig, TINY, [f"model.pretrained={tiny_model_dir}", f"data.root={toy}", "noise.reference_dropout=0.5"]
    )
    model, vae, encoder, processor, scheduler = load_components(cfg)
    params = apply_stage(model, 1)
    dataset = VideoPoseDataset(toy, resolution=(64, 64), augment=False)
    batch = lambda keys: {**collate([dataset[k] for k in keys]), "seed": torch.tensor([k[1] for k in keys])}  # noqa: E731
    grads = []
    for batch_size, accumulation in ((2, 1), (1, 2)):
        accelerator = Accelerator(gradient_accumulation_steps=accumulation, cpu=True)
        sampler = ResumableBatchSampler(len(dataset), batch_size, cfg.seed)
        model.zero_grad(set_to_none=True)
        for micro_step in range(accumulation):
            with accelerator.accumulate(model):
                accelerator.backward(
                    training_step(model, vae, encoder, processor, scheduler, batch(sampler.batch(micro_step)), cfg)
                )
        grads.append([p.grad.clone() for p in params])
    assert [k for m in range(2) for k in ResumableBatchSampler(2, 1, 42).batch(m)] == ResumableBatchSampler(
        2, 2, 42
    ).batch(0)
    worst = max((a - b).abs().max().item() for a, b in zip(*grads))
    scale = max(g.abs().max().item() for g in grads[0])
    assert worst <= 1e-5 * scale, (worst, scale)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model_dir, toy):
    """Recomputation during backward must see the same reference bank and pose features."""
    from animate_anyone.data.dataset import VideoPoseDataset, collate
    from animate_anyone.training.loop import training_step
    from animate_anyone.training.setup import apply_stage, load_components

    cfg = load_config(
        TrainConfig, TINY, [f"model.pretrained={tiny_model_dir}", f"data.root={toy}", "noise.reference_dropout=0"]
    )
    dataset = VideoPoseDataset(toy, frames=2, resolution=(64, 64), augment=False)
    batch = {**collate([dataset[(0, 1)], dataset[(1, 2)]]), "seed": torch.tensor([3, 4])}
    grads = []
    for checkpointing in (False, True):
        model, vae, encoder, processor, scheduler = load_components(cfg)
        params = apply_stage(model, 1)
        if checkpointing:
            model.reference_net.enable_gradient_checkpointing()
            model.denoising_unet.enable_gradient_checkpointing()
        model.train()
        training_step(model, vae, encoder, processor, scheduler, batch, cfg).backward()
        grads.append([p.grad.clone() for p in params])
    worst = max((a - b).abs().max().item() for a, b in zip(*grads))
    assert worst < 1e-5, worst


def test_gradient_checkpointing_recomputes_the_temporal_layers(tiny_model_dir, toy, monkeypatch):
    """Stage 2 with temporal layers that are not identities: with checkpointing, every temporal transformer of the
    down and up blocks runs twice (forward, then recomputed in the backward; diffusers' motion blocks alone would
    keep their activations), and the temporal layers' gradients equal those without checkpointing."""
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    from animate_anyone.data.dataset import VideoPoseDataset, collate
    from animate_anyone.training.loop import training_step
    from animate_anyone.training.setup import apply_stage, load_components

    cfg = load_config(
        TrainConfig, TINY, [f"model.pretrained={tiny_model_dir}", f"data.root={toy}", "noise.reference_dropout=0"]
    )
    dataset = VideoPoseDataset(toy, frames=2, resolution=(64, 64), augment=False)
    batch = {**collate([dataset[(0, 1)], dataset[(1, 2)]]), "seed": torch.tensor([3, 4])}
    calls = []
    plain = AnimateDiffTransformer3D.forward
    monkeypatch.setattr(
        AnimateDiffTransformer3D, "forward", lambda self, *a, **k: calls.append(1) or plain(self, *a, **k)
    )
    grads, counts = [], []
    for checkpointing in (False, True):
        model, vae, encoder, processor, scheduler = load_components(cfg)
        unet = model.denoising_unet
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():  # temporal layers that act (the tiny model's are zero-initialised identities)
            for name, p in unet.named_parameters():
                if ".motion_modules." in f".{name}":
                    p.add_(0.05 * torch.randn(p.shape, generator=g))
        params = apply_stage(model, 2)
        if checkpointing:
            unet.enable_gradient_checkpointing()
        model.train()
        calls.clear()
        training_step(model, vae, encoder, processor, scheduler, batch, cfg).backward()
        counts.append(len(calls))
        grads.append([p.grad.clone() for p in params])
    in_blocks = sum(len(getattr(b, "motion_modules", [])) for b in [*unet.down_blocks, *unet.up_blocks])
    mid = len(unet.mid_block.motion_modules)
    assert in_blocks > 0 and counts == [in_blocks + mid, 2 * (in_blocks + mid)], counts
    assert max(g.abs().max() for g in grads[0]) > 1e-4  # the gradients compared are not all zero
    worst = max((a - b).abs().max().item() for a, b in zip(*grads))
    assert worst < 1e-5, worst


@pytest.mark.integration  # 11 s; in the fast tier test_distill's phased SIGTERM-resume test covers the same road
def test_sigterm_then_resume_equals_an_uninterrupted_run(tmp_path, tiny_model_dir, toy):
    steps = 8
    common = [f"max_steps={steps}", "checkpoint_every=100", "optim.lr=1e-3"]
    straight = train(config(tmp_path / "straight", tiny_model_dir, toy, *common), progress=False)
    # A run in another process, stopped with SIGTERM after a few steps ...
    cfg_args = [
        f"model.pretrained={tiny_model_dir}",
        f"data.root={toy}",
        f"output_dir={tmp_path / 'killed' / 'run'}",
        *common,
    ]
    command = [sys.executable, "-m", "animate_anyone.cli.main", "train", "stage1", "--config", str(TINY), *cfg_args]
    code, log = stop_at(command, rb"[3-7]/%d" % steps)
    assert code == 143 and "continue with --resume" in log, log
    checkpoints = sorted((tmp_path / "killed" / "run" / "checkpoints").glob("step-*"))
    stopped_at = int(checkpoints[-1].name.split("-")[1])
    assert 3 <= stopped_at < steps and not (tmp_path / "killed" / "run" / "final").exists()
    # ... and resumed here to the same length.
    resumed = train(config(tmp_path / "killed", tiny_model_dir, toy, *common), resume="auto", progress=False)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), max((a[k] - b[k]).abs().max().item() for k in a)


def test_stage1_starts_from_sd15_unet_weights(tmp_path, tiny_model_dir, toy):
    """model.sd15_unet initialises both UNets' spatial layers (strictly) and leaves temporal layers identities."""
    from diffusers import UNet2DConditionModel

    from animate_anyone.models.sizes import SIZES
    from animate_anyone.training.setup import load_components

    torch.manual_seed(1)
    sd = UNet2DConditionModel(**SIZES["tiny"].reference_net)
    sd.save_pretrained(tmp_path / "sd15" / "unet")
    cfg = load_config(
        TrainConfig,
        TINY,
        [f"model.pretrained={tiny_model_dir}", f"data.root={toy}", f"model.sd15_unet={tmp_path / 'sd15'}"],
    )
    model = load_components(cfg)[0]
    source = sd.state_dict()
    reference, denoising = model.reference_net.state_dict(), model.denoising_unet.state_dict()
    assert all(
        torch.equal(reference[k], v) for k, v in source.items() if not k.startswith(("conv_norm_out", "conv_out"))
    )
    assert all(torch.equal(denoising[k], v) for k, v in source.items())
    assert all(v.abs().max() == 0 for k, v in denoising.items() if ".motion_modules." in k and "proj_out" in k)


def test_resume_flag_followed_by_overrides(tmp_path, tiny_model_dir, toy):
    """``--resume key=value ...``: argparse hands the first override to --resume; it is an override, and
    --resume means the latest checkpoint (none yet: a fresh start)."""
    out = tmp_path / "run"
    argv = ["train", "stage1", "--config", str(TINY), "--quiet", "--resume", f"model.pretrained={tiny_model_dir}"]
    assert main([*argv, f"data.root={toy}", f"output_dir={out}", "max_steps=1"]) == 0
    assert (out / "final" / "model_index.json").is_file() and (out / "checkpoints" / "step-000001").is_dir()


def test_resume_with_nothing_to_resume_says_so_and_a_used_output_dir_needs_a_choice(
    tmp_path, tiny_model_dir, toy, capfd
):
    cfg = config(tmp_path, tiny_model_dir, toy, "max_steps=1")
    train(cfg, resume="auto", progress=False)
    assert capfd.readouterr().err.count("resume: no checkpoint in") == 1  # said once, under the parameter's name
    with pytest.raises(FileExistsError, match="holds an earlier run"):
        train(cfg, progress=False)
    before = weights(tmp_path / "run" / "final")
    train(config(tmp_path, tiny_model_dir, toy, "max_steps=1", "seed=5"), progress=False, overwrite=True)
    after = weights(tmp_path / "run" / "final")
    assert any(not torch.equal(before[k], after[k]) for k in before)  # started over (another seed)


def test_stage1_continues_a_stage2_export_with_reset_temporal(tmp_path, tiny_model_dir, toy):
    """A fine-tune of a finished (stage-2) model: stage 1 refuses its trained temporal layers unless
    model.reset_temporal=true, which zeroes their output projections (identities again) and keeps every
    other weight as loaded."""
    import shutil

    from safetensors.torch import save_file

    from animate_anyone.training.setup import apply_stage, load_components

    finished = tmp_path / "finished"
    shutil.copytree(tiny_model_dir, finished)
    path = finished / "denoising_unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(path)
    generator = torch.Generator().manual_seed(0)
    for key in state:
        if is_motion(key):  # as after stage 2: every temporal weight trained, output projections included
            state[key] = torch.randn(state[key].shape, generator=generator) * 0.1
    save_file(state, path)
    with pytest.raises(ValueError, match="model.reset_temporal=true"):
        apply_stage(load_components(config(tmp_path, finished, toy))[0], 1)
    model = load_components(config(tmp_path, finished, toy, "model.reset_temporal=true"))[0]
    apply_stage(model, 1)  # accepted now
    loaded = {f"denoising_unet.{k}": v for k, v in model.denoising_unet.state_dict().items()}
    outputs = [k for k in loaded if is_motion(k) and ".proj_out." in k]
    assert outputs and all(loaded[k].abs().max() == 0 for k in outputs)
    kept = [k for k in state if f"denoising_unet.{k}" not in outputs]
    assert all(torch.equal(loaded[f"denoising_unet.{k}"], state[k]) for k in kept)


def _damage(folder: Path, how: str) -> str:
    """Damage the largest file of a checkpoint; return its name."""
    target = max(
        (p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"), key=lambda p: p.stat().st_size
    )
    data = target.read_bytes()
    if how == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif how == "missing":
        target.unlink()
    else:  # same size, one byte changed
        target.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    return target.relative_to(folder).as_posix()


@pytest.mark.parametrize(  # 6-7 s each: one in the fast tier, the other two in the integration tier
    "how", ["truncated", *(pytest.param(how, marks=pytest.mark.integration) for how in ("missing", "changed"))]
)
def test_a_damaged_latest_checkpoint_is_passed_over(tmp_path, tiny_model_dir, toy, capfd, how):
    """Checkpoints at steps 2 and 4; the step-4 one damaged (half a file, a file gone, one byte changed): `--resume`
    says so in one line, continues from step 2, and ends bit-identical to an uninterrupted 6-step run."""
    common = ["checkpoint_every=2", "optim.lr=1e-3"]
    straight = train(config(tmp_path / "straight", tiny_model_dir, toy, "max_steps=6", *common), progress=False)
    run = config(tmp_path / "damaged", tiny_model_dir, toy, "max_steps=4", *common)
    train(run, progress=False)
    checkpoints = tmp_path / "damaged" / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-000002", "step-000004"]
    name = _damage(checkpoints / "step-000004", how)
    capfd.readouterr()
    resumed = train(
        config(tmp_path / "damaged", tiny_model_dir, toy, "max_steps=6", *common), resume="auto", progress=False
    )
    lines = [line for line in capfd.readouterr().err.splitlines() if "damaged" in line]
    assert len(lines) == 1 and "step-000004" in lines[0] and name in lines[0], lines
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_full_disk_during_a_checkpoint_fails_in_one_line_and_keeps_the_previous(
    tmp_path, tiny_model_dir, toy, monkeypatch
):
    """The second checkpoint's write finds no space: the run stops with one line naming the checkpoint and the
    intact previous one, leaves no partial folder, and the previous checkpoint still passes its manifest."""
    import errno

    import animate_anyone.training.checkpoint as checkpoint

    real, calls = checkpoint.write_manifest, []

    def full_disk(folder):
        calls.append(folder)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(folder / "optimizer.bin"))
        real(folder)

    monkeypatch.setattr(checkpoint, "write_manifest", full_disk)
    cfg = config(tmp_path, tiny_model_dir, toy, "max_steps=4", "checkpoint_every=2")
    with pytest.raises(OSError) as caught:
        train(cfg, progress=False)
    message = str(caught.value)
    assert "\n" not in message and "no space left for checkpoint" in message and "step-000004" in message
    assert "step-000002 is intact" in message and message.endswith("continue with resume")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-000002"]
    assert checkpoint.checkpoint_damage(checkpoints / "step-000002") is None


@pytest.mark.parametrize(
    "env, warned",
    [
        ({"TORCHELASTIC_MAX_RESTARTS": "2", "TORCHELASTIC_RESTART_COUNT": "0", "RANK": "0"}, True),
        ({"TORCHELASTIC_MAX_RESTARTS": "2", "TORCHELASTIC_RESTART_COUNT": "0", "RANK": "1"}, False),  # once
        ({"TORCHELASTIC_MAX_RESTARTS": "2", "TORCHELASTIC_RESTART_COUNT": "1", "RANK": "0"}, False),  # a restart
        ({"TORCHELASTIC_MAX_RESTARTS": "0", "RANK": "0"}, False),  # no restarts
        ({"TORCHELASTIC_MAX_RESTARTS": "2", "RANK": "0", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}, False),
    ],
)
def test_a_group_that_may_restart_is_told_what_restarts_need(capsys, env, warned):
    from animate_anyone.distributed import Launch
    from animate_anyone.training.loop import warn_about_restarts

    warn_about_restarts(Launch.from_env({"WORLD_SIZE": "2", **env}))  # the launcher's variables, read in one place
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == int(warned) and all("TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in line for line in lines)
