"""Model directories: init-model, save/load round trip, convert from the public files, clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from animate_anyone.cli.main import main
from animate_anyone.model_dir import ModelDirectory, save_networks
from conftest import golden_convert_args, golden_dir, golden_spec


def load_networks(path):
    return ModelDirectory(path).load_networks()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny"
    assert main(["init-model", "--architecture", "tiny", "--out", str(out), "--seed", "3"]) == 0
    return out


def test_init_model_writes_a_complete_loadable_directory(tiny_dir):
    index = json.loads((tiny_dir / "model_index.json").read_text())
    for name in (
        "reference_net",
        "denoising_unet",
        "pose_guider",
        "vae",
        "image_encoder",
        "feature_extractor",
        "scheduler",
    ):
        assert name in index and (tiny_dir / name).is_dir(), name
    model = load_networks(tiny_dir)
    # Stock initialisation: pose guider output and temporal output projections start at zero.
    assert model.pose_guider.conv_out.weight.abs().sum() == 0
    motion_out = [p for n, p in model.denoising_unet.named_parameters() if ".motion_modules." in n and "proj_out" in n]
    assert motion_out and all(p.abs().sum() == 0 for p in motion_out)
    assert not list(tiny_dir.parent.glob(".tiny.*"))  # no temporary directory left behind


def test_save_load_round_trip_preserves_outputs(tiny_dir, tmp_path):
    from animate_anyone.atomic import atomic_directory

    model = load_networks(tiny_dir).eval()
    for p in model.parameters():  # make every pathway non-trivial
        torch.nn.init.normal_(p, std=0.05)
    with atomic_directory(tmp_path / "copy") as tmp:
        save_networks(model, tmp)
    again = load_networks(tmp_path / "copy").eval()
    latents, ref = torch.randn(1, 4, 2, 8, 8), torch.randn(1, 4, 8, 8)
    embeds, pose = torch.randn(1, 1, 32), torch.rand(1, 3, 2, 64, 64)
    with torch.no_grad():
        outs = [
            m.denoise(latents, 500, embeds, m.encode_pose(pose), m.encode_reference(ref, embeds), 2.0)
            for m in (model, again)
        ]
    assert torch.equal(outs[0], outs[1])


def test_missing_component_is_named(tiny_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    shutil.rmtree(broken / "pose_guider")
    with pytest.raises(FileNotFoundError, match="pose_guider"):
        load_networks(broken)


def test_init_model_refuses_to_overwrite(tiny_dir, capsys):
    assert main(["init-model", "--architecture", "tiny", "--out", str(tiny_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_convert_moore_cli_reproduces_golden_outputs(tmp_path):
    out = tmp_path / "converted"
    assert main(golden_convert_args(tmp_path, out)) == 0
    model = load_networks(out).eval()
    step = load_file(golden_dir() / "unet_step.safetensors")
    for case, spec in sorted(golden_spec()["unet_cases"].items()):  # every case, with its own batch and scale
        t = {k[len(case) + 1 :]: v for k, v in step.items() if k.startswith(case + ".")}
        assert t["in.noisy_latents"].shape[0] == spec["batch"], case
        with torch.no_grad():
            bank = model.encode_reference(t["in.ref_latents"], t["in.image_embeds"])
            pose = model.encode_pose(t["in.pose_images"])
            latents, timestep, embeds = t["in.noisy_latents"], t["in.timestep"], t["in.image_embeds"]
            guided = model.denoise(latents, timestep, embeds, pose, bank, spec["guidance_scale"])
        assert (guided - t["out.cfg.guided_fp32bank"]).abs().max() <= 1e-4, case


def test_convert_moore_cli_names_missing_keys_and_writes_nothing(tmp_path, capsys):
    state = load_file(golden_dir() / "weights_reference_unet.safetensors")
    del state["mid_block.resnets.0.conv1.weight"]
    save_file(state, tmp_path / "ref.safetensors")
    args = golden_convert_args(tmp_path, tmp_path / "out")
    args[args.index("--reference-unet") + 1] = str(tmp_path / "ref.safetensors")
    assert main(args) == 2
    assert "mid_block.resnets.0.conv1.weight" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unreadable_weight_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "denoising_unet.pth"
    bad.write_bytes(b"not a checkpoint")
    args = golden_convert_args(tmp_path, tmp_path / "out")
    args[args.index("--denoising-unet") + 1] = str(bad)
    assert main(args) == 2
    assert "denoising_unet.pth" in capsys.readouterr().err


def test_fingerprint_follows_the_bytes_not_the_location(tiny_dir, tmp_path):
    import shutil

    copy = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(tiny_dir, copy)
    (copy / ".DS_Store").write_bytes(b"litter")  # hidden entries do not count
    (copy / "PROVENANCE.txt").write_text("how it was made")  # nor notes beside the model: configs and weights do
    original = ModelDirectory(tiny_dir).fingerprint()
    assert original.startswith("sha256:") and len(original) == len("sha256:") + 64
    assert ModelDirectory(copy).fingerprint() == original
    weights = copy / "denoising_unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last weight
    weights.write_bytes(bytes(data))
    assert ModelDirectory(copy).fingerprint() != original
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert ModelDirectory(copy).fingerprint() == original
    config = copy / "vae" / "config.json"
    config.write_text(config.read_text().replace('"sample_size"', '"sample_size" ', 1))  # one config byte more
    assert ModelDirectory(copy).fingerprint() != original
    shutil.copy(tiny_dir / "vae" / "config.json", config)
    (copy / "scheduler" / "scheduler_config.json").rename(copy / "scheduler" / "scheduler_config.json.bak")
    assert ModelDirectory(copy).fingerprint() != original  # a renamed file is another directory


def test_component_weights_are_what_from_pretrained_reads(tiny_dir, tmp_path):
    """A component folder's weights file is one of weights.PRETRAINED_SUFFIXES (.safetensors, .bin): a lone .pt is
    no weights file to check() and no part of the fingerprint, though read_state_dict reads it."""
    import shutil

    from animate_anyone.weights import PRETRAINED_SUFFIXES, WEIGHT_SUFFIXES

    assert set(PRETRAINED_SUFFIXES) == {".safetensors", ".bin"} and set(PRETRAINED_SUFFIXES) <= set(WEIGHT_SUFFIXES)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dir, copy)
    original = ModelDirectory(copy).fingerprint()
    (copy / "vae" / "old.pt").write_bytes(b"a stray checkpoint")
    assert ModelDirectory(copy).fingerprint() == original
    weights = copy / "pose_guider" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".pt"))
    with pytest.raises(FileNotFoundError, match="pose_guider has no weights file"):
        ModelDirectory(copy).check()
    without = ModelDirectory(copy).fingerprint()  # the Pose Guider's weights no longer count
    weights.with_suffix(".pt").rename(weights.with_suffix(".bin"))
    assert ModelDirectory(copy).check() and ModelDirectory(copy).fingerprint() not in (original, without)
