"""Consistency distillation (``train distill``): the parameterisation matches the exported LCMScheduler, the
loss's target and the target network's EMA match an independent recomputation, the stage trains what it should,
resumes bit for bit after SIGTERM, and exports a student that ``animate`` runs with its own preset (4 steps, no
guidance)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from animate_anyone.config import load_config
from animate_anyone.training.config import TrainConfig
from animate_anyone.training.loop import train
from animate_anyone.training.losses import consistency_loss, x0_and_noise
from stop_signal import stop_at
from toy_data import make_toy_dataset

TINY = Path(__file__).parents[1] / "configs" / "train" / "tiny.yaml"
DISTILL = ["stage=distill", "data.frames=4", "distill.solver_steps=10", "distill.guidance=2.0", "optim.lr=1e-3"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("data") / "toy", clips=2, frames=8, size=(64, 64))


def config(out, pretrained, toy, *overrides) -> TrainConfig:
    base = [f"model.pretrained={pretrained}", f"data.root={toy}", f"output_dir={out}", *DISTILL]
    return load_config(TrainConfig, TINY, [*base, *overrides])


def weights(model_dir: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(model_dir / name / "diffusion_pytorch_model.safetensors")


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon"])
def test_x0_and_noise_invert_the_forward_process(prediction_type):
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(prediction_type=prediction_type, rescale_betas_zero_snr=prediction_type != "epsilon")
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 2, 5, 5, generator=g), torch.randn(3, 4, 2, 5, 5, generator=g)
    t = torch.tensor([0, 500, 999 if prediction_type != "epsilon" else 990])
    noisy = scheduler.add_noise(x0, eps, t)
    pred = eps if prediction_type == "epsilon" else scheduler.get_velocity(x0, eps, t)
    got_x0, got_eps = x0_and_noise(pred, noisy, scheduler.alphas_cumprod, t, prediction_type)
    torch.testing.assert_close(got_x0, x0, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(got_eps, eps, atol=2e-4, rtol=1e-4)


def test_consistency_loss():
    a, b = torch.zeros(2, 3), torch.full((2, 3), 3.0)
    assert consistency_loss(a, b, 0.0).item() == pytest.approx(9.0)
    assert consistency_loss(a, b, 0.001).item() == pytest.approx((9 + 1e-6) ** 0.5 - 0.001)
    assert consistency_loss(a, a, 0.001).item() == 0.0


def test_student_output_is_what_the_lcm_scheduler_samples(tiny_model_dir, toy, tmp_path):
    """The trained quantity c_skip x_t + c_out x0 equals LCMScheduler.step's denoised sample: the exported
    scheduler samples exactly the function the student was trained to be."""
    from diffusers import DDIMScheduler

    from animate_anyone.models import AnimateAnyone  # noqa: F401  (the model classes are importable)
    from animate_anyone.training.distill import ConsistencyDistillation
    from animate_anyone.training.setup import load_components

    cfg = config(tmp_path / "run", tiny_model_dir, toy)
    model, *_, scheduler = load_components(cfg)
    assert isinstance(scheduler, DDIMScheduler)
    distill = ConsistencyDistillation(cfg, model, scheduler, "cpu")
    lcm = distill.student_scheduler
    lcm.set_timesteps(4)
    g = torch.Generator().manual_seed(0)
    sample, pred = torch.randn(1, 4, 2, 8, 8, generator=g), torch.randn(1, 4, 2, 8, 8, generator=g)
    for t in lcm.timesteps:
        lcm._step_index = None  # each timestep on its own
        lcm._init_step_index(t)
        _, denoised = lcm.step(pred, t, sample, generator=torch.Generator().manual_seed(1), return_dict=False)
        ours = distill.boundary(pred, sample, torch.tensor([int(t)]))
        torch.testing.assert_close(ours, denoised, atol=1e-5, rtol=1e-5)
    assert set(lcm.timesteps.tolist()) <= set(distill.grid.tolist())  # inference steps lie on the training grid


def test_distill_trains_the_unet_and_exports_a_student_that_animate_runs(tmp_path, tiny_model_dir, toy):
    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.media import iter_frames
    from animate_anyone.pipelines import AnimateAnyonePipeline

    student = train(config(tmp_path / "run", tiny_model_dir, toy, "max_steps=2", "log_every=1"), progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["loss"] > 0 for r in log)
    # The denoising UNet moves, spatial and temporal layers; ReferenceNet and Pose Guider stay the teacher's.
    before, after = weights(tiny_model_dir, "denoising_unet"), weights(student, "denoising_unet")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(".motion_modules." in k for k in changed) and any("attentions" in k for k in changed)
    for name in ("reference_net", "pose_guider"):
        a, b = weights(tiny_model_dir, name), weights(student, name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    index = json.loads((student / "model_index.json").read_text())
    assert index["default_preset"] == "student" and index["scheduler"][1] == "LCMScheduler"
    # The pipeline runs it with the student preset by default: 4 steps, the conditional row only.
    pipe = AnimateAnyonePipeline.from_pretrained(student)
    pipe.set_progress_bar_config(disable=True)
    clip = read_manifest(toy)[0]
    import PIL.Image

    reference = PIL.Image.fromarray(next(iter_frames(clip.video)))
    poses = list(iter_frames(clip.video, count=4))
    run = lambda seed: pipe(reference, poses, generator=torch.Generator().manual_seed(seed), output_type="np")  # noqa: E731
    out = run(0)
    assert out.frames.shape[0] == 4 and out.stats["full_rows"] == 4 and out.stats["sampling"].guidance == 1.0
    assert (out.frames == run(0).frames).all() and not (out.frames == run(1).frames).all()
    # ... and so does the command line.
    from animate_anyone.cli.main import main

    reference.save(tmp_path / "ref.png")
    argv = ["animate", "--model", str(student), "--reference", str(tmp_path / "ref.png"), "--pose", str(clip.video)]
    assert main([*argv, "--out", str(tmp_path / "out.gif"), "--frames", "3", "--quiet"]) == 0


@pytest.mark.parametrize(
    "terms",
    [
        pytest.param([], marks=pytest.mark.integration),  # 10 s; the phased run below covers every piece of it
        ["distill.phases=2", "distill.motion_weight=1", "distill.temporal_weight=1", "distill.real_temporal_weight=1"],
    ],
    ids=["plain", "phased-with-every-term"],
)
def test_distill_sigterm_then_resume_equals_an_uninterrupted_run(tmp_path, tiny_model_dir, toy, terms):
    """Bit for bit, the target network included (it is part of the checkpoint); also a phased run with every
    optional loss term."""
    steps = 6
    common = [f"max_steps={steps}", "checkpoint_every=100", *terms]
    straight = train(config(tmp_path / "straight", tiny_model_dir, toy, *common), progress=False)
    out = tmp_path / "killed"
    args = [f"model.pretrained={tiny_model_dir}", f"data.root={toy}", f"output_dir={out}", *DISTILL[1:], *common]
    command = [sys.executable, "-m", "animate_anyone.cli.main", "train", "distill", "--config", str(TINY), *args]
    code, log = stop_at(command, rb"[2-5]/%d" % steps)
    assert code == 143, log
    stopped_at = int(sorted((out / "checkpoints").glob("step-*"))[-1].name.split("-")[1])
    assert 2 <= stopped_at < steps and not (out / "final").exists()
    resumed = train(config(out, tiny_model_dir, toy, *common), resume="auto", progress=False)
    a, b = weights(straight, "denoising_unet"), weights(resumed, "denoising_unet")
    assert all(torch.equal(a[k], b[k]) for k in a), max((a[k] - b[k]).abs().max().item() for k in a)


def distillation(tmp_path, tiny_model_dir, toy, *overrides):
    """(student model, training scheduler, ConsistencyDistillation) on the tiny model, on the CPU."""
    from animate_anyone.training.distill import ConsistencyDistillation
    from animate_anyone.training.setup import load_components

    cfg = config(tmp_path / "run", tiny_model_dir, toy, *overrides)
    model, *_, scheduler = load_components(cfg)
    return model, scheduler, ConsistencyDistillation(cfg, model, scheduler, "cpu")


@torch.no_grad()
def perturb(module: torch.nn.Module, seed: int, scale: float = 0.02) -> None:
    """Add seeded Gaussian noise to every parameter (as some training would move them)."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_loss_target_is_a_guided_teacher_ddim_step_then_the_target_network(
    tmp_path, tiny_model_dir, toy, monkeypatch, one_thread
):
    """``loss`` against a target rebuilt without the code under test: the teacher's guided prediction from two
    separate UNet calls, one DDIM step t -> s = t - spacing by diffusers' own ``DDIMScheduler.step`` (eta 0), and
    the target network (not the student, not the teacher) at (x_s, s) through the boundary parameterisation."""
    from diffusers import DDIMScheduler

    import animate_anyone.training.distill as distill_module
    from animate_anyone.model_dir import ModelDirectory
    from animate_anyone.training.losses import sample_noise

    model, scheduler, distill = distillation(tmp_path, tiny_model_dir, toy)
    d = distill.config
    assert d.guidance == 2.0 and d.solver_steps == 10  # DISTILL: a guidance that matters, grid steps of 100
    # Three different UNets, so that one used in another's place fails: the student and the target network have
    # both moved away from the teacher (which the run reloads from its directory), and differently.
    perturb(model.denoising_unet, seed=1)
    perturb(distill.target_unet, seed=2)
    teacher = ModelDirectory(tiny_model_dir).load_networks().eval()

    g = torch.Generator().manual_seed(0)
    b, frames, h, w = 2, 2, 8, 8  # 64x64 pixels
    latents = torch.randn(b, 4, frames, h, w, generator=g)
    ref_latents = torch.randn(b, 4, h, w, generator=g)
    image_embeds = torch.randn(b, 1, model.denoising_unet.config.cross_attention_dim, generator=g)
    pose = torch.rand(b, 3, frames, 8 * h, 8 * w, generator=g)

    # What ``loss`` draws from each sample's generator, replayed: the noise, then an index on the teacher's grid.
    seeds = (0, 3)  # indices 6 and 4: distinct, and above the lowest grid step (where s < 0 would be clamped)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    noise = sample_noise(tuple(latents.shape), generators)
    index = torch.stack([torch.randint(0, d.solver_steps, (), generator=gen) for gen in generators])
    assert index.tolist() == [6, 4]
    t = (index + 1) * (scheduler.config.num_train_timesteps // d.solver_steps) - 1  # LCM's grid k * spacing - 1
    # The teacher's solver: DDIMScheduler.step goes from t to t - num_train_timesteps // num_inference_steps.
    ddim = DDIMScheduler.from_config(scheduler.config)
    ddim.set_timesteps(d.solver_steps)
    assert not ddim.config.clip_sample and not ddim.config.thresholding  # a plain DDIM step
    s = t - ddim.config.num_train_timesteps // ddim.num_inference_steps
    assert s.tolist() == [599, 399]
    noisy = ddim.add_noise(latents, noise, t)

    with torch.no_grad():
        # Teacher: the unconditional row (zero embedding, no reference bank), the conditional row, guidance.
        pose_features = teacher.pose_guider(pose)
        bank = teacher.reference_net(ref_latents, image_embeds)
        uncond = teacher.denoising_unet(noisy, t, torch.zeros_like(image_embeds), pose_features, None)
        cond = teacher.denoising_unet(noisy, t, image_embeds, pose_features, bank)
        assert (cond - uncond).abs().mean() > 0.01  # guidance makes a difference here
        guided = uncond + d.guidance * (cond - uncond)
        x_s = torch.stack([ddim.step(guided[i], int(t[i]), noisy[i], eta=0.0).prev_sample for i in range(b)])
        # The target network at (x_s, s) (its ReferenceNet and Pose Guider: the teacher's), the student at (x_t, t).
        target = distill.boundary(distill.target_unet(x_s, s, image_embeds, pose_features, bank), x_s, s)
        student = distill.boundary(model(noisy, t, ref_latents, image_embeds, pose), noisy, t)
        expected = consistency_loss(student, target, d.huber_c)

        # The loss, recording what it compares (a pass-through: the networks and the arithmetic are untouched).
        seen = []
        real = distill_module.consistency_loss
        monkeypatch.setattr(distill_module, "consistency_loss", lambda *a: seen.append(a) or real(*a))
        fresh = [torch.Generator().manual_seed(seed) for seed in seeds]
        got = distill.loss(model, latents, ref_latents, image_embeds, pose, fresh)
    assert expected > 0.01
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)
    # Element by element too: a wrong target that the mean above averages out still fails here.
    [(got_student, got_target, huber_c, weight)] = seen
    assert huber_c == d.huber_c and weight is None  # distill.motion_weight 0: every latent weighs the same
    torch.testing.assert_close(got_target, target, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got_student, student, rtol=1e-4, atol=1e-5)


