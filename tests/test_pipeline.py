"""AnimateAnyonePipeline on a tiny random model directory: loading, outputs, determinism, input checks."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone.pipelines.pipeline_animate_anyone import AnimateAnyonePipeline, default_size
from animate_anyone.pipelines.settings import SamplingRequest


@pytest.fixture(scope="session")
def pipe(tiny_model_dir):
    pipe = AnimateAnyonePipeline.from_pretrained(tiny_model_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def reference(width=48, height=64, mode="RGB"):
    rng = np.random.default_rng(0)
    return PIL.Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).convert(mode)


def poses(frames, width=48, height=64):
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (frames, height, width, 3), dtype=np.uint8)


SAMPLING = {f.name for f in dataclasses.fields(SamplingRequest)}


def run(pipe, frames=3, seed=0, **kw):
    """The call's own keywords, and ``SamplingRequest`` fields (steps default 2) gathered into its request."""
    request = SamplingRequest(**{"steps": 2, **{k: v for k, v in kw.items() if k in SAMPLING}})
    kw = {"generator": torch.Generator().manual_seed(seed), **{k: v for k, v in kw.items() if k not in SAMPLING}}
    return pipe(reference(), poses(frames), request, **kw).frames


def test_loads_every_component_with_the_v2_scheduler(pipe):
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    config = pipe.scheduler.config
    assert (config.prediction_type, config.timestep_spacing, config.rescale_betas_zero_snr, config.beta_schedule) == (
        "v_prediction",
        "trailing",
        True,
        "linear",
    )
    assert {"vae", "image_encoder", "feature_extractor", "reference_net", "denoising_unet", "pose_guider"} <= set(
        pipe.components
    )


def test_output_frames_shape_and_determinism(pipe):
    a = run(pipe, frames=3, height=64, width=48)
    assert a.shape == (3, 64, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, run(pipe, frames=3, height=64, width=48))
    assert not np.array_equal(a, run(pipe, frames=3, height=64, width=48, seed=1))


def test_output_types_and_streaming_agree(pipe):
    frames = run(pipe, frames=3, height=64, width=48)
    pil = run(pipe, frames=3, height=64, width=48, output_type="pil")
    assert [im.size for im in pil] == [(48, 64)] * 3 and np.array_equal(
        np.stack([np.asarray(im) for im in pil]), frames
    )
    latents = run(pipe, frames=3, height=64, width=48, output_type="latent")
    assert latents.shape == (1, 4, 3, 8, 6)
    streamed = []
    assert run(pipe, frames=3, height=64, width=48, frame_sink=streamed.append) is None
    assert np.array_equal(np.stack(streamed), frames)
    pipe.set_optimisations(decode_chunk_size=2)
    try:
        chunked = run(pipe, frames=3, height=64, width=48)  # batch size changes float rounding only
    finally:
        pipe.set_optimisations(decode_chunk_size=8)
    assert np.abs(chunked.astype(int) - frames).max() <= 1


def test_default_size_follows_the_reference_aspect(pipe):
    assert default_size(reference(300, 450), 64) == (64, 96)
    assert default_size(reference(451, 300), 64) == (96, 64)
    out = pipe(reference(300, 450, mode="RGBA"), poses(2), {"steps": 1}).frames  # sample_size 64
    assert out.shape == (2, 96, 64, 3)


def test_long_video_with_windows_and_another_scheduler(pipe):
    from diffusers import DPMSolverMultistepScheduler

    original = pipe.scheduler
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(original.config)
    try:
        out = run(pipe, frames=11, height=64, width=48, context_frames=4, context_overlap=1)
    finally:
        pipe.scheduler = original
    assert out.shape == (11, 64, 48, 3)


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(height=60, width=48), "height 60 is not a positive multiple of 8"),
        (dict(height=64, width=50), "width 50 is not a positive multiple of 8"),
        (dict(num_frames=9), "the pose sequence has 3 frames"),
        (dict(num_frames=0), "num_frames=0"),
        (dict(context_frames=40, frames=40), "positional-encoding limit of 32"),
        (dict(context_frames=40), "positional-encoding limit of 32"),  # also when the video is shorter
        (dict(window_mode="loop"), "window_mode loop: must be one of"),
        (dict(output_type="mp4"), "output_type"),
        (dict(steps=0), "steps 0: must be a whole number >= 1"),
    ],
)
def test_bad_inputs_raise(pipe, kw, message):
    frames = kw.pop("frames", 3)
    with pytest.raises(ValueError, match=message):
        run(pipe, frames=frames, **kw)


def test_missing_component_is_named(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(FileNotFoundError, match="missing the vae component"):
        AnimateAnyonePipeline.from_pretrained(broken)
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        AnimateAnyonePipeline.from_pretrained(tmp_path)


def test_pose_features_per_window_equal_the_whole_video(pipe):
    """The pipeline encodes pose per window; the guider is per frame, so this equals encoding once."""
    model = pipe.model
    images = torch.rand(1, 3, 6, 64, 48)
    whole = model.encode_pose(images)
    idx = torch.tensor([4, 5, 0, 1])
    assert torch.allclose(model.encode_pose(images[:, :, idx]), whole[:, :, idx], atol=1e-6)
