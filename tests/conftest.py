"""Shared fixtures. Everything is built locally from tiny configs or the golden files: no network."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
MOORE_KEYS = FIXTURES / "moore" / "state_dict_keys"


def golden_dir() -> Path:
    """The Moore golden set: ``$MOORE_GOLDEN_DIR`` when set, else the copy shipped in tests/fixtures."""
    return Path(os.environ.get("MOORE_GOLDEN_DIR", FIXTURES / "moore" / "golden_tiny"))


def golden_spec() -> dict:
    return json.loads((golden_dir() / "golden.json").read_text())


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


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for tests about results rather than speed: on a shared machine with busy cores,
    multi-threaded CPU kernels can stall at OpenMP barriers instead of just slowing down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
