"""Typed configs: YAML instances and dotted overrides; unknown keys and wrong types are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from animate_anyone.config import ConfigError, load_config, to_dict
from animate_anyone.training.config import TrainConfig

CONFIGS = Path(__file__).parents[1] / "configs" / "train"


@pytest.mark.parametrize("name", ["stage1.yaml", "stage2.yaml", "tiny.yaml"])
def test_shipped_configs_load(name):
    config = load_config(TrainConfig, CONFIGS / name)
    assert config.stage in (1, 2) and config.data.resolution[0] % 8 == 0


def test_overrides_are_typed_and_nested():
    config = load_config(
        TrainConfig,
        CONFIGS / "tiny.yaml",
        ["optim.lr=3e-5", "data.resolution=[128, 96]", "ema_decay=0.99", "noise.min_snr_gamma=null", "max_steps=7"],
    )
    assert config.optim.lr == 3e-5 and config.data.resolution == (128, 96) and config.ema_decay == 0.99
    assert config.noise.min_snr_gamma is None and config.max_steps == 7
    assert to_dict(config)["data"]["resolution"] == [128, 96]


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown key(s) optim.lrr"),
        ("max_steps=ten", "max_steps: expected int"),
        ("mixed_precision=fp8", "mixed_precision: 'fp8' is not one of"),
        ("data.resolution=[1, 2, 3]", "expected 2 values"),
        ("gradient_checkpointing=1", "expected bool"),
        ("stage=3", "stage: 3 is not one of"),
        ("nonsense", "must look like key.sub=value"),
    ],
)
def test_bad_keys_and_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_config(TrainConfig, CONFIGS / "tiny.yaml", [override])


def test_unknown_key_in_yaml(tmp_path):
    (tmp_path / "bad.yaml").write_text("data:\n  rezolution: [64, 64]\n")
    with pytest.raises(ConfigError, match="data.rezolution"):
        load_config(TrainConfig, tmp_path / "bad.yaml")


@pytest.mark.parametrize("path", sorted((CONFIGS.parent / "animate").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_inference_configs_load(path):
    from animate_anyone.jobs.animate_config import AnimateConfig

    config = load_config(AnimateConfig, path)
    settings = config.sampling.resolve()  # every sampling value checked
    assert settings.context_overlap < settings.context_frames and config.optimisations.window_batch >= 1


def test_default_inference_yaml_lists_every_default():
    """configs/animate/default.yaml is the documentation of every key: it must equal the dataclass defaults."""
    from animate_anyone.jobs.animate_config import AnimateConfig

    assert to_dict(load_config(AnimateConfig, CONFIGS.parent / "animate" / "default.yaml")) == to_dict(AnimateConfig())


def test_an_inline_section_is_held_whole_and_written_at_its_holders_level(tmp_path):
    """``AnimateConfig.sampling`` is a ``SamplingRequest`` object; its keys stay top-level in YAML, overrides and
    dotted form, and the section's own name is no key."""
    from animate_anyone.config import dotted, keys
    from animate_anyone.jobs.animate_config import AnimateConfig
    from animate_anyone.pipelines.settings import SamplingRequest

    path = tmp_path / "job.yaml"
    path.write_text("steps: 7\nguidance_interval: [0, 0.5]\nseed: 3\npose:\n  align: false\n")
    config = load_config(AnimateConfig, path, ["window_mode=anchored"], {"preset": "fast"})
    assert config.sampling == SamplingRequest(
        preset="fast", steps=7, guidance_interval=(0.0, 0.5), window_mode="anchored"
    )
    assert (config.seed, config.pose.align) == (3, False)
    flat = dotted(config)
    assert flat["steps"] == 7 and flat["guidance_interval"] == [0.0, 0.5] and "sampling" not in to_dict(config)
    assert "sampling.steps" not in flat and set(flat) >= {"preset", "cache_depth", "pose.align", "optimisations.sdpa"}
    assert load_config(AnimateConfig, None, [], flat) == config  # the written keys read back to the same config
    assert keys(AnimateConfig)[:3] == ["model", "preset", "steps"]
    with pytest.raises(ConfigError, match=r"unknown key\(s\) sampling; valid keys: model, preset, steps"):
        load_config(AnimateConfig, None, ["sampling={steps: 3}"])
    with pytest.raises(ConfigError, match="^steps: expected int, got 'many'$"):
        load_config(AnimateConfig, None, ["steps=many"])
