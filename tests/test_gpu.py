"""GPU tier (skipped without CUDA): the fused log-sum-exp kernels and the golden parity on the device."""

from __future__ import annotations

import pytest
import torch

from animate_anyone.models.reference_attention import _attention_with_lse_math, attention_with_lse

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float16, 2e-2), (torch.bfloat16, 5e-2)])
@pytest.mark.parametrize("length", [7, 64, 333])
def test_cuda_lse_kernels_match_math(dtype, tol, length):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(2, 4, length, 64, device="cuda", dtype=dtype, generator=g)
    k = torch.randn(2, 4, 50, 64, device="cuda", dtype=dtype, generator=g)
    v = torch.randn(2, 4, 50, 64, device="cuda", dtype=dtype, generator=g)
    out, lse = attention_with_lse(q, k, v, 0.125)
    out_m, lse_m = _attention_with_lse_math(q, k, v, 0.125)
    assert lse.shape == (2, 4, length)
    assert (out.float() - out_m.float()).abs().max() < tol
    assert (lse - lse_m).abs().max() < tol


def test_golden_parity_on_cuda(fresh_golden_model):
    from safetensors.torch import load_file

    from conftest import golden_dir, golden_spec

    model = fresh_golden_model.to("cuda")
    step = load_file(golden_dir() / "unet_step.safetensors")
    for case, spec in sorted(golden_spec()["unet_cases"].items()):  # every case, with its own guidance scale
        t = {k[len(case) + 1 :]: v.to("cuda") for k, v in step.items() if k.startswith(case + ".")}
        with torch.no_grad():
            bank = model.encode_reference(t["in.ref_latents"], t["in.image_embeds"])
            pose = model.encode_pose(t["in.pose_images"])
            latents, timestep, embeds = t["in.noisy_latents"], t["in.timestep"], t["in.image_embeds"]
            guided = model.denoise(latents, timestep, embeds, pose, bank, spec["guidance_scale"])
        assert (guided - t["out.cfg.guided_fp32bank"]).abs().max() <= 1e-3, case  # TF32 may be on


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_pipeline_half_precision_on_cuda_matches_cpu(tiny_model_dir, dtype):
    """The whole pipeline in half precision on CUDA: finite and close to the float32 CPU result."""
    import numpy as np
    import PIL.Image

    from animate_anyone.pipelines import AnimateAnyonePipeline

    rng = np.random.default_rng(0)
    reference = PIL.Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8))
    poses = rng.integers(0, 255, (3, 64, 48, 3), dtype=np.uint8)
    outputs = []
    for device, dt in (("cpu", torch.float32), ("cuda", dtype)):
        pipe = AnimateAnyonePipeline.from_pretrained(tiny_model_dir, dtype=dt).to(device)
        pipe.set_progress_bar_config(disable=True)
        out = pipe(
            reference,
            poses,
            {"steps": 2},
            height=64,
            width=48,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        )
        outputs.append(out.frames.float().cpu())
    assert torch.isfinite(outputs[1]).all()
    assert (outputs[0] - outputs[1]).abs().max() < 0.1


def test_fast_preset_on_cuda_keeps_device_memory_flat_in_length():
    """The packaged miniature model in bfloat16 on CUDA with the fast preset: the kept deep features live in host
    memory, so the peak device memory of a 240-frame video is within a few per cent of a 24-frame one (only the
    latents' state grows: ``pipelines.memory``); the outputs are finite and close to the CPU float32 ones."""
    import numpy as np
    import PIL.Image

    from animate_anyone.assets import packaged_model
    from animate_anyone.pipelines import AnimateAnyonePipeline
    from animate_anyone.pipelines.memory import per_frame_bytes
    from animate_anyone.pipelines.settings import PRESETS
    from animate_anyone_lab.demo import demo_clip

    reference, _, poses = demo_clip(0, 48, 64)
    pipe = AnimateAnyonePipeline.from_pretrained(packaged_model(), dtype=torch.bfloat16).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    peaks = {}
    for frames in (24, 240):
        video = np.stack([poses[i % len(poses)] for i in range(frames)])
        torch.cuda.reset_peak_memory_stats()
        out = pipe(PIL.Image.fromarray(reference), video, "fast", generator=torch.Generator().manual_seed(0))
        peaks[frames] = torch.cuda.max_memory_allocated()
        assert np.isfinite(out.frames).all() and out.stats["shallow_rows"] > 0
    each = per_frame_bytes(pipe.denoising_unet.config, pipe.vae.config, PRESETS["fast"], 64, 64, 2)
    assert peaks[240] - peaks[24] <= each.device * (240 - 24) * 1.5, (peaks, each)
    cpu = AnimateAnyonePipeline.from_pretrained(packaged_model())
    cpu.set_progress_bar_config(disable=True)
    kw = dict(generator=torch.Generator().manual_seed(0), output_type="np")
    a = cpu(PIL.Image.fromarray(reference), poses[:24], "fast", **kw).frames.astype(int)
    b = pipe(PIL.Image.fromarray(reference), poses[:24], "fast", **kw).frames.astype(int)
    assert np.abs(a - b).mean() < 6  # bf16 against float32: a few levels on average


@pytest.mark.parametrize("offload", ["none", "model"])
def test_the_memory_estimate_holds_on_cuda_at_full_size(offload):
    """The SD-1.5-size pipeline (uninitialised weights: memory does not depend on the values) at 512x768, 24 frames,
    bfloat16: the peak CUDA memory of a call is within 10 % of ``estimate_call_memory``'s count, without offloading
    and with diffusers' model CPU offload (docs/performance.md, "Inference memory before the run")."""
    import numpy as np
    import PIL.Image

    from animate_anyone.pipelines.peak_memory import estimate_call_memory, meta_pipeline

    sampling = {"steps": 2}
    estimate = estimate_call_memory(
        "sd15",
        width=512,
        height=768,
        num_frames=24,
        sampling=sampling,
        dtype=torch.bfloat16,
        optimisations={"offload": offload},
    )
    pipe = meta_pipeline("sd15", torch.bfloat16)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.to_empty(device="cuda" if offload == "none" else "cpu")
    if offload != "none":
        pipe.set_offload(offload, "cuda")
    pipe.set_progress_bar_config(disable=True)
    torch.cuda.reset_peak_memory_stats()
    reference = PIL.Image.new("RGB", (512, 768), "tan")
    poses = np.zeros((24, 768, 512, 3), np.uint8)
    pipe(reference, poses, sampling, height=768, width=512, frame_sink=lambda frame: None)
    peak = torch.cuda.max_memory_allocated()
    assert abs(estimate["peak_bytes"] - peak) <= 0.10 * peak, (estimate["peak_bytes"], peak, estimate["stage_bytes"])
