"""The ComfyUI node pack's node functions, run without ComfyUI (its modules are imported only inside the nodes;
the real ComfyUI runs them in tests/integration/test_comfyui.py): IMAGE tensors in, IMAGE tensors out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import COMFYUI_PACK as PACK


def test_mappings_and_input_types(nodes):
    assert set(nodes.NODE_CLASS_MAPPINGS) == set(nodes.NODE_DISPLAY_NAME_MAPPINGS)
    for cls in nodes.NODE_CLASS_MAPPINGS.values():
        spec = cls.INPUT_TYPES()
        assert (
            set(spec) == {"required"} and hasattr(cls, cls.FUNCTION) and len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
        )
    # The shipped API workflow uses our nodes with exactly their inputs.
    workflow = json.loads((PACK / "workflows" / "animate_mini_api.json").read_text())
    for node in workflow.values():
        cls = nodes.NODE_CLASS_MAPPINGS.get(node["class_type"])
        if cls is not None:
            assert set(node["inputs"]) == set(cls.INPUT_TYPES()["required"]), node["class_type"]


def test_load_and_animate_image_batches(nodes, tiny_model_dir):
    (pipe,) = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneLoadModel"]().load(str(tiny_model_dir), "float32")
    rng = np.random.default_rng(0)
    reference = torch.from_numpy(rng.random((1, 64, 48, 3), dtype=np.float32))
    poses = torch.from_numpy(rng.random((5, 64, 48, 3), dtype=np.float32))
    animate = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneAnimate"]()
    kw = dict(seed=3, preset="model default", steps=2, guidance=-1.0, context_frames=24, context_overlap=4)
    (frames,) = animate.animate(pipe, reference, poses, width=0, height=0, **kw)
    # Size 0: the reference's aspect ratio, shorter side = the model's resolution (tiny: 64), as in `animate`.
    assert frames.shape == (5, 88, 64, 3) and frames.dtype == torch.float32 and 0 <= frames.min() <= frames.max() <= 1
    (again,) = animate.animate(pipe, reference, poses, width=0, height=0, **kw)
    assert torch.equal(frames, again)  # the seed fixes the result
    # The same call through the pipeline directly: the node adds nothing but the conversions.
    from PIL import Image

    direct = pipe(
        Image.fromarray(nodes.nodes.to_uint8(reference)[0]),
        nodes.nodes.to_uint8(poses),
        {"steps": 2},
        height=88,
        width=64,
        generator=torch.Generator().manual_seed(3),
    ).frames
    assert np.array_equal(nodes.nodes.to_uint8(frames), direct)
    (small,) = animate.animate(pipe, reference, poses, width=32, height=40, **kw)
    assert small.shape == (5, 40, 32, 3)
    with pytest.raises(ValueError, match="IMAGE batch"):
        animate.animate(pipe, reference[0], poses, width=0, height=0, **kw)


def test_animate_takes_the_decoder(nodes, tiny_model_dir, tmp_path):
    """The node's decoder combo (vae, light) goes to the pipeline: on a model given TAESD by `convert light-decoder`,
    "light" gives the light decoder's frames; on one without a light decoder it stops in the pipeline's one line."""
    from taesd_model import model_with_taesd

    spec = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneAnimate"].INPUT_TYPES()["required"]["decoder"]
    assert spec[0] == ["vae", "light"] and spec[1]["default"] == "vae"
    model, _ = model_with_taesd(tmp_path, tiny_model_dir)
    load = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneLoadModel"]().load
    animate = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneAnimate"]().animate
    rng = np.random.default_rng(0)
    reference = torch.from_numpy(rng.random((1, 64, 48, 3), dtype=np.float32))
    poses = torch.from_numpy(rng.random((3, 64, 48, 3), dtype=np.float32))
    kw = dict(seed=3, preset="model default", steps=2, guidance=-1.0, context_frames=24, context_overlap=4)
    (pipe,) = load(str(model), "float32")
    (vae,) = animate(pipe, reference, poses, width=48, height=64, decoder="vae", **kw)
    (light,) = animate(pipe, reference, poses, width=48, height=64, decoder="light", **kw)
    latents = pipe(
        Image.fromarray(nodes.nodes.to_uint8(reference)[0]),
        nodes.nodes.to_uint8(poses),
        {"steps": 2},
        height=64,
        width=48,
        generator=torch.Generator().manual_seed(3),
        output_type="latent",
    ).frames
    with torch.no_grad():
        images = pipe.light_decoder(latents[0].transpose(0, 1))  # (frames, 3, 64, 48) in [-1, 1]
    expected = ((images / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(nodes.nodes.to_uint8(light), expected) and not torch.equal(vae, light)
    (plain,) = load(str(tiny_model_dir), "float32")
    with pytest.raises(ValueError, match="decoder='light': this model has no light_decoder"):
        animate(plain, reference, poses, width=48, height=64, decoder="light", **kw)


def test_extract_and_retarget_poses(nodes):
    from skimage.data import astronaut

    photo = astronaut()[::2, ::2]  # (256, 256, 3)
    images = torch.from_numpy(np.stack([photo, photo[:, ::-1]])).float() / 255
    pose_images, poses = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneExtractPoses"]().extract(images, 24.0, "mediapipe")
    assert pose_images.shape == images.shape and poses.num_frames == 2 and poses.fps == 24.0
    assert pose_images.sum() > 0  # a skeleton was drawn
    reference = images[:1, :, :200]  # a narrower frame of the same person
    aligned_images, aligned = nodes.NODE_CLASS_MAPPINGS["AnimateAnyoneRetargetPoses"]().retarget(
        poses, reference, "mediapipe"
    )
    assert aligned_images.shape == (2, 256, 200, 3) and aligned.num_frames == 2
