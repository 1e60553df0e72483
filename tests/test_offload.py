"""diffusers' CPU offloading and tiled VAE decoding as ``Optimisations`` (``offload``, ``vae_tiling``): the same
video as without them, every network reached through its offload hook (so that on an accelerator it is moved there
before it runs), and the settings reachable from the ``animate`` command.

On this CPU-only machine the "accelerator" is the CPU itself (``pipe.set_offload(offload, "cpu")``; the command
refuses offloading on the CPU): the hooks run, nothing moves; the memory they save on a GPU is counted by
``pipelines/peak_memory.py`` (tests/test_peak_memory.py) and measured by the GPU checklist (docs/performance.md).
diffusers names the CPU "cpu:0" as an offload target, which accelerate's layer hooks cannot take back to the meta
device (a stand-in artefact: a GPU is "cuda:0"); the sequential test hands accelerate the plain "cpu".
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone.config import SettingError
from animate_anyone.pipelines.loading import load_pipeline
from animate_anyone.pipelines.optimisations import Optimisations

SETTINGS = {"steps": 2}


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    reference = PIL.Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8))
    return reference, rng.integers(0, 255, (3, 64, 48, 3), dtype=np.uint8)


def video(pipe, inputs) -> np.ndarray:
    return pipe(*inputs, SETTINGS, generator=torch.Generator().manual_seed(0)).frames


@pytest.fixture(scope="module")
def plain(tiny_model_dir, inputs):
    return video(load_pipeline(tiny_model_dir, "cpu", "float32", progress=False), inputs)


def test_model_offload_reaches_every_network_through_its_hook_and_changes_nothing(
    tiny_model_dir, inputs, plain, monkeypatch
):
    from accelerate.hooks import CpuOffload

    onloaded = []
    original = CpuOffload.pre_forward

    def record(self, module, *args, **kwargs):
        onloaded.append(type(module).__name__)
        return original(self, module, *args, **kwargs)

    monkeypatch.setattr(CpuOffload, "pre_forward", record)
    pipe = load_pipeline(tiny_model_dir, "cpu", "float32", progress=False)
    pipe.set_offload("model", "cpu")
    assert pipe.optimisations.offload == "model"
    frames = video(pipe, inputs)
    assert np.array_equal(frames, plain)
    used = {"CLIPVisionModelWithProjection", "AutoencoderKL", "ReferenceNet", "PoseGuider", "AnimateAnyoneUNet"}
    assert set(onloaded) == used, onloaded
    assert onloaded.index("ReferenceNet") < onloaded.index("AnimateAnyoneUNet")
    pipe.set_optimisations(offload="none")  # back on the device, hooks gone
    assert not hasattr(pipe.denoising_unet, "_hf_hook") and np.array_equal(video(pipe, inputs), plain)


def test_sequential_offload_gives_the_same_video(tiny_model_dir, inputs, plain, monkeypatch):
    import accelerate

    offload = accelerate.cpu_offload
    plain_cpu = lambda model, device, **kw: offload(model, torch.device("cpu"), **kw)  # noqa: E731
    monkeypatch.setattr(accelerate, "cpu_offload", plain_cpu)
    pipe = load_pipeline(tiny_model_dir, "cpu", "float32", progress=False)
    pipe.set_offload("sequential", "cpu")
    assert hasattr(pipe.denoising_unet.conv_in, "_hf_hook")  # layer by layer
    assert np.array_equal(video(pipe, inputs), plain)


def test_tiled_vae_decoding_is_switched_on_and_off(tiny_model_dir, inputs):
    pipe = load_pipeline(tiny_model_dir, "cpu", "float32", progress=False)
    pipe.set_optimisations(vae_tiling=True)
    assert pipe.vae.use_tiling
    pipe.set_optimisations(vae_tiling=False)
    assert not pipe.vae.use_tiling


def test_an_unknown_offload_and_offloading_on_the_cpu_are_refused_in_one_line(tiny_model_dir, tmp_path, capsys):
    with pytest.raises(SettingError, match=r"^offload disk: must be one of none, model, sequential$"):
        Optimisations(offload="disk")
    with pytest.raises(SettingError, match=r"^offload model: moves the networks to an accelerator"):
        load_pipeline(tiny_model_dir, "cpu", "float32", progress=False, optimisations={"offload": "model"})
    from animate_anyone.cli.main import main

    reference = tmp_path / "ref.png"
    PIL.Image.new("RGB", (48, 64)).save(reference)
    argv = ["animate", "--model", str(tiny_model_dir), "--reference", str(reference), "--pose", str(reference)]
    argv += ["--out", str(tmp_path / "out.gif"), "--device", "cpu"]
    for value, rule in [("disk", "must be one of none, model, sequential"), ("model", "on the CPU they are in host")]:
        code = main([*argv, "--offload", value])
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert code == 2 and f"error: --offload {value}: " in error and rule in error, error
    assert not (tmp_path / "out.gif").exists()
