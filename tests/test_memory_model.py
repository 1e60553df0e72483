"""What a video keeps per frame (``pipelines.memory``) at the users' size, from the public configs, and the
pre-run check of ``animate`` that multiplies it by the frames."""

from __future__ import annotations

import json

import pytest

from animate_anyone.pipelines.memory import per_frame_bytes, window_frames_per_frame
from animate_anyone.pipelines.settings import PRESETS, SamplingSettings
from conftest import FIXTURES, MOORE_KEYS

SD15_UNET = json.loads((MOORE_KEYS / "sd15_unet_config.json").read_text())
VAE = json.loads((FIXTURES / "public_configs" / "sd_vae_ft_mse_vae_config.json").read_text())


def test_bytes_per_frame_at_512x768_in_bfloat16():
    """Written out: latents 4 x 64 x 96; the fast preset keeps 2 rows of SD-1.5's 640-channel level at 32 x 48
    (before its upsampler), in bf16, for 1.2 window frames per frame (windows of 24 overlapping by 4)."""
    quality = per_frame_bytes(SD15_UNET, VAE, PRESETS["quality"], 512, 768, 2, 1.2)
    fast = per_frame_bytes(SD15_UNET, VAE, PRESETS["fast"], 512, 768, 2, 1.2)
    student = per_frame_bytes(SD15_UNET, VAE, PRESETS["student"], 512, 768, 2, 1.2)
    assert quality.device == fast.device == student.device == 4 * 64 * 96 * (6 * 4 + 6 * 2)  # 0.84 MiB
    assert quality.pose == fast.pose == 512 * 768 * 3  # 1.125 MiB of uint8
    assert quality.cache == student.cache == 0
    assert fast.cache == round(2 * 640 * 32 * 48 * 2 * 1.2)  # 4.5 MiB
    # Guided at step 0 only: its refresh keeps the conditional row alone (step 1, which reuses it, is unguided).
    first = SamplingSettings(steps=12, guidance_interval=(0.0, 0.08), cache_interval=2, scheduler="dpm++")
    assert per_frame_bytes(SD15_UNET, VAE, first, 512, 768, 2).cache == 640 * 32 * 48 * 2
    unguided = SamplingSettings(steps=12, guidance=1.0, cache_interval=2)
    assert per_frame_bytes(SD15_UNET, VAE, unguided, 512, 768, 2).cache == 640 * 32 * 48 * 2
    # Depth 2 keeps SD-1.5's 1280-channel level at 16 x 24; a depth the UNet cannot take is refused here.
    deep = SamplingSettings(steps=12, cache_interval=2, cache_depth=2)
    assert per_frame_bytes(SD15_UNET, VAE, deep, 512, 768, 2).cache == 2 * 1280 * 16 * 24 * 2
    with pytest.raises(ValueError, match="cache_depth must be between 1 and 3"):
        per_frame_bytes(SD15_UNET, VAE, SamplingSettings(cache_interval=2, cache_depth=4), 512, 768, 2)


def test_window_frames_per_frame_counts_overlaps():
    """120 frames in windows of 24 overlapping by 4: 6 windows (starts 0, 20, ..., 80, 96) at step 0; shifted by 11
    at step 1, 7 (0, 11, 31, 51, 71, 91, 96): the most is 7 x 24 / 120. One short video: one window of itself."""
    from animate_anyone.pipelines.context import window_schedule

    grids = [window_schedule("shifted", 120, 24, 4, step) for step in (0, 1)]
    assert window_frames_per_frame(grids[:1], 120) == 6 * 24 / 120
    assert window_frames_per_frame(grids, 120) == 7 * 24 / 120
    assert window_frames_per_frame([window_schedule("shifted", 10, 24, 4, 0)], 10) == 1.0


@pytest.mark.integration  # 9 s (SD-1.5 configs, 2 million frames); in the fast tier: test_cli_errors "huge --size"
def test_animate_refuses_a_video_that_cannot_fit_before_loading(tmp_path):
    """A model directory with SD-1.5's configs (no weights needed: the check reads configs) and a day of video at
    512x768: refused in one line naming the size and the frames."""
    import torch

    from animate_anyone.jobs.animate import _check_memory
    from animate_anyone.jobs.animate_config import AnimateConfig
    from animate_anyone.model_dir import ModelDirectory
    from conftest import public_configs_directory

    directory, config = ModelDirectory(public_configs_directory(tmp_path)), AnimateConfig()
    cpu = torch.device("cpu")
    _check_memory(directory, config, PRESETS["fast"], 512, 768, 24, cpu)  # 24 frames fit
    with pytest.raises(ValueError, match=r"size 512x768 with 2073600 frames needs at least .* GiB"):
        _check_memory(directory, config, PRESETS["fast"], 512, 768, 24 * 24 * 3600, cpu)
