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
    with pytest.raises(ValueError, match="decoder='light': this model has no light_decoder; train one"):
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
    assert "this model has no light_decoder; train one" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_an_unknown_decoder_is_refused_before_loading(tmp_path, capsys):
    """`animate --decoder fast`: the typed config refuses it, naming the key, before any weights load (the model
    directory does not even exist)."""
    from animate_anyone.cli.main import main

    argv = ["animate", "--model", str(tmp_path / "no-model"), "--reference", "r.png", "--pose", "p.mp4"]
    assert main([*argv, "--out", str(tmp_path / "o.mp4"), "--decoder", "fast"]) == 2
    err = capsys.readouterr().err
    assert "decoder" in err and "fast" in err and "no-model" not in err, err
