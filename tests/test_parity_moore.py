"""Numerical parity with Moore-AnimateAnyone on its own golden outputs (any golden set in that format)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from conftest import golden_dir, golden_spec

CASES = sorted(golden_spec()["unet_cases"])


def max_err(a, b) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def step():
    return load_file(golden_dir() / "unet_step.safetensors")


@pytest.mark.parametrize("case", CASES)
def test_unet_step_matches_moore(golden_model, step, case):
    spec = golden_spec()["unet_cases"][case]
    t = {k[len(case) + 1 :]: v for k, v in step.items() if k.startswith(case + ".")}
    batch, g = spec["batch"], spec["guidance_scale"]
    with torch.no_grad():
        # 1. Pose features.
        pose = golden_model.encode_pose(t["in.pose_images"])
        assert max_err(pose, t["out.pose_features"]) <= 1e-5
        # 2. Reference bank (Moore's guided bank rows are [uncond x B, cond x B]; only cond rows are used).
        bank = golden_model.encode_reference(t["in.ref_latents"], t["in.image_embeds"])
        for block in spec["ref_bank_layers"]:
            assert max_err(bank.tokens[block], t[f"out.ref_bank.{block}"][batch:]) <= 1e-4, block
        # 3. Guided step: both rows and the guided prediction.
        guided, rows = golden_model.denoise(
            t["in.noisy_latents"], t["in.timestep"], t["in.image_embeds"], pose, bank, g, return_rows=True
        )
        assert max_err(rows, t["out.cfg.noise_pred_batch_fp32bank"]) <= 1e-4
        assert max_err(guided, t["out.cfg.guided_fp32bank"]) <= 1e-4
        # 4. Unguided step.
        single = golden_model.denoise(t["in.noisy_latents"], t["in.timestep"], t["in.image_embeds"], pose, bank, 1.0)
        assert max_err(single, t["out.nocfg.noise_pred_fp32bank"]) <= 1e-4
        # 5. No reference at all (diagnostic output).
        plain = golden_model.denoising_unet(t["in.noisy_latents"], t["in.timestep"], t["in.image_embeds"], pose, None)
        assert max_err(plain, t["out.no_reference_cond"]) <= 1e-4


@pytest.mark.parametrize("case", CASES)
def test_training_forward_matches_moore(golden_model, step, case):
    """The training route (reference projected with gradients, concatenated attention) gives the same numbers."""
    t = {k[len(case) + 1 :]: v for k, v in step.items() if k.startswith(case + ".")}
    batch = t["in.noisy_latents"].shape[0]
    timesteps = t["in.timestep"].expand(batch)
    pred = golden_model(
        t["in.noisy_latents"], timesteps, t["in.ref_latents"], t["in.image_embeds"], t["in.pose_images"]
    )
    assert pred.requires_grad  # really the gradient path
    assert max_err(pred.detach(), t["out.nocfg.noise_pred_fp32bank"]) <= 1e-4
    # Unconditional rows in training = Moore's unconditional row: zero embedding, no reference.
    drop = torch.zeros(batch, dtype=torch.bool)
    uncond = golden_model(
        t["in.noisy_latents"],
        timesteps,
        t["in.ref_latents"],
        torch.zeros_like(t["in.image_embeds"]),
        t["in.pose_images"],
        drop,
    )
    assert max_err(uncond.detach(), t["out.cfg.noise_pred_batch_fp32bank"][:batch]) <= 1e-4


@pytest.mark.parametrize("case", CASES)
def test_parity_is_discriminating(golden_model, step, case):
    """The tolerance means something: removing the reference moves the output far beyond 1e-4."""
    t = {k[len(case) + 1 :]: v for k, v in step.items() if k.startswith(case + ".")}
    assert max_err(t["out.no_reference_cond"], t["out.nocfg.noise_pred_fp32bank"]) > 1e-2
