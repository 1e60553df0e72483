"""A sample video during training: reference | pose | generated | ground truth, for the first clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import torch

from .config import TrainConfig


@torch.no_grad()
def write_validation_video(
    networks, vae, image_encoder, feature_extractor, scheduler, dataset, out: Path, config: TrainConfig
) -> Path:
    from diffusers import DDIMScheduler

    student = config.stage == "distill"  # scheduler: the student's (LCM, or DDIM for a phased one); student preset

    from ..media import VideoWriter
    from ..pipelines import AnimateAnyonePipeline
    from ..pipelines.settings import SamplingRequest

    pipe = AnimateAnyonePipeline(
        vae=vae,
        image_encoder=image_encoder,
        feature_extractor=feature_extractor,
        reference_net=networks.reference_net,
        denoising_unet=networks.denoising_unet,
        pose_guider=networks.pose_guider,
        scheduler=scheduler if student else DDIMScheduler.from_config(scheduler.config),
        use_reference_net=config.model.reference_net,  # the ablation's video without reference attention
    )
    pipe.set_progress_bar_config(disable=True)
    sample = dataset[(0, config.seed)]
    reference = PIL.Image.fromarray(sample["reference_image"].numpy())
    pose = sample["pose"].transpose(0, 1)  # (f, 3, H, W) in [0, 1]
    truth = ((sample["pixels"].transpose(0, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # (f, 3, H, W)
    was_training = networks.training
    networks.eval()
    phased = config.distill.phases or None  # a phased student: one DDIM step per phase
    sampling = SamplingRequest(steps=config.validation_steps)
    if student:
        sampling = SamplingRequest(preset="student", steps=phased)
    frames = pipe(
        reference,
        pose,
        sampling,
        height=pose.shape[2],
        width=pose.shape[3],
        generator=torch.Generator().manual_seed(config.seed),
    ).frames  # (f, H, W, 3)
    networks.train(was_training)
    ref = np.asarray(reference)
    out.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(out, fps=8) as writer:
        for i, frame in enumerate(frames):
            pose_i = (pose[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            writer.write(np.concatenate([ref, pose_i, frame, truth[i].permute(1, 2, 0).numpy()], axis=1))
    return out