def test_update_target_is_the_ema_of_the_student(tmp_path, tiny_model_dir, toy, one_thread):
    """After each change of the student: target <- decay * target + (1 - decay) * student, parameter by
    parameter; the student itself is left alone."""
    model, _, distill = distillation(tmp_path, tiny_model_dir, toy)
    decay = distill.config.target_decay
    assert decay == 0.95
    for step in range(2):
        perturb(model.denoising_unet, seed=step, scale=0.1)
        old = {k: p.clone() for k, p in distill.target_unet.named_parameters()}
        student = {k: p.detach().clone() for k, p in model.denoising_unet.named_parameters()}
        assert old.keys() == student.keys()
        distill.update_target()
        for k, p in distill.target_unet.named_parameters():
            expected = decay * old[k] + (1 - decay) * student[k]
            torch.testing.assert_close(p, expected, rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")
        assert all(torch.equal(p, student[k]) for k, p in model.denoising_unet.named_parameters())


# -- phased consistency distillation (distill.phases) ---------------------------------------------------------------


def test_phase_edges_are_what_the_exported_ddim_steps_land_on(tmp_path, tiny_model_dir, toy):
    """Two phases on 1000 timesteps: edges 499 and -1. The exported scheduler (DDIM, trailing) samples 999 and 499,
    and its step from each is exactly the student's jump to that phase's edge; a bad phase count is refused."""
    _, scheduler, distill = distillation(tmp_path, tiny_model_dir, toy, "distill.phases=2")
    assert distill.edge(torch.tensor([99, 499, 599, 999])).tolist() == [-1, -1, 499, 499]
    ddim = distill.student_scheduler
    ddim.set_timesteps(2)
    assert ddim.timesteps.tolist() == [999, 499] and set(ddim.timesteps.tolist()) <= set(distill.grid.tolist())
    g = torch.Generator().manual_seed(0)
    sample, pred = torch.randn(1, 4, 2, 8, 8, generator=g), torch.randn(1, 4, 2, 8, 8, generator=g)
    for t in ddim.timesteps:
        stepped = ddim.step(pred, t, sample, eta=0.0).prev_sample
        t = torch.tensor([int(t)])
        torch.testing.assert_close(distill.jump(pred, sample, t, distill.edge(t)), stepped, atol=1e-5, rtol=1e-5)
    four = distillation(tmp_path / "four", tiny_model_dir, toy, "distill.phases=4", "distill.solver_steps=20")[2]
    assert four.edge(torch.tensor([49, 249, 299, 749, 999])).tolist() == [-1, -1, 249, 499, 749]
    with pytest.raises(ValueError, match=r"distill.phases=4: .* multiple of the grid's spacing \(100"):
        distillation(tmp_path / "bad", tiny_model_dir, toy, "distill.phases=4")  # edges every 250, grid every 100


def test_phased_loss_targets_the_phase_edge(tmp_path, tiny_model_dir, toy, monkeypatch, one_thread):
    """The phased loss against a target rebuilt without the code under test: the teacher's guided prediction from
    two UNet calls and one DDIM step t -> s by diffusers; the target is x_s itself where s is the phase's edge
    (both at the 499 edge and at the clean end, -1) and otherwise the target network's DDIM jump from s to the edge,
    written out from the v-prediction relations; the student is its own jump from t to the same edge."""
    from diffusers import DDIMScheduler

    import animate_anyone.training.distill as distill_module
    from animate_anyone.model_dir import ModelDirectory
    from animate_anyone.training.losses import sample_noise

    model, scheduler, distill = distillation(tmp_path, tiny_model_dir, toy, "distill.phases=2")
    d = distill.config
    assert (d.guidance, d.solver_steps, d.phases, scheduler.config.prediction_type) == (2.0, 10, 2, "v_prediction")
    perturb(model.denoising_unet, seed=1)
    perturb(distill.target_unet, seed=2)
    teacher = ModelDirectory(tiny_model_dir).load_networks().eval()

    g = torch.Generator().manual_seed(0)
    b, frames, h, w = 3, 2, 8, 8
    latents = torch.randn(b, 4, frames, h, w, generator=g)
    ref_latents = torch.randn(b, 4, h, w, generator=g)
    image_embeds = torch.randn(b, 1, model.denoising_unet.config.cross_attention_dim, generator=g)
    pose = torch.rand(b, 3, frames, 8 * h, 8 * w, generator=g)
    seeds = (5, 4, 6)  # grid indices 5, 9, 0: t = 599 (s = 499, the edge), 999 (s = 899 -> 499), 99 (s = -1, clean)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    noise = sample_noise(tuple(latents.shape), generators)
    index = torch.stack([torch.randint(0, d.solver_steps, (), generator=gen) for gen in generators])
    t = (index + 1) * 100 - 1
    assert t.tolist() == [599, 999, 99]
    ddim = DDIMScheduler.from_config(scheduler.config)
    ddim.set_timesteps(d.solver_steps)
    noisy = ddim.add_noise(latents, noise, t)
    alphas = scheduler.alphas_cumprod.float()

    def jump(v, x, frm: int, to: int):  # v-prediction -> x0, eps; then the DDIM jump (to = -1: alpha 1)
        a = alphas[frm]
        a_to = alphas[to] if to >= 0 else torch.tensor(1.0)
        x0, eps = a.sqrt() * x - (1 - a).sqrt() * v, a.sqrt() * v + (1 - a).sqrt() * x
        return a_to.sqrt() * x0 + (1 - a_to).sqrt() * eps

    assert ddim.final_alpha_cumprod == 1.0  # set_alpha_to_one: the clean end of the last phase
    with torch.no_grad():
        pose_features = teacher.pose_guider(pose)
        bank = teacher.reference_net(ref_latents, image_embeds)
        uncond = teacher.denoising_unet(noisy, t, torch.zeros_like(image_embeds), pose_features, None)
        cond = teacher.denoising_unet(noisy, t, image_embeds, pose_features, bank)
        guided = uncond + d.guidance * (cond - uncond)
        x_s = torch.stack([ddim.step(guided[i], int(t[i]), noisy[i], eta=0.0).prev_sample for i in range(b)])
        s = [499, 899, 0]  # the target network's timesteps (-1 enters it as 0; its output is not used there)
        target_pred = distill.target_unet(x_s, torch.tensor(s), image_embeds, pose_features, bank)
        target = torch.stack([x_s[0], jump(target_pred[1], x_s[1], 899, 499), x_s[2]])
        student_pred = model(noisy, t, ref_latents, image_embeds, pose)
        student = torch.stack([jump(student_pred[i], noisy[i], int(t[i]), e) for i, e in enumerate([499, 499, -1])])
        expected = consistency_loss(student, target, d.huber_c)

        seen = []
        real = distill_module.consistency_loss
        monkeypatch.setattr(distill_module, "consistency_loss", lambda *a: seen.append(a) or real(*a))
        got = distill.loss(
            model, latents, ref_latents, image_embeds, pose, [torch.Generator().manual_seed(x) for x in seeds]
        )
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)
    [(got_student, got_target, _, _)] = seen
    torch.testing.assert_close(got_target, target, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got_student, student, rtol=1e-4, atol=1e-5)


