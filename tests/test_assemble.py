"""Assembling a complete model directory from downloaded components (all built here, tiny and offline)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from animate_anyone.cli.main import main
from animate_anyone.convert import components
from animate_anyone.convert.components import (
    check_compatible,
    load_image_encoder,
    load_vae,
    vae_from_single_file,
)
from animate_anyone.convert.release import assemble as assemble_model_directory
from animate_anyone.jobs.init_model import init_model
from animate_anyone.model_dir import ModelDirectory
from animate_anyone.models.sizes import SCHEDULER_V2, SIZES, build_components, image_processor_class
from animate_anyone.weights import read_state_dict
from conftest import golden_convert_args, golden_dir, golden_sizes, golden_spec


def load_networks(path):
    return ModelDirectory(path).load_networks()


def read_checkpoint(path):
    return read_state_dict(path, prefix="first_stage_model.")


ALL = ("reference_net", "denoising_unet", "pose_guider", "vae", "image_encoder", "feature_extractor", "scheduler")
# Two blocks of different widths: exercises nin_shortcut, downsample and upsample.
TINY_VAE = dict(
    down_block_types=("DownEncoderBlock2D",) * 2,
    up_block_types=("UpDecoderBlock2D",) * 2,
    block_out_channels=(32, 64),
    layers_per_block=1,
    latent_channels=4,
    sample_size=32,
    scaling_factor=0.18215,
)


# -- sources, built once ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """networks/ (a tiny trained model dir), sd-vae-ft-mse/ and sd-image-variations/ (repo-root layout)."""
    root = tmp_path_factory.mktemp("sources")
    init_model("tiny", root / "networks", seed=1)
    torch.manual_seed(2)
    aux = build_components(SIZES["tiny"])
    aux["vae"].save_pretrained(root / "sd-vae-ft-mse")
    aux["image_encoder"].save_pretrained(root / "sd-image-variations" / "image_encoder")
    processor = type(aux["feature_extractor"])(size={"shortest_edge": 192}, crop_size={"height": 192, "width": 192})
    processor.save_pretrained(root / "sd-image-variations" / "feature_extractor")
    return root


@pytest.fixture(scope="module")
def golden_src(src, tmp_path_factory):
    """sd-vae-ft-mse/ and sd-image-variations/ that fit the golden set (``src``'s fit the tiny preset): the VAE's
    latent channels and downsampling (= the pose guider's) and the image encoder's projection_dim (= the UNet's
    cross_attention_dim) are read from golden.json."""
    from diffusers import AutoencoderKL
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    sizes = golden_sizes()
    blocks = sizes.pose_scale.bit_length()  # a VAE with n blocks downsamples 2 ** (n - 1) times
    assert 2 ** (blocks - 1) == sizes.pose_scale, sizes.pose_scale
    root = tmp_path_factory.mktemp("golden_sources")
    torch.manual_seed(5)
    vae = dict(
        TINY_VAE,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(32,) * blocks,
        latent_channels=sizes.latent_channels,
    )
    AutoencoderKL(**vae).save_pretrained(root / "sd-vae-ft-mse")
    clip = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        patch_size=32,
        image_size=224,
        projection_dim=sizes.cross_attention_dim,
    )
    CLIPVisionModelWithProjection(clip).save_pretrained(root / "sd-image-variations" / "image_encoder")
    processor = src / "sd-image-variations" / "feature_extractor"
    shutil.copytree(processor, root / "sd-image-variations" / "feature_extractor")
    return root


def assert_same_weights(module, reference):
    a, b = module.state_dict(), reference.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]


def assert_complete(out):
    index = json.loads((out / "model_index.json").read_text())
    assert all(name in index and (out / name).is_dir() for name in ALL), index
    assert index["feature_extractor"][1] == image_processor_class().__name__
    assert not list(out.parent.glob(f".{out.name}.*"))  # no temporary directory left behind
    return index


def reload(out):
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPVisionModelWithProjection

    return {
        "networks": load_networks(out),
        "vae": AutoencoderKL.from_pretrained(out / "vae"),
        "image_encoder": CLIPVisionModelWithProjection.from_pretrained(out / "image_encoder"),
        "feature_extractor": image_processor_class().from_pretrained(out / "feature_extractor"),
        "scheduler": DDIMScheduler.from_pretrained(out / "scheduler"),
    }


# -- original-format (LDM) VAE checkpoints -------------------------------------------------------------------------


def ldm_key(key: str, n_up: int) -> str:
    """diffusers AutoencoderKL name -> the original (LDM) name, for building test checkpoints."""
    up = lambda m: f"up.{n_up - 1 - int(m[1])}."  # noqa: E731 - LDM numbers the decoder blocks from the bottom
    key = re.sub(r"down_blocks\.(\d+)\.resnets\.", r"down.\1.block.", key)
    key = re.sub(r"down_blocks\.(\d+)\.downsamplers\.0\.", r"down.\1.downsample.", key)
    key = re.sub(r"up_blocks\.(\d+)\.resnets\.", lambda m: up(m) + "block.", key)
    key = re.sub(r"up_blocks\.(\d+)\.upsamplers\.0\.", lambda m: up(m) + "upsample.", key)
    key = re.sub(r"mid_block\.resnets\.(\d)\.", lambda m: f"mid.block_{int(m[1]) + 1}.", key)
    key = key.replace("mid_block.attentions.0.", "mid.attn_1.")
    renames = {
        "group_norm": "norm",
        "to_q": "q",
        "to_k": "k",
        "to_v": "v",
        "to_out.0": "proj_out",
        "conv_shortcut": "nin_shortcut",
        "conv_norm_out": "norm_out",
    }
    for old, new in renames.items():
        key = key.replace(f".{old}.", f".{new}.")
    return components.LDM_VAE_PREFIX + key


def ldm_state_dict(vae) -> dict[str, torch.Tensor]:
    n_up = len(vae.config.up_block_types)
    out = {}
    for key, tensor in vae.state_dict().items():
        if ".attentions." in key and tensor.ndim == 2:
            tensor = tensor[:, :, None, None]  # LDM's attention projections are 1x1 convolutions
        out[ldm_key(key, n_up)] = tensor.clone().contiguous()
    return out


@pytest.fixture(scope="module")
def tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(4)
    vae = AutoencoderKL(**TINY_VAE)
    for p in vae.parameters():  # no zero or one initialisations: every tensor distinct
        torch.nn.init.normal_(p, std=0.1)
    return vae


@pytest.fixture(scope="module")
def sd_file(tiny_vae, tmp_path_factory):
    """An original-format SD checkpoint: the VAE under first_stage_model., plus (ignored) UNet keys."""
    path = tmp_path_factory.mktemp("sd") / "v1-5-pruned-emaonly.safetensors"
    extra = {"model.diffusion_model.input_blocks.0.0.weight": torch.randn(8, 4, 3, 3)}
    save_file({**ldm_state_dict(tiny_vae), **extra}, path)
    return path


def test_vae_from_single_file_reproduces_the_weights(tiny_vae, sd_file):
    state = read_checkpoint(sd_file)
    assert state and all(k.startswith("first_stage_model.") for k in state)  # only the VAE is read
    assert_same_weights(vae_from_single_file(state, TINY_VAE, str(sd_file)), tiny_vae)


def test_ckpt_with_state_dict_wrapper_loads(tiny_vae, tmp_path):
    path = tmp_path / "sd15.ckpt"
    torch.save({"state_dict": ldm_state_dict(tiny_vae), "global_step": 840000}, path)
    assert_same_weights(vae_from_single_file(read_checkpoint(path), TINY_VAE), tiny_vae)


def test_file_without_vae_keys_is_a_clear_error(tmp_path):
    path = tmp_path / "unet_only.safetensors"
    save_file({"model.diffusion_model.out.2.weight": torch.zeros(4, 8, 3, 3)}, path)
    with pytest.raises(ValueError, match=r"unet_only\.safetensors.*first_stage_model"):
        vae_from_single_file(read_checkpoint(path), TINY_VAE, str(path))


def test_vae_keys_that_do_not_fit_are_named(tiny_vae):
    state = ldm_state_dict(tiny_vae)
    del state["first_stage_model.decoder.conv_in.weight"]
    with pytest.raises(ValueError, match=r"sd\.ckpt.*decoder\.conv_in\.weight"):
        vae_from_single_file(state, TINY_VAE, "sd.ckpt")
    state = ldm_state_dict(tiny_vae)
    state["first_stage_model.encoder.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"encoder\.extra\.weight"):
        vae_from_single_file(state, TINY_VAE, "sd.ckpt")


def test_sd15_single_file_through_the_cli(tiny_vae, sd_file, src, tmp_path, monkeypatch):
    sd15 = dataclasses.replace(SIZES["sd15"], vae=TINY_VAE)  # the real SD-1.5 VAE is too big for a unit test
    monkeypatch.setitem(SIZES, "sd15", sd15)
    out = tmp_path / "model"
    args = [
        "--networks",
        str(src / "networks"),
        "--sd15",
        str(sd_file),
        "--image-encoder",
        str(src / "sd-image-variations"),
    ]
    assert main(["convert", "assemble", *args, "--out", str(out)]) == 0
    assert_complete(out)
    assert_same_weights(reload(out)["vae"], tiny_vae)


# -- assembling ------------------------------------------------------------------------------------------------


def test_assemble_reloads_every_component_with_the_source_weights(src, tmp_path):
    from diffusers import AutoencoderKL
    from transformers import CLIPVisionModelWithProjection

    out = assemble_model_directory(
        tmp_path / "model", src / "networks", src / "sd-vae-ft-mse", src / "sd-image-variations"
    )
    assert_complete(out)
    got = reload(out)
    assert_same_weights(got["networks"], load_networks(src / "networks"))
    assert_same_weights(got["vae"], AutoencoderKL.from_pretrained(src / "sd-vae-ft-mse"))
    encoder = CLIPVisionModelWithProjection.from_pretrained(src / "sd-image-variations" / "image_encoder")
    assert_same_weights(got["image_encoder"], encoder)
    assert got["feature_extractor"].crop_size["height"] == 192  # the repository's processor, not the default
    assert {k: got["scheduler"].config[k] for k in SCHEDULER_V2} == SCHEDULER_V2


def test_image_encoder_folder_pointed_at_directly(src, tmp_path):
    folder = src / "sd-image-variations" / "image_encoder"
    encoder, processor = load_image_encoder(folder)
    assert processor.crop_size["height"] == 192  # the sibling feature_extractor/
    alone = shutil.copytree(folder, tmp_path / "clip")
    encoder_alone, default = load_image_encoder(alone)
    assert_same_weights(encoder_alone, encoder)
    assert default.size["shortest_edge"] == 224 and default.crop_size["height"] == default.crop_size["width"] == 224
    assert tuple(default.image_mean) == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert tuple(default.image_std) == pytest.approx((0.26862954, 0.26130258, 0.27577711))


def test_vae_from_an_sd15_diffusers_folder(src, tmp_path):
    sd15 = tmp_path / "stable-diffusion-v1-5"
    shutil.copytree(src / "sd-vae-ft-mse", sd15 / "vae")
    assert_same_weights(load_vae(sd15), load_vae(src / "sd-vae-ft-mse"))


def test_cli_assemble_end_to_end(src, tmp_path, capsys):
    out = tmp_path / "model"
    args = ["--networks", str(src / "networks"), "--vae", str(src / "sd-vae-ft-mse")]
    args += ["--image-encoder", str(src / "sd-image-variations" / "image_encoder"), "--out", str(out)]
    assert main(["convert", "assemble", *args]) == 0
    assert str(out) in capsys.readouterr().out
    assert_complete(out)
    load_networks(out)
    assert main(["convert", "assemble", *args]) == 2  # refuses to overwrite ...
    assert "--overwrite" in capsys.readouterr().err
    assert main(["convert", "assemble", *args, "--overwrite"]) == 0  # ... unless told to


def test_projection_dim_mismatch_is_refused_before_writing(src, tmp_path, capsys):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cross = json.loads((src / "networks" / "denoising_unet" / "config.json").read_text())["cross_attention_dim"]
    projection = cross + 16  # does not fit the networks, whatever their width
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        patch_size=32,
        image_size=224,
        projection_dim=projection,
    )
    CLIPVisionModelWithProjection(config).save_pretrained(tmp_path / "clip_wide")
    out = tmp_path / "model"
    encoder = str(tmp_path / "clip_wide")
    args = ["--networks", str(src / "networks"), "--vae", str(src / "sd-vae-ft-mse"), "--image-encoder", encoder]
    assert main(["convert", "assemble", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"projection_dim={projection}" in err and f"cross_attention_dim={cross}" in err
    assert str(tmp_path / "clip_wide" / "config.json") in err and "denoising_unet/config.json" in err
    assert not out.exists() and not list(tmp_path.glob(".model.*"))


def test_missing_path_names_flag_and_path(src, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "sd-vae-ft-mse"
    args = [
        "--networks",
        str(src / "networks"),
        "--vae",
        str(missing),
        "--image-encoder",
        str(src / "sd-image-variations"),
    ]
    assert main(["convert", "assemble", *args, "--out", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("animate-anyone convert assemble: error: --vae") and str(missing) in err
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("flag", ["--vae", "--image-encoder", "--networks"])
def test_folder_of_the_wrong_kind_says_what_was_expected(src, tmp_path, capsys, flag):
    paths = {
        "--networks": src / "networks",
        "--vae": src / "sd-vae-ft-mse",
        "--image-encoder": src / "sd-image-variations",
    }
    paths[flag] = tmp_path / "empty"
    paths[flag].mkdir()
    args = [a for flag_path in paths.items() for a in map(str, flag_path)]
    assert main(["convert", "assemble", *args, "--out", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "empty") in err and "expected" in err and "config.json" in err
    assert not (tmp_path / "model").exists()


def test_check_compatible_names_channel_mismatches():
    unet = ({"in_channels": 4, "out_channels": 4, "cross_attention_dim": 768}, "unet/config.json")
    encoder = ({"projection_dim": 768}, "image_encoder/config.json")
    with pytest.raises(ValueError, match=r"vae/config.json: latent_channels=16"):
        check_compatible(unet, ({"latent_channels": 16}, "vae/config.json"), encoder)
    unet_9 = ({**unet[0], "in_channels": 9}, "unet/config.json")
    with pytest.raises(ValueError, match=r"latent_channels=4 \(vae/config.json\).*in_channels=9 \(unet/config.json\)"):
        check_compatible(unet_9, ({"latent_channels": 4}, "vae/config.json"), encoder)
    check_compatible(unet, ({"latent_channels": 4}, "vae/config.json"), encoder)


# -- convert moore ---------------------------------------------------------------------------------------------


def test_convert_moore_with_vae_and_image_encoder_writes_a_complete_directory(golden_src, tmp_path):
    out = tmp_path / "model"
    aux = ["--vae", str(golden_src / "sd-vae-ft-mse"), "--image-encoder", str(golden_src / "sd-image-variations")]
    assert main(golden_convert_args(tmp_path, out) + aux) == 0
    assert_complete(out)
    got = reload(out)
    golden_pose_guider = load_file(golden_dir() / "weights_pose_guider.safetensors")
    assert all(torch.equal(got["networks"].pose_guider.state_dict()[k], v) for k, v in golden_pose_guider.items())


def test_convert_moore_takes_vae_and_unet_config_from_an_sd15_folder(golden_src, tmp_path):
    sd15 = tmp_path / "stable-diffusion-v1-5"
    shutil.copytree(golden_src / "sd-vae-ft-mse", sd15 / "vae")
    (sd15 / "unet").mkdir()
    (sd15 / "unet" / "config.json").write_text(json.dumps(golden_spec()["unet_config_2d"]))  # not SD-1.5's size
    out = tmp_path / "model"
    aux = ["--sd15", str(sd15), "--image-encoder", str(golden_src / "sd-image-variations")]
    assert main(golden_convert_args(tmp_path, out, unet_config=False) + aux) == 0
    assert_complete(out)
    assert_same_weights(reload(out)["vae"], load_vae(golden_src / "sd-vae-ft-mse"))


def test_convert_moore_without_auxiliaries_writes_networks_and_a_note(tmp_path, capsys):
    out = tmp_path / "model"
    assert main(golden_convert_args(tmp_path, out)) == 0
    assert "--image-encoder" in capsys.readouterr().err
    assert sorted(json.loads((out / "model_index.json").read_text())) == sorted(
        ["_class_name", "_diffusers_version", "use_reference_net", *ALL[:3]]
    )


def test_convert_moore_checks_auxiliaries_before_converting(golden_src, tmp_path, capsys):
    out = tmp_path / "model"
    aux = ["--vae", str(golden_src / "sd-vae-ft-mse"), "--image-encoder", str(tmp_path / "missing")]
    assert main(golden_convert_args(tmp_path, out) + aux) == 2
    assert f"--image-encoder: {tmp_path / 'missing'}" in capsys.readouterr().err
    assert not out.exists()
