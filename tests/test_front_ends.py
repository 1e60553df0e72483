"""One table of sampling and window values, fed to the four front ends (the `animate` command, the Python API, the
app's service and the ComfyUI node): each accepts and refuses the same values, with the same rule in its message,
and every accepted value reaches the sampler unchanged.

The sampler is replaced by a recorder (it keeps the ``SamplingSettings`` it was handed and returns the noise), so
each accepted case costs a model call without the denoising steps; everything before it is the real road.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from animate_anyone.pipelines import pipeline_animate_anyone
from animate_anyone.pipelines.settings import RULES, SamplingRequest, SamplingSettings

NODE_FIELDS = ("preset", "steps", "guidance", "context_frames", "context_overlap")  # the node's widgets
WINDOW_LIMIT = "exceeds the temporal layers' positional-encoding limit of 32 frames"
LEVELS = "must be less than the denoising UNet's 3 levels"  # the tiny UNet

# (field, value, None when every front end must accept it, else the rule its message must carry)
CASES = [
    ("preset", "fast", None),
    ("preset", "turbo", "must be one of quality, fast, student"),
    ("steps", 1, None),
    ("steps", 3, None),
    ("steps", 0, RULES["steps"][1]),
    ("steps", -2, RULES["steps"][1]),
    ("guidance", 0.0, None),
    ("guidance", 1.0, None),
    ("guidance", 3.5, None),
    ("guidance", -0.5, RULES["guidance"][1]),
    ("guidance", -1.0, RULES["guidance"][1]),  # the node's "default" marker, an error everywhere else
    ("guidance", math.inf, RULES["guidance"][1]),
    ("scheduler", "euler", None),
    ("scheduler", "heun", RULES["scheduler"][1]),
    ("guidance_interval", (0.0, 0.5), None),
    ("guidance_interval", (0.2, 1.0), None),
    ("guidance_interval", (0.5, 0.5), RULES["guidance_interval"][1]),  # start == end: no step guided
    ("guidance_interval", (0.6, 0.2), RULES["guidance_interval"][1]),
    ("guidance_interval", (0.2, 1.5), RULES["guidance_interval"][1]),
    ("cache_interval", 1, None),
    ("cache_interval", 2, None),
    ("cache_interval", 0, RULES["cache_interval"][1]),
    ("cache_depth", 1, None),
    ("cache_depth", 2, None),
    ("cache_depth", 0, RULES["cache_depth"][1]),  # the command once took 0
    ("cache_depth", 3, LEVELS),  # the UNet's own limit, checked before any weights load
    ("context_frames", 1, None),
    ("context_frames", 32, None),
    ("context_frames", 0, RULES["context_frames"][1]),
    ("context_frames", 33, WINDOW_LIMIT),  # also for a video shorter than the window
    ("context_overlap", 0, None),
    ("context_overlap", 23, None),
    ("context_overlap", 24, "less than context_frames (24)"),
    ("context_overlap", -1, RULES["context_overlap"][1]),
    ("window_mode", "anchored", None),
    ("window_mode", "moore", None),
    ("window_mode", "loop", RULES["window_mode"][1]),
]
FRONT_ENDS = ["cli", "python", "app", "node"]
# The node's widgets always hold a value; these mean "the default" there (its one explicit mapping).
NODE_UNSET = {"preset": "model default", "steps": 0, "guidance": -1.0}


@pytest.fixture(scope="module")
def world(tiny_model_dir, nodes, tmp_path_factory):
    from animate_anyone.app.service import AnimateService
    from animate_anyone.media import write_video
    from animate_anyone.pipelines.loading import load_pipeline

    folder = tmp_path_factory.mktemp("front_ends")
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)
    poses = rng.integers(0, 255, (2, 64, 48, 3), dtype=np.uint8)
    Image.fromarray(reference).save(folder / "ref.png")
    write_video(folder / "pose", list(poses), 8.0)
    pipe = load_pipeline(tiny_model_dir, "cpu", "float32", progress=False)
    service = AnimateService(tiny_model_dir, device="cpu", workdir=folder / "app")
    node = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneAnimate"]()
    return dict(model=tiny_model_dir, folder=folder, reference=reference, poses=poses, pipe=pipe, service=service) | {
        "node": node
    }


def yaml_value(value) -> str:
    return "[" + ",".join(str(v) for v in value) + "]" if isinstance(value, tuple) else str(value)


def through(front_end: str, world: dict, values: dict, tmp_path) -> str | None:
    """Run one front end with ``values`` (SamplingRequest fields); its error message, or None when it ran."""
    try:
        if front_end == "cli":
            return _cli(world, values, tmp_path)
        if front_end == "python":
            world["pipe"](Image.fromarray(world["reference"]), world["poses"], SamplingRequest(**values))
        elif front_end == "app":
            world["service"].animate(
                world["folder"] / "ref.png", world["folder"] / "pose", "pose video", False, **values
            )
        else:
            images = torch.from_numpy(world["poses"]).float() / 255
            reference = torch.from_numpy(world["reference"][None]).float() / 255
            widgets = {**NODE_UNSET, "context_frames": 24, "context_overlap": 4, **values}
            world["node"].animate(world["pipe"], reference, images, seed=0, width=0, height=0, **widgets)
    except ValueError as error:
        return str(error)
    return None


def _cli(world: dict, values: dict, tmp_path) -> str | None:
    import contextlib
    import io

    from animate_anyone.cli.animate import FLAGS
    from animate_anyone.cli.main import main

    argv = ["animate", "--model", str(world["model"]), "--reference", str(world["folder"] / "ref.png"), "--quiet"]
    argv += ["--pose", str(world["folder"] / "pose"), "--out", str(tmp_path / "out.gif"), "--overwrite"]
    for key, value in values.items():
        argv += [FLAGS[key], str(value)] if key in FLAGS else [f"{key}={yaml_value(value)}"]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(argv)
    errors = [line for line in stderr.getvalue().splitlines() if ": error: " in line]
    assert (code == 0) == (not errors), stderr.getvalue()
    return errors[0].split(": error: ", 1)[1] if errors else None


@pytest.mark.parametrize("field, value, rule", CASES, ids=[f"{f}={v}" for f, v, _ in CASES])
def test_every_front_end_accepts_and_refuses_the_same_values(world, sampler, tmp_path, field, value, rule):
    values = {field: value}
    if field == "context_overlap":  # the node's widgets always give a window: the others get the same one
        values["context_frames"] = 24
    if field == "context_frames" and value == 1:
        values["context_overlap"] = 0  # the default overlap (4) needs longer windows
    ran: dict[str, SamplingSettings] = {}
    for front_end in FRONT_ENDS:
        if front_end == "node" and (field not in NODE_FIELDS or NODE_UNSET.get(field) == value):
            continue  # not one of its widgets, or its marker for "the default" (test_the_node_markers)
        sampler.clear()
        message = through(front_end, world, values, tmp_path)
        if rule is None:
            assert message is None, f"{front_end} refused {field}={value}: {message}"
            assert len(sampler) == 1, front_end
            ran[front_end] = sampler[0]
        else:
            assert message is not None, f"{front_end} accepted {field}={value}"
            assert rule in message and str(yaml_value(value)).strip("[]") in message.replace(" ", ""), message
            name = {"cli": "--" + field.replace("_", "-")}.get(front_end, field)  # every sampling field has a flag
            assert message.startswith(f"{name} "), (front_end, message)
            assert sampler == [], f"{front_end} sampled with a refused value"
    if rule is None:
        settings = ran["python"]
        expected = tuple(float(v) for v in value) if isinstance(value, tuple) else value
        if field != "preset":
            assert getattr(settings, field) == expected
        assert all(other == settings for other in ran.values()), ran  # the same settings from every front end


def test_the_node_markers_mean_the_default(world, sampler, tmp_path):
    """The node's "model default", steps 0 and guidance -1 give the settings every front end gives without them."""
    assert through("node", world, {}, tmp_path) is None
    assert through("python", world, {"context_frames": 24, "context_overlap": 4}, tmp_path) is None
    assert sampler[0] == sampler[1] == SamplingSettings()