def test_phased_student_exports_its_steps_and_animate_runs_them(tmp_path, tiny_model_dir, toy):
    """A 2-phase student: DDIM (trailing) in its directory, ``student_steps: 2`` in model_index.json, and the
    pipeline's default (the student preset) runs 2 unguided steps."""
    import PIL.Image

    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.media import iter_frames
    from animate_anyone.pipelines.loading import load_pipeline

    run = config(tmp_path / "run", tiny_model_dir, toy, "max_steps=2", "distill.phases=2")
    student = train(run, progress=False)
    index = json.loads((student / "model_index.json").read_text())
    assert index["default_preset"] == "student" and index["student_steps"] == 2
    assert index["scheduler"][1] == "DDIMScheduler"
    assert json.loads((student / "scheduler" / "scheduler_config.json").read_text())["timestep_spacing"] == "trailing"
    pipe = load_pipeline(student, "cpu", "float32", progress=False)
    clip = read_manifest(toy)[0]
    reference = PIL.Image.fromarray(next(iter_frames(clip.video)))
    out = pipe(reference, list(iter_frames(clip.video, count=3)), generator=torch.Generator().manual_seed(0))
    settings = out.stats["sampling"]
    assert (settings.steps, settings.guidance, settings.scheduler) == (2, 1.0, "model")
    assert out.stats["full_rows"] == 2 and out.frames.shape[0] == 3  # one window, one conditional row a step


