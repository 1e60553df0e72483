"""``stage: distill``: latent consistency distillation (LCM, Luo et al., 2023) of the denoising UNet into a
few-step student that needs no classifier-free guidance.

Per sample: a timestep ``t`` of the teacher's DDIM grid (``distill.solver_steps`` steps) and ``s = t - k`` one
grid step below it; the clip's latents are noised to ``x_t``.

1. Student (the ordinary training forward, every row with its reference): ``f(x_t, t) = c_skip(t) x_t +
   c_out(t) x0(x_t, t)``, the boundary parameterisation of diffusers' ``LCMScheduler`` (so the exported
   scheduler samples exactly what was trained).
2. Teacher: one guided prediction at ``x_t`` (scale ``distill.guidance``: the guidance is folded into the
   student) and one DDIM step to ``x_s``.
3. Target: the same parameterisation at ``(x_s, s)`` from the target network, an EMA of the student
   (decay ``distill.target_decay``) that is saved with every checkpoint.
4. Loss: pseudo-Huber distance between 1 and 3 (``losses.consistency_loss``), optionally weighted to the moving
   region (``distill.motion_weight``, DanceLCM's idea, the region taken from the clip's own frame differences), plus
   optionally the same distance between their frame-to-frame differences (``distill.temporal_weight``), and between
   the frame-to-frame differences of the student's clean estimate and of the training clip's own latents
   (``distill.real_temporal_weight``: supervision from real video, DanceLCM's other idea, aimed at flicker).

Phased (``distill.phases`` = K > 0; phased consistency distillation, PCM, Wang et al., 2024): the timesteps split
into K phases whose edges are the K trailing DDIM timesteps below the top (``T/K - 1, 2T/K - 1, ...``) and -1 (the
clean sample). Within a phase the student's function is the DDIM jump from ``t`` to its phase's lower edge with
its own prediction (``jump``), so consistency holds per phase and K DDIM steps, one per phase, follow the
teacher's trajectory instead of re-noising between steps. The target at ``(x_s, s)`` is ``x_s`` itself when ``s``
is the edge (the boundary condition), else the target network's jump from ``s`` to the same edge. The export's
scheduler is DDIM with trailing timesteps on the same noise schedule (its K steps land exactly on the phase edges)
and ``student_steps: K`` in model_index.json, which the ``student`` preset takes.

ReferenceNet and the Pose Guider stay the teacher's (frozen); the whole denoising UNet trains, spatial and
temporal layers. The export is an ordinary model directory with an ``LCMScheduler`` (a phased student: DDIM) on
the same noise schedule and ``default_preset: student`` (no guidance), so ``animate`` runs it as it is.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from ..models import AnimateAnyone
from .config import TrainConfig
from .losses import consistency_loss, frame_differences, moving_region_weight, sample_noise, x0_and_noise
from .setup import model_directory


def check_distill(config: TrainConfig, num_train_timesteps: int) -> None:
    """The distillation's rules that read several values or the model's noise schedule (``TrainConfig.check`` holds
    the single-value ones); ``training.preflight`` calls it before anything loads."""
    d, steps = config.distill, num_train_timesteps
    if not config.model.reference_net:
        raise ValueError("stage distill distils a model with ReferenceNet; model.reference_net=false is not supported")
    if steps % d.solver_steps:
        raise ValueError(f"distill.solver_steps={d.solver_steps} must divide the {steps} training timesteps (e.g. 50)")
    if d.phases and (steps % d.phases or (steps // d.phases) % (steps // d.solver_steps)):
        raise ValueError(
            f"distill.phases={d.phases}: must be 0 (plain consistency distillation) or split the {steps} training "
            f"timesteps into phases whose length is a multiple of the grid's spacing ({steps // d.solver_steps}, "
            f"distill.solver_steps={d.solver_steps}); e.g. phases 2 or 4 with solver_steps 40 or 20"
        )
    if (d.motion_weight or d.temporal_weight or d.real_temporal_weight) and config.data.frames < 2:
        raise ValueError(
            "distill.motion_weight / temporal_weight / real_temporal_weight compare frames: "
            f"data.frames={config.data.frames} must be >= 2"
        )


class ConsistencyDistillation:
    """The teacher, the target network and the loss of one distillation run."""

    def __init__(self, config: TrainConfig, model: AnimateAnyone, scheduler, device):
        from diffusers import DDIMScheduler, LCMScheduler

        d = config.distill
        config.check("distill.")
        check_distill(config, scheduler.config.num_train_timesteps)
        steps = scheduler.config.num_train_timesteps
        teacher_dir = d.teacher or config.model.pretrained
        self.teacher = model_directory("distill.teacher", teacher_dir).load_networks()
        self.teacher.requires_grad_(False).eval().to(device)
        # The target network: an EMA copy of the student's UNet, sharing its frozen ReferenceNet and Pose Guider.
        self.target_unet = copy.deepcopy(model.denoising_unet).requires_grad_(False).eval().to(device)
        self.target = AnimateAnyone(model.reference_net, self.target_unet, model.pose_guider)
        self.student_unet = model.denoising_unet
        self.scheduler = scheduler  # the training noise schedule (alphas_cumprod, prediction type)
        if d.phases:  # K DDIM steps with trailing timesteps: each lands on the next phase edge
            self.student_scheduler = DDIMScheduler.from_config(scheduler.config, timestep_spacing="trailing")
            self.phase_length = steps // d.phases
        else:
            self.student_scheduler = LCMScheduler.from_config(scheduler.config, original_inference_steps=d.solver_steps)
        self.spacing = scheduler.config.num_train_timesteps // d.solver_steps
        self.grid = torch.arange(1, d.solver_steps + 1) * self.spacing - 1  # (solver_steps,): 19, 39, ..., 999
        self.config = d

    def boundary(self, pred: Tensor, noisy: Tensor, timesteps: Tensor) -> Tensor:
        """c_skip(t) x_t + c_out(t) x0, with LCMScheduler's own scalings. pred/noisy (b, 4, f, h, w); t (b,)."""
        x0, _ = x0_and_noise(
            pred, noisy, self.scheduler.alphas_cumprod, timesteps, self.scheduler.config.prediction_type
        )
        c_skip, c_out = self.student_scheduler.get_scalings_for_boundary_condition_discrete(timesteps.float().cpu())
        shape = (-1, *([1] * (noisy.ndim - 1)))
        return c_skip.view(shape).to(noisy.device) * noisy.float() + c_out.view(shape).to(noisy.device) * x0

    def edge(self, timesteps: Tensor) -> Tensor:
        """The lower edge of each timestep's phase (phased mode): ``(t // phase_length) * phase_length - 1``, -1
        being the clean sample. A phase is ``(edge, edge + phase_length]``: its top is a trailing DDIM timestep."""
        return torch.div(timesteps, self.phase_length, rounding_mode="floor") * self.phase_length - 1

    def alphas(self, timesteps: Tensor) -> Tensor:
        """alphas_cumprod at ``timesteps`` (b,) as (b, 1, 1, 1, 1) float; -1: the DDIM scheduler's final alpha."""
        table = self.scheduler.alphas_cumprod.to(timesteps.device).float()
        final = torch.as_tensor(float(self.student_scheduler.final_alpha_cumprod), device=timesteps.device)
        a = torch.where(timesteps < 0, final, table[timesteps.clamp(min=0)])
        return a.view(-1, 1, 1, 1, 1)

    def jump(self, pred: Tensor, noisy: Tensor, timesteps: Tensor, to: Tensor) -> Tensor:
        """The DDIM jump (eta 0) from ``timesteps`` to ``to`` with the model output ``pred``: sqrt(a_to) x0 +
        sqrt(1 - a_to) eps, what ``DDIMScheduler.step`` computes. pred/noisy (b, 4, f, h, w); t, to (b,)."""
        kind = self.scheduler.config.prediction_type
        x0, eps = x0_and_noise(pred, noisy, self.scheduler.alphas_cumprod, timesteps, kind)
        a = self.alphas(to)
        return a.sqrt() * x0 + (1 - a).sqrt() * eps

    def loss(
        self, model, latents: Tensor, ref_latents: Tensor, image_embeds: Tensor, pose: Tensor, generators
    ) -> Tensor:
        """The distillation loss of one micro-batch (latents (b, 4, f, h, w) from ``loop.encode_batch``)."""
        device = latents.device
        # 1. Per-sample noise and grid step: x_t and the step below it, s.
        noise = sample_noise(tuple(latents.shape), generators, 0.0, device).to(latents.dtype)
        index = torch.stack([torch.randint(0, len(self.grid), (), generator=g) for g in generators])
        t = self.grid[index].to(device)  # (b,)
        phased = self.config.phases > 0
        s = t - self.spacing if phased else (t - self.spacing).clamp(min=0)  # phased: -1 is the clean sample
        noisy = self.scheduler.add_noise(latents, noise, t)
        # 2. Student: the shared training forward, every row with its reference.
        student_pred = model(noisy, t, ref_latents, image_embeds, pose)
        student = self.jump(student_pred, noisy, t, self.edge(t)) if phased else self.boundary(student_pred, noisy, t)
        with torch.no_grad():
            # 3. Teacher: guided prediction at t, then one DDIM step to s.
            bank = self.teacher.encode_reference(ref_latents, image_embeds)
            teacher_pose = self.teacher.encode_pose(pose)  # (b, C0, f, h, w)
            pred = self.teacher.denoise(noisy, t, image_embeds, teacher_pose, bank, self.config.guidance)
            x_s = self.jump(pred, noisy, t, s).to(latents.dtype)
            # 4. Target network at (x_s, s); phased: x_s itself where s is its phase's edge (the boundary).
            target_bank = self.target.encode_reference(ref_latents, image_embeds)
            target_pose = self.target.encode_pose(pose)
            s_net = s.clamp(min=0)  # the network's timestep (an edge at -1 takes x_s, not the network's output)
            target_pred = self.target.denoise(x_s, s_net, image_embeds, target_pose, target_bank)
            if phased:
                at_edge = (s == self.edge(t)).view(-1, 1, 1, 1, 1)
                target = torch.where(at_edge, x_s.float(), self.jump(target_pred, x_s, s_net, self.edge(t)))
            else:
                target = self.boundary(target_pred, x_s, s)
        # 5. Loss: the distance (weighted to the moving region), plus the distance of the frame-to-frame changes.
        d = self.config
        weight = moving_region_weight(latents, d.motion_weight) if d.motion_weight else None
        loss = consistency_loss(student, target, d.huber_c, weight)
        if d.temporal_weight:
            changes = frame_differences(student), frame_differences(target)  # (b, 4, f - 1, h, w) each
            loss = loss + d.temporal_weight * consistency_loss(*changes, d.huber_c)
        if d.real_temporal_weight:  # the student's clean estimate moves as the training clip does
            clean, _ = x0_and_noise(
                student_pred, noisy, self.scheduler.alphas_cumprod, t, self.scheduler.config.prediction_type
            )
            changes = frame_differences(clean), frame_differences(latents)  # (b, 4, f - 1, h, w) each
            loss = loss + d.real_temporal_weight * consistency_loss(*changes, d.huber_c)
        return loss

    @torch.no_grad()
    def update_target(self) -> None:
        """target <- decay * target + (1 - decay) * student, after every optimizer step."""
        target = list(self.target_unet.parameters())
        student = [p.detach().to(q.dtype) for p, q in zip(self.student_unet.parameters(), target)]
        torch._foreach_lerp_(target, student, 1 - self.config.target_decay)
