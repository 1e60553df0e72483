"""The Animate node inside ComfyUI's process: its step callback (the pipeline's ``callback_on_step_end``) moves
ComfyUI's progress bar with a preview from ComfyUI's own previewer and stops at ComfyUI's interrupt.

ComfyUI's modules are stood in by recorders with the signatures of the real ones (ComfyUI 0.3.64,
../shared/third_party/ComfyUI): ``comfy.utils.ProgressBar(total).update_absolute(value, total, preview)``,
``comfy.model_management.throw_exception_if_processing_interrupted()``, ``latent_preview.get_previewer(device,
latent_format)`` (None when previews are off) and its ``decode_latent_to_preview_image(format, x0)``.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch


class Interrupted(Exception):
    pass


@pytest.fixture
def comfy(monkeypatch):
    """Stand-ins of the ComfyUI modules the node imports; returns what they recorded and the switches."""
    seen = {"updates": [], "previewed": [], "previews_on": True, "interrupt_at": None, "calls": 0}

    class ProgressBar:
        def __init__(self, total, node_id=None):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            seen["updates"].append((value, total, preview))

    def throw_exception_if_processing_interrupted():
        seen["calls"] += 1
        if seen["interrupt_at"] == seen["calls"]:
            raise Interrupted()

    class Previewer:
        def decode_latent_to_preview_image(self, preview_format, x0):
            seen["previewed"].append(x0.clone())
            return (preview_format, "image", 512)

    modules = {
        "comfy": types.ModuleType("comfy"),
        "comfy.utils": types.SimpleNamespace(ProgressBar=ProgressBar),
        "comfy.model_management": types.SimpleNamespace(
            throw_exception_if_processing_interrupted=throw_exception_if_processing_interrupted,
            get_torch_device=lambda: torch.device("cpu"),
        ),
        "comfy.latent_formats": types.SimpleNamespace(SD15=lambda: "sd15"),
        "latent_preview": types.SimpleNamespace(
            get_previewer=lambda device, fmt: Previewer() if seen["previews_on"] and fmt == "sd15" else None
        ),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    modules["comfy"].utils = modules["comfy.utils"]
    modules["comfy"].model_management = modules["comfy.model_management"]
    modules["comfy"].latent_formats = modules["comfy.latent_formats"]
    return seen


def run_node(nodes, tiny_model_dir, steps: int):
    from animate_anyone.pipelines.loading import load_pipeline

    pipe = load_pipeline(tiny_model_dir, "cpu", "float32", progress=False)
    rng = np.random.default_rng(0)
    reference = torch.from_numpy(rng.random((1, 64, 48, 3), dtype=np.float32))
    poses = torch.from_numpy(rng.random((5, 64, 48, 3), dtype=np.float32))
    node = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneAnimate"]()
    kw = dict(seed=3, preset="model default", steps=steps, guidance=-1.0, context_frames=24, context_overlap=4)
    return node.animate(pipe, reference, poses, width=0, height=0, **kw)


def test_every_step_moves_comfyuis_bar_with_a_preview_of_the_middle_frame(nodes, tiny_model_dir, comfy):
    (frames,) = run_node(nodes, tiny_model_dir, steps=3)
    assert frames.shape[0] == 5
    assert [(value, total) for value, total, _ in comfy["updates"]] == [(1, 3), (2, 3), (3, 3)]
    assert all(preview == ("JPEG", "image", 512) for _, _, preview in comfy["updates"])
    assert [x.shape for x in comfy["previewed"]] == [torch.Size([1, 4, 11, 8])] * 3  # one frame of latents (88x64 / 8)
    assert not torch.equal(comfy["previewed"][0], comfy["previewed"][-1])  # each step's own latents


def test_previews_off_in_comfyui_send_none(nodes, tiny_model_dir, comfy):
    comfy["previews_on"] = False
    run_node(nodes, tiny_model_dir, steps=2)
    assert [update for update in comfy["updates"]] == [(1, 2, None), (2, 2, None)]


def test_comfyuis_interrupt_stops_the_node_between_steps(nodes, tiny_model_dir, comfy):
    comfy["interrupt_at"] = 2  # the check after the second step
    with pytest.raises(Interrupted):
        run_node(nodes, tiny_model_dir, steps=4)
    assert [value for value, _, _ in comfy["updates"]] == [1]
