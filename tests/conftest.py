"""Shared fixtures. Everything is built locally from tiny configs or the golden files: no network."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
MOORE_KEYS = FIXTURES / "moore" / "state_dict_keys"
COMFYUI_PACK = Path(__file__).parents[1] / "integrations" / "comfyui"


def golden_dir() -> Path:
    """The Moore golden set: ``$MOORE_GOLDEN_DIR`` when set, else the copy shipped in tests/fixtures."""
    return Path(os.environ.get("MOORE_GOLDEN_DIR", FIXTURES / "moore" / "golden_tiny"))


def golden_spec() -> dict:
    return json.loads((golden_dir() / "golden.json").read_text())


@dataclass(frozen=True)
class GoldenSizes:
    """The set-dependent constants of a golden set, all read from its golden.json (see ``golden_sizes``)."""

    case: str  # the unet case the per-case values come from
    latent_channels: int
    cross_attention_dim: int
    embed_tokens: int  # image-embedding tokens (Moore: 1)
    frames: int
    latent_h: int
    latent_w: int
    pose_scale: int  # pose image size / latent size: the product of the pose guider's strides
    timestep: int
    guidance_scale: float
    max_frames: int  # length of the temporal positional encoding

    @property
    def pose_h(self) -> int:
        return self.pose_scale * self.latent_h

    @property
    def pose_w(self) -> int:
        return self.pose_scale * self.latent_w


def golden_sizes(case: str | None = None) -> GoldenSizes:
    """Sizes for tests that make their own inputs for the golden networks. Per-case values (frames, latent
    size, timestep, guidance scale) come from ``case``, by default the first unet case in name order."""
    spec = golden_spec()
    case = case or sorted(spec["unet_cases"])[0]
    c, unet, extra = spec["unet_cases"][case], spec["unet_config_2d"], spec["unet_additional_kwargs"]
    # Moore's PoseGuider has one stride-2 convolution per stage transition (default widths as configs_from_moore).
    stages = len(spec["pose_guider"].get("block_out_channels", (16, 32, 96, 256)))
    _, _, frames, h, w = c["shapes"]["in.noisy_latents"]
    return GoldenSizes(
        case=case,
        latent_channels=unet["in_channels"],
        cross_attention_dim=unet["cross_attention_dim"],
        embed_tokens=c["shapes"]["in.image_embeds"][1],
        frames=frames,
        latent_h=h,
        latent_w=w,
        pose_scale=2 ** (stages - 1),
        timestep=c["timestep"],
        guidance_scale=c["guidance_scale"],
        max_frames=extra["motion_module_kwargs"].get("temporal_position_encoding_max_len", 24),
    )


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def public_configs_directory(path: Path) -> Path:
    """A model directory of configs only (no weights): the denoising UNet config that ``convert moore`` derives
    from SD-1.5's unet/config.json (built on the meta device) and the README's VAE's published config
    (sd-vae-ft-mse). What reads configs before loading (default size, memory check) sees the users' model."""
    from animate_anyone.convert.moore import INFERENCE_V2_TEMPORAL, configs_from_moore
    from animate_anyone.models.sizes import SIZES, build_networks

    unet = json.loads((MOORE_KEYS / "sd15_unet_config.json").read_text())
    configs = configs_from_moore(unet, INFERENCE_V2_TEMPORAL, SIZES["sd15"].pose_guider)
    build_networks(configs, device="meta").denoising_unet.save_config(path / "denoising_unet")
    (path / "vae").mkdir(parents=True)
    (path / "vae" / "config.json").write_text(
        (FIXTURES / "public_configs" / "sd_vae_ft_mse_vae_config.json").read_text()
    )
    return path


def load_golden_model():
    """The golden networks converted by the project's converter (fresh instance on every call)."""
    from safetensors.torch import load_file

    from animate_anyone.convert.moore import configs_from_moore, networks_from_moore

    spec, d = golden_spec(), golden_dir()
    configs = configs_from_moore(spec["denoising_unet_config_3d"], spec["unet_additional_kwargs"], spec["pose_guider"])
    model = networks_from_moore(
        denoising_unet=[load_file(d / "weights_denoising_unet.safetensors")],
        reference_unet=load_file(d / "weights_reference_unet.safetensors"),
        pose_guider=load_file(d / "weights_pose_guider.safetensors"),
        configs=configs,
    )
    return model.eval()


@pytest.fixture(scope="session")
def golden_model():
    return load_golden_model()


@pytest.fixture
def fresh_golden_model():
    return load_golden_model()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A complete tiny model directory written by ``init-model`` (shared by the whole session: read only)."""
    from animate_anyone.jobs.init_model import init_model

    return init_model("tiny", tmp_path_factory.mktemp("models") / "tiny", seed=0)


@pytest.fixture(scope="session")
def mini_model_dir(tmp_path_factory):
    """A random miniature model directory (4x VAE, 4x Pose Guider) written by ``init-model`` (read only)."""
    from animate_anyone.jobs.init_model import init_model

    return init_model("mini", tmp_path_factory.mktemp("models") / "mini")


@pytest.fixture(scope="module")
def nodes():
    """The ComfyUI node pack, imported as ComfyUI imports a custom_nodes folder (a package), without ComfyUI."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "animate_anyone_nodes", COMFYUI_PACK / "__init__.py", submodule_search_locations=[str(COMFYUI_PACK)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    for name in [n for n in sys.modules if n == spec.name or n.startswith(spec.name + ".")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for tests about results rather than speed: on a shared machine with busy cores,
    multi-threaded CPU kernels can stall at OpenMP barriers instead of just slowing down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def golden_convert_args(tmp_path, out, unet_config=True) -> list[str]:
    """``convert moore`` arguments for the golden set's networks (its own UNet config unless ``unet_config=False``)."""
    spec, d = golden_spec(), golden_dir()
    (tmp_path / "extra.json").write_text(json.dumps(spec["unet_additional_kwargs"]))
    args = [
        "convert",
        "moore",
        "--denoising-unet",
        str(d / "weights_denoising_unet.safetensors"),
        "--reference-unet",
        str(d / "weights_reference_unet.safetensors"),
        "--pose-guider",
        str(d / "weights_pose_guider.safetensors"),
        "--unet-additional-kwargs",
        str(tmp_path / "extra.json"),
        "--out",
        str(out),
    ]
    if unet_config:
        (tmp_path / "unet.json").write_text(json.dumps(spec["denoising_unet_config_3d"]))
        args += ["--unet-config", str(tmp_path / "unet.json")]
    return args


@pytest.fixture
def sampler(monkeypatch):
    """What reaches the sampler: the ``SamplingSettings`` of each pipeline call. The sampler is replaced by this
    recorder (it returns the noise), so a call costs everything before the denoising steps and none of them."""
    from animate_anyone.pipelines import pipeline_animate_anyone

    seen = []

    def record(model, scheduler, noise, image_embeds, pose_features, reference, settings, **kwargs):
        seen.append(settings)
        return noise * scheduler.init_noise_sigma

    monkeypatch.setattr(pipeline_animate_anyone, "sample_video", record)
    return seen