def test_the_app_page_maps_its_markers_and_nothing_else():
    from animate_anyone.app.ui import _settings

    page = _settings("model default", 0, -1, None, 0, " ", None, None, None)
    assert page == dict.fromkeys(page)  # every marker and empty widget: the default
    kept = _settings("fast", 3, -0.5, 2, 5, "48x64", 0, 4, "light")  # a bad value goes on, to be refused by the rule
    assert kept == dict(
        preset="fast",
        steps=3,
        guidance=-0.5,
        seed=2,
        frames=5,
        size="48x64",
        context_frames=0,
        context_overlap=4,
        decoder="light",
    )


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_resolved_once_and_passed_whole(world, sampler, tmp_path, monkeypatch, front_end):
    """On every road the request is resolved (and so checked) exactly once, and the very object it gave reaches the
    sampler: no second resolution, no copy rebuilt from loose values on the way."""
    made = []
    resolve = SamplingRequest.resolve

    def counted(self, model=None):
        made.append(resolve(self, model))
        return made[-1]

    monkeypatch.setattr(SamplingRequest, "resolve", counted)
    assert through(front_end, world, {"steps": 3, "context_frames": 24, "context_overlap": 4}, tmp_path) is None
    assert len(made) == 1 and len(sampler) == 1 and sampler[0] is made[0]


