"""The output size when none is given, checked against the public configs the README names (facts, in
tests/fixtures/public_configs): SD-1.5's UNet (64 latents) with the README's VAE, sd-vae-ft-mse, whose config says
``"sample_size": 256``, must animate at shorter side 512, through every front end, by one rule
(``model_dir.default_short_side``)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone.model_dir import ModelDirectory, default_short_side
from conftest import FIXTURES, MOORE_KEYS

CONFIGS = FIXTURES / "public_configs"
SD15_UNET = json.loads((MOORE_KEYS / "sd15_unet_config.json").read_text())
FT_MSE_VAE = json.loads((CONFIGS / "sd_vae_ft_mse_vae_config.json").read_text())
SD15_VAE = json.loads((CONFIGS / "sd15_vae_config.json").read_text())


def test_the_public_configs_give_512():
    assert FT_MSE_VAE["sample_size"] == 256 and SD15_VAE["sample_size"] == 512  # the VAE's field disagrees
    assert default_short_side(SD15_UNET, FT_MSE_VAE) == 512
    assert default_short_side(SD15_UNET, SD15_VAE) == 512
    # A UNet config without sample_size falls back to the VAE's.
    assert default_short_side({k: v for k, v in SD15_UNET.items() if k != "sample_size"}, SD15_VAE) == 512


def test_a_converted_directory_reads_512_from_its_configs(tmp_path):
    """The denoising UNet config that `convert moore` writes from SD-1.5's unet/config.json beside the README's VAE
    config: the directory says 512 before anything loads."""
    from conftest import public_configs_directory

    assert ModelDirectory(public_configs_directory(tmp_path)).default_short_side() == 512


@pytest.fixture(scope="module")
def public_sized_model(tiny_model_dir, tmp_path_factory):
    """The tiny networks (SD-1.5 width cannot run here) in a directory whose size fields are the public configs':
    the UNet's sample_size from SD-1.5's unet/config.json, the VAE's from sd-vae-ft-mse (both networks keep the
    8x VAE of SD-1.5; sample_size changes no weight)."""
    path = tmp_path_factory.mktemp("public") / "model"
    shutil.copytree(tiny_model_dir, path)
    for component, source in (("denoising_unet", SD15_UNET), ("vae", FT_MSE_VAE)):
        file = path / component / "config.json"
        config = json.loads(file.read_text())
        config["sample_size"] = source["sample_size"]
        file.write_text(json.dumps(config))
    assert len(json.loads((path / "vae" / "config.json").read_text())["block_out_channels"]) == 4  # 8x, as SD's
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from animate_anyone.media import write_video

    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    PIL.Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(folder / "ref.png")  # 3:4
    write_video(folder / "pose", list(rng.integers(0, 255, (1, 40, 30, 3), dtype=np.uint8)), 8.0)  # PNG frames
    return folder


EXPECTED = (512, 680)  # (width, height): the reference's 3:4 at shorter side 512, multiples of 8
FAST = dict(steps=1, guidance=1.0)  # one unguided step: the size is what is tested


def test_cli_animates_at_512(public_sized_model, inputs, tmp_path):
    from animate_anyone.cli.main import main
    from animate_anyone.media import probe_frames

    argv = ["animate", "--model", str(public_sized_model), "--reference", str(inputs / "ref.png")]
    argv += ["--pose", str(inputs / "pose"), "--out", str(tmp_path / "out"), "--quiet", "--steps", "1"]
    assert main([*argv, "--guidance", "1"]) == 0
    info = probe_frames(tmp_path / "out")
    assert (info.width, info.height) == EXPECTED


def test_python_api_animates_at_512(public_sized_model, inputs):
    from animate_anyone.media import iter_frames
    from animate_anyone.pipelines import AnimateAnyonePipeline

    pipe = AnimateAnyonePipeline.from_pretrained(public_sized_model)
    pipe.set_progress_bar_config(disable=True)
    poses = list(iter_frames(inputs / "pose"))
    out = pipe(PIL.Image.open(inputs / "ref.png"), poses, {"steps": 1, "guidance": 1.0})
    assert out.frames.shape == (1, EXPECTED[1], EXPECTED[0], 3)


def test_app_animates_at_512(public_sized_model, inputs, tmp_path):
    from animate_anyone.app.service import AnimateService
    from animate_anyone.media import probe_frames

    service = AnimateService(public_sized_model, workdir=tmp_path)
    result = service.animate(str(inputs / "ref.png"), str(inputs / "pose"), "pose video", side_by_side=False, **FAST)
    info = probe_frames(result.video)
    assert (info.width, info.height) == EXPECTED


def test_comfyui_node_animates_at_512(public_sized_model, inputs, nodes):
    from animate_anyone.media import iter_frames

    (pipe,) = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneLoadModel"]().load(str(public_sized_model), "float32")
    reference = torch.from_numpy(np.array(PIL.Image.open(inputs / "ref.png"))[None]).float() / 255
    poses = torch.from_numpy(np.stack(list(iter_frames(inputs / "pose")))).float() / 255
    kw = dict(seed=0, preset="model default", steps=1, guidance=1.0, context_frames=24, context_overlap=4)
    node = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneAnimate"]()
    (frames,) = node.animate(pipe, reference, poses, width=0, height=0, **kw)  # 0: the default size
    assert frames.shape == (1, EXPECTED[1], EXPECTED[0], 3)
