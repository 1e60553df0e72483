"""The light decoder (``models.LightDecoder``, ``train light-decoder``, ``decoder="light"``)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone.model_dir import ModelDirectory
from animate_anyone.models import LightDecoder
from animate_anyone.pipelines.loading import load_pipeline
from animate_anyone.training.light_decoder import train_light_decoder
from toy_data import make_toy_dataset


@pytest.fixture(scope="module")
def model_with_light_decoder(tmp_path_factory, tiny_model_dir):
    """A copy of the tiny model with a light decoder trained for a few steps on toy frames, and its report."""
    root = tmp_path_factory.mktemp("light")
    data = make_toy_dataset(root / "toy", clips=2, frames=6, size=(64, 64))
    model = shutil.copytree(tiny_model_dir, root / "model")
    report = train_light_decoder(model, [data], steps=40, batch_size=4, lr=3e-3, channels=16, blocks=1, progress=False)
    return model, data, report


def test_training_writes_a_listed_component_that_learns_the_vae_decode(model_with_light_decoder, tmp_path):
    """The component is written and listed; 40 steps bring it closer to the VAE's decode than it started (the same
    seed's untrained decoder on the same held batch); a second run needs --overwrite."""
    model, data, report = model_with_light_decoder
    directory = ModelDirectory(model)
    assert directory.index()["light_decoder"] == ["animate_anyone.models", "LightDecoder"]
    directory.check(("light_decoder",))
    decoder = LightDecoder.from_pretrained(model / "light_decoder")
    assert decoder.config.upsampling == 8 and decoder.config.channels == 16
    untrained = train_light_decoder(
        shutil.copytree(model, tmp_path / "again"),
        [data],
        steps=1,
        lr=1e-9,
        channels=16,
        blocks=1,
        batch_size=4,
        overwrite=True,
        progress=False,
    )
    assert report["psnr_vs_vae_decode"] > untrained["psnr_vs_vae_decode"] + 3, (report, untrained)
    with pytest.raises(FileExistsError, match="pass overwrite to train a new one"):
        train_light_decoder(model, [data], steps=1, progress=False)