# -- the decoder: not a sampling setting, a choice of the call that every front end passes on -------------------


@pytest.fixture(scope="module")
def taesd_world(world, tiny_model_dir, tmp_path_factory):
    """The world's front ends on a copy of the tiny model given a light decoder (TAESD, `convert light-decoder`)."""
    from animate_anyone.app.service import AnimateService
    from animate_anyone.pipelines.loading import load_pipeline
    from taesd_model import model_with_taesd

    root = tmp_path_factory.mktemp("front_ends_taesd")
    model, _ = model_with_taesd(root, tiny_model_dir)
    pipe = load_pipeline(model, "cpu", "float32", progress=False)
    return {**world, "model": model, "pipe": pipe, "service": AnimateService(model, device="cpu", workdir=root / "app")}


def decode_through(front_end: str, world: dict, decoder: str, tmp_path) -> str | None:
    """Run one front end with ``decoder``; its error message, or None when it ran."""
    if front_end == "cli":
        return _cli(world, {"decoder": decoder}, tmp_path)
    try:
        if front_end == "python":
            world["pipe"](Image.fromarray(world["reference"]), world["poses"], decoder=decoder)
        elif front_end == "app":
            folder = world["folder"]
            world["service"].animate(folder / "ref.png", folder / "pose", "pose video", False, decoder=decoder)
        else:
            images = torch.from_numpy(world["poses"]).float() / 255
            reference = torch.from_numpy(world["reference"][None]).float() / 255
            widgets = {**NODE_UNSET, "context_frames": 24, "context_overlap": 4}
            world["node"].animate(
                world["pipe"], reference, images, seed=0, width=0, height=0, decoder=decoder, **widgets
            )
    except ValueError as error:
        return str(error)
    return None


@pytest.fixture
def decoders(monkeypatch):
    """The decoder each decode of the final latents used."""
    used: list[str] = []
    decode = pipeline_animate_anyone.AnimateAnyonePipeline.decode_latents

    def spy(self, latents, chunk_size=8, decoder="vae"):
        used.append(decoder)
        return decode(self, latents, chunk_size, decoder)

    monkeypatch.setattr(pipeline_animate_anyone.AnimateAnyonePipeline, "decode_latents", spy)
    return used


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_every_front_end_passes_the_decoder_on(world, taesd_world, sampler, decoders, tmp_path, front_end):
    """decoder light reaches the decode on every road of a model with a light decoder; on one without, or an unknown
    decoder, every front end refuses it in one line naming it, before anything is sampled."""
    for decoder in ("vae", "light"):
        decoders.clear()
        assert decode_through(front_end, taesd_world, decoder, tmp_path) is None, (front_end, decoder)
        assert decoders and set(decoders) == {decoder}, (front_end, decoders)
    sampler.clear()
    message = decode_through(front_end, world, "light", tmp_path)
    assert message is not None and "this model has no light_decoder" in message, (front_end, message)
    message = decode_through(front_end, taesd_world, "fast", tmp_path)
    assert message is not None and "decoder" in message and "fast" in message, (front_end, message)
    assert sampler == [], f"{front_end} sampled with a refused decoder"
