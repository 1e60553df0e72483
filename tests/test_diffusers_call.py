"""diffusers' call conventions on ``AnimateAnyonePipeline.__call__``: ``num_inference_steps``, ``guidance_scale``,
``output_type`` (np / pil / pt / latent), ``return_dict``, ``callback_on_step_end`` and ``pipe.interrupt``.

The keywords are a second spelling, not a second road: each must reach the sampler as exactly the settings of the
equivalent ``SamplingRequest`` (the sampler is replaced by a recorder for that table, as in test_front_ends.py).
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone.config import SettingError
from animate_anyone.pipelines.loading import load_pipeline
from animate_anyone.pipelines.settings import RULES, SamplingRequest, SamplingSettings


@pytest.fixture(scope="module")
def pipe(tiny_model_dir):
    return load_pipeline(tiny_model_dir, "cpu", "float32", progress=False)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    reference = PIL.Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8))
    return reference, rng.integers(0, 255, (3, 64, 48, 3), dtype=np.uint8)


# (diffusers keywords and sampling, the equivalent request)
TABLE = [
    (dict(num_inference_steps=7), SamplingRequest(steps=7)),
    (dict(guidance_scale=1.0), SamplingRequest(guidance=1.0)),
    (dict(guidance_scale=5.0, num_inference_steps=3), SamplingRequest(steps=3, guidance=5.0)),
    (dict(sampling="fast", num_inference_steps=20), SamplingRequest(preset="fast", steps=20)),
    (dict(sampling={"cache_interval": 1}, guidance_scale=2.0), SamplingRequest(cache_interval=1, guidance=2.0)),
    (dict(sampling=SamplingRequest(preset="fast"), guidance_scale=0.0), SamplingRequest(preset="fast", guidance=0.0)),
]


@pytest.mark.parametrize("keywords, request_", TABLE, ids=[str(k) for k, _ in TABLE])
def test_each_diffusers_keyword_reaches_the_sampler_as_its_request(pipe, inputs, sampler, keywords, request_):
    keywords = dict(keywords)
    pipe(*inputs, keywords.pop("sampling", None), **keywords)
    pipe(*inputs, request_)
    assert len(sampler) == 2 and sampler[0] == sampler[1], sampler
    assert sampler[0] != SamplingSettings() or request_.given() == {}  # the keyword changed something


@pytest.mark.parametrize(
    "sampling, keywords, names",
    [
        ({"steps": 3}, dict(num_inference_steps=4), ("num_inference_steps=4", "steps=3")),
        (SamplingRequest(guidance=2.0), dict(guidance_scale=3.0), ("guidance_scale=3.0", "guidance=2.0")),
        (SamplingSettings(), dict(num_inference_steps=4), ("num_inference_steps=4", "steps=25")),
    ],
)
def test_a_value_given_twice_is_an_error_naming_both(pipe, inputs, sampler, sampling, keywords, names):
    with pytest.raises(ValueError) as error:
        pipe(*inputs, sampling, **keywords)
    assert all(name in str(error.value) for name in names), str(error.value)
    assert sampler == []


def test_a_broken_rule_names_the_keyword_the_caller_used(pipe, inputs, sampler):
    with pytest.raises(SettingError, match=r"^num_inference_steps 0: ") as error:
        pipe(*inputs, num_inference_steps=0)
    assert RULES["steps"][1] in str(error.value)
    with pytest.raises(SettingError, match=r"^guidance_scale -1: "):
        pipe(*inputs, guidance_scale=-1)
    with pytest.raises(SettingError, match=r"^steps 0: "):  # the request's own name where it was used
        pipe(*inputs, {"steps": 0}, guidance_scale=2.0)
    assert sampler == []


def test_a_diffusers_users_snippet_runs(pipe, inputs):
    """The call a diffusers user writes first: their keywords, PIL out, a tuple with return_dict=False."""
    reference, poses = inputs
    generator = torch.Generator().manual_seed(0)
    (video,) = pipe(
        reference,
        poses,
        num_inference_steps=2,
        guidance_scale=3.5,
        output_type="pil",
        return_dict=False,
        generator=generator,
    )
    assert len(video) == 3 and all(isinstance(f, PIL.Image.Image) and f.size == (64, 88) for f in video)  # side 64
    again = pipe(reference, poses, num_inference_steps=2, output_type="pt", generator=torch.Generator().manual_seed(0))
    frames = again.frames
    assert frames.shape == (3, 3, 88, 64) and frames.dtype == torch.float32
    assert 0 <= frames.min() and frames.max() <= 1
    expected = np.stack([np.asarray(f) for f in video])  # the same frames, (F, H, W, 3) uint8
    assert torch.equal((frames * 255).round().to(torch.uint8).permute(0, 2, 3, 1), torch.from_numpy(expected))
    assert pipe.num_timesteps == 2


def test_a_callback_that_sets_interrupt_at_step_2_stops_after_step_2(pipe, inputs):
    """The interrupted call returns the latents the uninterrupted one had after its second step, and the callback
    saw no later step; ``interrupt`` is reset by the next call."""
    seen: dict[int, torch.Tensor] = {}

    def watch(p, step, timestep, tensors):
        seen[step] = tensors["latents"].clone()
        return tensors

    run = dict(num_inference_steps=5, output_type="latent")
    full = pipe(*inputs, **run, generator=torch.Generator().manual_seed(1), callback_on_step_end=watch)
    assert sorted(seen) == [0, 1, 2, 3, 4]
    after_two = seen[1]
    seen.clear()

    def stop_at_two(p, step, timestep, tensors):
        seen[step] = tensors["latents"]
        if step == 1:  # the second step
            p._interrupt = True
        return tensors

    stopped = pipe(*inputs, **run, generator=torch.Generator().manual_seed(1), callback_on_step_end=stop_at_two)
    assert sorted(seen) == [0, 1] and pipe.interrupt
    assert torch.equal(stopped.frames, after_two) and not torch.equal(stopped.frames, full.frames)
    frames = pipe(*inputs, num_inference_steps=2).frames  # a fresh call runs again, and decodes
    assert not pipe.interrupt and frames.shape == (3, 88, 64, 3)


def test_latents_returned_by_the_callback_replace_the_sampler_s(pipe, inputs):
    timesteps = []

    def zero_last(p, step, timestep, tensors):
        timesteps.append(int(timestep))
        return {"latents": torch.zeros_like(tensors["latents"])} if step == p.num_timesteps - 1 else tensors

    out = pipe(*inputs, num_inference_steps=3, output_type="latent", callback_on_step_end=zero_last)
    assert torch.count_nonzero(out.frames) == 0
    assert timesteps == [int(t) for t in pipe.scheduler.timesteps]  # the real timesteps, in order


def test_unknown_callback_tensor_inputs_are_refused(pipe, inputs, sampler):
    with pytest.raises(ValueError, match=r"callback_on_step_end_tensor_inputs \['prompt_embeds'\]"):
        pipe(*inputs, callback_on_step_end=lambda *a: {}, callback_on_step_end_tensor_inputs=["prompt_embeds"])
    with pytest.raises(ValueError, match="output_type"):
        pipe(*inputs, output_type="tensor")
    assert sampler == []


def test_a_diffusers_pipeline_callback_brings_its_own_tensor_inputs(pipe, inputs):
    """A ``diffusers.callbacks.PipelineCallback`` (diffusers' callback objects) runs with its own ``tensor_inputs``;
    one that asks for a tensor this pipeline does not hand out is refused before any step."""
    from diffusers.callbacks import PipelineCallback

    class Watch(PipelineCallback):
        tensor_inputs = ["latents"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            self.seen.append((step_index, tuple(callback_kwargs)))
            return callback_kwargs

    watch = Watch()
    watch.seen = []
    pipe(*inputs, num_inference_steps=2, output_type="latent", callback_on_step_end=watch)
    assert watch.seen == [(0, ("latents",)), (1, ("latents",))]

    class Prompts(Watch):
        tensor_inputs = ["prompt_embeds"]

    with pytest.raises(ValueError, match=r"callback_on_step_end_tensor_inputs \['prompt_embeds'\]"):
        pipe(*inputs, num_inference_steps=2, callback_on_step_end=Prompts())