def test_pipeline_decodes_with_the_light_decoder_when_asked(model_with_light_decoder, tiny_model_dir):
    """``decoder="light"``: the frames are the light decoder applied to the call's final latents (as the denoiser
    made them), clamped and rounded; the default still decodes with the VAE; a model without one, or an unknown
    decoder, is refused in one line naming the fix."""
    model, _, _ = model_with_light_decoder
    pipe = load_pipeline(model, "cpu", "float32", progress=False)
    reference = PIL.Image.new("RGB", (64, 64), (150, 90, 60))
    poses = np.zeros((3, 64, 64, 3), np.uint8)
    poses[:, 20:44, 30:34] = 255

    def call(**kwargs):
        return pipe(reference, poses, {"steps": 2}, generator=torch.Generator().manual_seed(0), **kwargs).frames

    latents = call(output_type="latent")  # (1, 4, f, h, w)
    with torch.no_grad():
        images = pipe.light_decoder(latents[0].transpose(0, 1))  # (f, 3, H, W)
    expected = ((images / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    light = call(decoder="light")
    np.testing.assert_array_equal(light, expected)
    assert np.abs(call().astype(int) - light).mean() > 1  # the VAE's frames differ
    with pytest.raises(ValueError, match="decoder=.light.: this model has no light_decoder; convert the public TAESD"):
        load_pipeline(tiny_model_dir, "cpu", "float32", progress=False)(reference, poses, decoder="light")
    with pytest.raises(ValueError, match="decoder='fast': choose one of vae, light"):
        call(decoder="fast")


def test_export_keeps_the_light_decoder(model_with_light_decoder, tmp_path):
    """A model trained (or distilled) from a directory with a light decoder keeps it (the VAE is the same)."""
    from animate_anyone.training.checkpoint import export_model

    model, _, _ = model_with_light_decoder
    directory = ModelDirectory(model)
    out = export_model(directory.load_networks(), model, directory.load_component("scheduler"), tmp_path / "out")
    assert json.loads((out / "model_index.json").read_text())["light_decoder"][1] == "LightDecoder"
    assert (out / "light_decoder" / "diffusion_pytorch_model.safetensors").read_bytes() == (
        model / "light_decoder" / "diffusion_pytorch_model.safetensors"
    ).read_bytes()


def test_animate_command_takes_the_decoder(model_with_light_decoder, tiny_model_dir, tmp_path, capsys):
    """`animate --decoder light` reaches the pipeline (its frames are not the VAE's); on a model without a light
    decoder it stops with the one line naming the fix, and writes nothing."""
    from animate_anyone.cli.main import main
    from animate_anyone.media import write_video

    model, _, _ = model_with_light_decoder
    reference = tmp_path / "ref.png"
    PIL.Image.new("RGB", (64, 64), (150, 90, 60)).save(reference)
    pose = write_video(tmp_path / "pose.mp4", [np.full((64, 64, 3), 40 * i, np.uint8) for i in range(3)], 8)

    def animate(model_dir, out, *extra):
        argv = ["animate", "--model", str(model_dir), "--reference", str(reference), "--pose", str(pose)]
        return main([*argv, "--out", str(out), "--steps", "2", "--quiet", *extra])  # a folder: PNG frames

    assert animate(model, tmp_path / "vae") == 0 and animate(model, tmp_path / "light", "--decoder", "light") == 0
    first = [np.asarray(PIL.Image.open(sorted((tmp_path / name).glob("*.png"))[0])) for name in ("vae", "light")]
    assert np.abs(first[0].astype(int) - first[1]).mean() > 1
    assert animate(tiny_model_dir, tmp_path / "none", "--decoder", "light") == 2
    assert "this model has no light_decoder; convert the public TAESD decoder" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_an_unknown_decoder_is_refused_before_loading(tmp_path, capsys):
    """`animate --decoder fast`: the typed config refuses it, naming the key, before any weights load (the model
    directory does not even exist)."""
    from animate_anyone.cli.main import main

    argv = ["animate", "--model", str(tmp_path / "no-model"), "--reference", "r.png", "--pose", "p.mp4"]
    assert main([*argv, "--out", str(tmp_path / "o.mp4"), "--decoder", "fast"]) == 2
    err = capsys.readouterr().err
    assert "decoder" in err and "fast" in err and "no-model" not in err, err


# -- the public light decoder: TAESD (convert light-decoder) ------------------------------------------------------


@pytest.fixture(scope="module")
def taesd_model(tmp_path_factory, tiny_model_dir):
    """A copy of the tiny model (an SD-1.5-shaped VAE) given a random TAESD decoder by `convert light-decoder`."""
    from taesd_model import model_with_taesd

    return model_with_taesd(tmp_path_factory.mktemp("taesd"), tiny_model_dir)


def test_taesd_decodes_exactly_as_autoencoder_tiny(tmp_path):
    """The published TAESD config gives TAESD's own LightDecoder (1,222,531 parameters, as TAESD's README counts its
    decoder), and the converted decoder draws, from the denoiser's latents, exactly what diffusers' AutoencoderTiny
    draws when a pipeline decodes them (``vae.decode(latents / scaling_factor)``, scaling_factor 1.0), in [-1, 1] as the
    VAE's frames are; the original release's layout
    (``N.*`` of an nn.Sequential behind Clamp) gives the same tensors."""
    from animate_anyone.convert.light_decoder import TAESD_DECODER, light_decoder_state
    from taesd_model import original_decoder_state, published_config, random_taesd

    taesd = random_taesd()
    arguments, state = light_decoder_state(taesd.state_dict(), published_config(), "taesd")
    assert arguments == TAESD_DECODER
    decoder = LightDecoder(**arguments).eval()
    decoder.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in decoder.parameters()) == 1_222_531
    latents = 2.5 * torch.randn(2, 4, 6, 5)  # the denoiser's scale (SD-1.x latents x 0.18215: about unit variance)
    with torch.no_grad():
        light = decoder(latents)
        expected = taesd.decode(latents / taesd.config.scaling_factor).sample
    assert light.shape == (2, 3, 48, 40) and torch.equal(light, expected)
    # DecoderTiny: latents clamped softly to (-3, 3), its [0, 1] image convention mapped to [-1, 1] (not clipped)
    with torch.no_grad():
        assert torch.equal(light, decoder.decoder.layers(torch.tanh(latents / 3) * 3) * 2 - 1)
    original = original_decoder_state(taesd)
    assert "1.weight" in original and "3.conv.0.weight" in original and "0.weight" not in original
    arguments, state_from_original = light_decoder_state(original, None, "taesd_decoder.safetensors")
    assert arguments == TAESD_DECODER and state_from_original.keys() == state.keys()
    assert all(torch.equal(state_from_original[k], state[k]) for k in state)


def test_taesd_conversion_is_strict():
    """A missing, an extra or a misshapen decoder tensor is refused naming it (the encoder's are dropped, knowingly);
    a config for another latent space or a decoder LightDecoder cannot express is refused naming the field."""
    from animate_anyone.convert.light_decoder import light_decoder_state
    from animate_anyone.convert.tables import ConversionError
    from animate_anyone.weights import WeightsError
    from taesd_model import original_decoder_state, published_config, random_taesd

    state, config = random_taesd().state_dict(), published_config()
    missing = {k: v for k, v in state.items() if k != "decoder.layers.2.conv.0.weight"}
    with pytest.raises(WeightsError, match=r"1 missing keys \(decoder\.layers\.2\.conv\.0\.weight\)"):
        light_decoder_state(missing, config)
    with pytest.raises(WeightsError, match=r"1 unexpected keys \(decoder\.layers\.99\.weight"):
        light_decoder_state({**state, "decoder.layers.99.weight": torch.zeros(1)}, config)
    with pytest.raises(WeightsError, match=r"1 unexpected keys \(vae_scale"):
        light_decoder_state({**state, "vae_scale": torch.zeros(1)}, config)
    misshapen = {**state, "decoder.layers.0.weight": torch.zeros(64, 16, 3, 3)}
    with pytest.raises(WeightsError, match=r"shape mismatches .*decoder\.layers\.0\.weight: \(64, 16, 3, 3\)"):
        light_decoder_state(misshapen, config)
    original = original_decoder_state(random_taesd())
    with pytest.raises(WeightsError, match=r"missing keys \(decoder\.layers\.17\.conv\.0\.bias"):
        light_decoder_state({k: v for k, v in original.items() if k != "18.conv.0.bias"})
    with pytest.raises(WeightsError, match=r"unexpected keys \(20\.weight"):
        light_decoder_state({**original, "20.weight": torch.zeros(3)})
    for field, value in (("latent_channels", 16), ("scaling_factor", 0.13025), ("shift_factor", 0.0609)):
        with pytest.raises(ConversionError, match=rf"{field}={value}: another latent space"):
            light_decoder_state(state, {**config, field: value})
    with pytest.raises(ConversionError, match=r"num_decoder_blocks=\[3, 3, 1\]: upsamples 4x, SD-1.x 8x"):
        light_decoder_state(state, {**config, "num_decoder_blocks": [3, 3, 1], "decoder_block_out_channels": [64] * 3})
    with pytest.raises(ConversionError, match=r"act_fn='silu': LightDecoder uses relu"):
        light_decoder_state(state, {**config, "act_fn": "silu"})
    with pytest.raises(ConversionError, match=r"_class_name='AutoencoderKL': not an AutoencoderTiny"):
        light_decoder_state(state, {**config, "_class_name": "AutoencoderKL"})


def test_convert_command_checks_before_it_writes(tmp_path, tiny_model_dir, mini_model_dir, capsys):
    """`convert light-decoder`: a TAESD of another latent space, a model whose VAE is not SD-1.x's (the miniature
    model: 4x, 8 channels), a missing path or an existing light decoder without --overwrite stop it in one line naming
    the flag or field, exit status 2, and nothing is written; then it writes a listed, strict component."""
    from animate_anyone.cli.main import main
    from animate_anyone.weights import read_state_dict
    from taesd_model import original_decoder_state, random_taesd, save_taesd_folder

    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    index = (model / "model_index.json").read_text()
    taesd = save_taesd_folder(tmp_path / "taesd")
    sd3 = save_taesd_folder(tmp_path / "sd3-tiny", random_taesd(latent_channels=16))
    (sd3 / "config.json").write_text(
        json.dumps({**json.loads((sd3 / "config.json").read_text()), "latent_channels": 16})
    )
    xl = shutil.copytree(taesd, tmp_path / "taesdxl")

    def convert(*argv):
        code = main(["convert", "light-decoder", *argv])
        return code, capsys.readouterr()

    refusals = [
        (["--taesd", str(sd3), "--model", str(model)], "latent_channels=16: another latent space"),
        (["--taesd", str(xl), "--model", str(model)], "is TAESD for SDXL's latents"),
        (["--taesd", str(taesd), "--model", str(mini_model_dir)], "its VAE's latent_channels is 8: TAESD decodes"),
        (["--taesd", str(tmp_path / "none"), "--model", str(model)], "--taesd: "),
        (["--taesd", str(taesd), "--model", str(tmp_path / "none")], "model directory"),
    ]
    for argv, message in refusals:
        code, out = convert(*argv)
        assert code == 2 and message in out.err and len(out.err.strip().splitlines()) == 1, (argv, out.err)
    assert not (model / "light_decoder").exists() and (model / "model_index.json").read_text() == index
    assert not (mini_model_dir / "light_decoder").exists()
    code, out = convert("--taesd", str(taesd), "--model", str(model))
    assert code == 0 and "1.22 M parameters, diffusers layout" in out.out
    assert ModelDirectory(model).index()["light_decoder"] == ["animate_anyone.models", "LightDecoder"]
    written = read_state_dict(model / "light_decoder" / "diffusion_pytorch_model.safetensors")
    source = read_state_dict(taesd / "diffusion_pytorch_model.safetensors")
    assert written.keys() == {k for k in source if k.startswith("decoder.")}
    assert all(torch.equal(written[k], source[k]) for k in written)
    code, out = convert("--taesd", str(taesd), "--model", str(model))
    assert code == 2 and "light_decoder exists; pass --overwrite to replace it" in out.err
    original = tmp_path / "taesd_decoder.safetensors"
    from safetensors.torch import save_file

    save_file(original_decoder_state(random_taesd(seed=1)), original)
    assert convert("--taesd", str(original), "--model", str(model), "--overwrite")[0] == 0
    assert not torch.equal(
        read_state_dict(model / "light_decoder" / "diffusion_pytorch_model.safetensors")["decoder.layers.0.weight"],
        written["decoder.layers.0.weight"],
    )


def test_pipeline_and_animate_decode_with_taesd(taesd_model, tmp_path):
    """decoder="light" on a model given TAESD: the pipeline's frames are the converted decoder applied to the final
    latents (as the denoiser made them), and `animate --decoder light` writes them."""
    from animate_anyone.cli.main import main

    model, _ = taesd_model
    pipe = load_pipeline(model, "cpu", "float32", progress=False)
    assert pipe.light_decoder.config.channels == 64 and pipe.light_decoder.config.blocks == 3
    reference = PIL.Image.new("RGB", (64, 64), (150, 90, 60))
    poses = np.zeros((3, 64, 64, 3), np.uint8)
    poses[:, 20:44, 30:34] = 255

    def call(**kwargs):
        return pipe(reference, poses, {"steps": 2}, generator=torch.Generator().manual_seed(0), **kwargs).frames

    latents = call(output_type="latent")
    with torch.no_grad():
        images = pipe.light_decoder(latents[0].transpose(0, 1))
    expected = ((images / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(call(decoder="light"), expected)
    reference_file = tmp_path / "ref.png"
    reference.save(reference_file)
    from animate_anyone.media import write_video

    pose = write_video(tmp_path / "pose.mp4", list(poses), 8)
    argv = ["animate", "--model", str(model), "--reference", str(reference_file), "--pose", str(pose), "--quiet"]
    assert main([*argv, "--steps", "2", "--decoder", "light", "--out", str(tmp_path / "light")]) == 0
    assert main([*argv, "--steps", "2", "--out", str(tmp_path / "vae")]) == 0
    first = [np.asarray(PIL.Image.open(sorted((tmp_path / n).glob("*.png"))[0])) for n in ("light", "vae")]
    assert np.abs(first[0].astype(int) - first[1]).mean() > 1