def test_moving_region_weight_and_temporal_terms(tmp_path, tiny_model_dir, toy, monkeypatch, one_thread):
    """``distill.motion_weight``, ``temporal_weight`` and ``real_temporal_weight`` against a loss written out by
    hand from the student and target that ``loss`` compares (those are checked by the tests above): each latent
    weighs 1 + motion_weight x (its frame's larger change to a neighbour, channel mean) / (the clip's largest
    change); the temporal term is the pseudo-Huber distance of the frame-to-frame differences; the real-video term
    that of the student's clean estimate (from its own UNet call, written out from the v-prediction relation) and
    the clip's latents. A clip whose left half never moves: weight exactly 1 there."""
    from diffusers import DDIMScheduler

    import animate_anyone.training.distill as distill_module
    from animate_anyone.training.losses import sample_noise

    extra, temporal, real_weight = 3.0, 0.5, 0.25
    overrides = (
        "distill.phases=2",
        f"distill.motion_weight={extra}",
        f"distill.temporal_weight={temporal}",
        f"distill.real_temporal_weight={real_weight}",
    )
    model, scheduler, distill = distillation(tmp_path, tiny_model_dir, toy, *overrides)
    perturb(model.denoising_unet, seed=1)
    g = torch.Generator().manual_seed(0)
    b, frames, h, w = 2, 3, 8, 8
    background = torch.randn(b, 4, 1, h, w, generator=g)
    latents = background.repeat(1, 1, frames, 1, 1)
    latents[..., w // 2 :] += torch.randn(b, 4, frames, h, w // 2, generator=g)  # only the right half moves
    ref_latents = torch.randn(b, 4, h, w, generator=g)
    image_embeds = torch.randn(b, 1, model.denoising_unet.config.cross_attention_dim, generator=g)
    pose = torch.rand(b, 3, frames, 8 * h, 8 * w, generator=g)

    seeds = (5, 6)  # grid indices 5 and 3: t = 599 and 399
    generators = [torch.Generator().manual_seed(x) for x in seeds]
    noise = sample_noise(tuple(latents.shape), generators)
    t = torch.stack([torch.randint(0, 10, (), generator=gen) for gen in generators]) * 100 + 99
    assert t.tolist() == [599, 399]
    seen = []
    real = distill_module.consistency_loss
    monkeypatch.setattr(distill_module, "consistency_loss", lambda *a: seen.append(a) or real(*a))
    with torch.no_grad():
        got = distill.loss(
            model, latents, ref_latents, image_embeds, pose, [torch.Generator().manual_seed(x) for x in seeds]
        )
        noisy = DDIMScheduler.from_config(scheduler.config).add_noise(latents, noise, t)
        v = model(noisy, t, ref_latents, image_embeds, pose)
    assert len(seen) == 3
    (student, target, c, weight) = seen[0]
    a = scheduler.alphas_cumprod.float()[t].view(-1, 1, 1, 1, 1)
    clean = a.sqrt() * noisy - (1 - a).sqrt() * v  # the student's x0 estimate (v-prediction)

    # The weight, frame by frame.
    expected_weight = torch.empty(b, 1, frames, h, w)
    for i in range(frames):
        changes = [(latents[:, :, j] - latents[:, :, j - 1]).abs().mean(1) for j in (i, i + 1) if 0 < j < frames]
        expected_weight[:, 0, i] = torch.stack(changes).amax(0)
    expected_weight = 1 + extra * expected_weight / expected_weight.amax(dim=(1, 2, 3, 4), keepdim=True)
    torch.testing.assert_close(weight, expected_weight)
    assert torch.equal(weight[..., : w // 2], torch.ones(b, 1, frames, h, w // 2)) and weight.amax() == 1 + extra

    def huber(a, z):
        return ((a - z).pow(2) + c**2).sqrt() - c

    weighted = (expected_weight.expand_as(student) * huber(student, target)).sum() / expected_weight.expand_as(
        student
    ).sum()
    steps = [
        huber(student[:, :, i + 1] - student[:, :, i], target[:, :, i + 1] - target[:, :, i]) for i in range(frames - 1)
    ]
    real_steps = [huber(clean[:, :, i + 1] - clean[:, :, i], latents[:, :, i + 1] - latents[:, :, i]) for i in range(2)]
    expected = weighted + temporal * torch.stack(steps).mean() + real_weight * torch.stack(real_steps).mean()
    assert temporal * torch.stack(steps).mean() > 0.1 * weighted  # the temporal term is not negligible here
    assert real_weight * torch.stack(real_steps).mean() > 0.1 * weighted  # nor the real-video term
    assert (weighted - huber(student, target).mean()).abs() > 10 * 1e-5 * weighted  # the weighting is seen
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)

    for bad, match in (
        ("distill.motion_weight=-1", "distill.motion_weight -1.0: must be >= 0"),
        ("data.frames=1", "data.frames=1"),
    ):
        with pytest.raises(ValueError, match=match):
            distillation(tmp_path / "bad", tiny_model_dir, toy, *overrides, bad)
