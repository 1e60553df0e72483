"""The node classes: thin wrappers over the installed ``animate_anyone`` library (no pipeline code here).

ComfyUI conventions: IMAGE is a float tensor (batch, height, width, channels) in [0, 1]; a video is a batch
of frames. Our own types: ``AA_PIPELINE`` (a loaded ``AnimateAnyonePipeline``) and ``AA_POSES`` (a
``PoseSequence`` of keypoints). ComfyUI's modules (device, progress bar with previews, interrupt) are imported
inside the functions, so the nodes also run, and are tested, without ComfyUI.
"""

from __future__ import annotations

import numpy as np
import torch

CATEGORY = "Animate Anyone"
# A widget always holds a value: these say "the default" (None), as the tooltips tell. Every other value goes on
# as it is, checked by the rules every front end shares (animate_anyone.pipelines.settings).
UNSET = {"preset": "model default", "steps": 0, "guidance": -1.0}
DECODER_TOOLTIP = (
    "vae: the model's VAE; light: its light decoder (from `animate-anyone train light-decoder` or TAESD by "
    "`animate-anyone convert light-decoder`), a fraction of the decode's work, not exact"
)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """IMAGE (B, H, W, C) float [0, 1] -> (B, H, W, 3) uint8 (alpha dropped, grey repeated)."""
    array = images.detach().float().cpu().clamp(0, 1).numpy()
    if array.ndim != 4:
        raise ValueError(f"expected an IMAGE batch (batch, height, width, channels), got shape {tuple(array.shape)}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.round(array[..., :3] * 255).astype(np.uint8)


def to_image(frames: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> IMAGE float [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).float() / 255


def _device():
    """ComfyUI's device when running inside it, else the library's own policy (CUDA when present)."""
    try:
        import comfy.model_management as mm

        return mm.get_torch_device()
    except ImportError:
        from animate_anyone.devices import resolve_device

        return resolve_device("auto")


class _ComfyStep:
    """The pipeline's ``callback_on_step_end`` inside ComfyUI: stops at ComfyUI's interrupt between steps and moves
    its progress bar, with a preview of the middle frame by ComfyUI's own previewer for SD-1.5 latents (its
    ``--preview-method``: none, latent -> RGB, or TAESD). Outside ComfyUI it does nothing."""

    def __init__(self, steps: int):
        try:
            import comfy.utils

            self.bar = comfy.utils.ProgressBar(steps)
        except ImportError:
            self.bar = None
        self.steps, self.previewer = steps, None

    def __call__(self, pipe, step: int, timestep, tensors: dict) -> dict:
        try:
            import comfy.model_management as mm

            mm.throw_exception_if_processing_interrupted()
        except ImportError:
            pass
        if self.bar is not None:
            self.bar.update_absolute(step + 1, self.steps, self.preview(pipe, tensors["latents"]))
        return tensors

    def preview(self, pipe, latents: torch.Tensor):
        """("JPEG", image, size) of the middle frame of ``latents`` (1, 4, frames, h, w), or None (previews off)."""
        if self.previewer is None:
            import latent_preview
            from comfy.latent_formats import SD15

            self.previewer = latent_preview.get_previewer(pipe.device, SD15()) or False
        if not self.previewer:
            return None
        frame = latents[:, :, latents.shape[2] // 2]  # (1, 4, h, w): scaled latents, as ComfyUI's own
        return self.previewer.decode_latent_to_preview_image("JPEG", frame.float())


class AnimateAnyoneLoadModel:
    """A model directory (empty: the packaged miniature model) -> AA_PIPELINE."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("AA_PIPELINE",)
    RETURN_NAMES = ("pipeline",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model_dir": ("STRING", {"default": "", "tooltip": "empty: the packaged miniature model"}),
                "dtype": (["auto", "float32", "bfloat16", "float16"], {"default": "auto"}),
            }
        }

    def load(self, model_dir: str, dtype: str):
        from animate_anyone.assets import packaged_model
        from animate_anyone.pipelines.loading import load_pipeline

        return (load_pipeline(model_dir.strip() or packaged_model(), _device(), dtype, progress=False),)


class AnimateAnyoneExtractPoses:
    """Video frames (IMAGE batch) -> rendered skeletons (IMAGE batch, same size) + keypoints (AA_POSES)."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "AA_POSES")
    RETURN_NAMES = ("pose_images", "poses")
    FUNCTION = "extract"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE",),
                "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0}),
                "backend": (["mediapipe"], {"default": "mediapipe"}),
            }
        }

    def extract(self, images, fps: float, backend: str):
        from animate_anyone.pose.extract import extract_frames
        from animate_anyone.pose.sequences import render_sequence

        frames = to_uint8(images)
        size = (frames.shape[2], frames.shape[1])
        pose, _ = extract_frames(
            list(frames), size, fps, backend, num_frames=len(frames), name="the IMAGE batch", progress=False
        )
        return to_image(render_sequence(pose, size)), pose


class AnimateAnyoneRetargetPoses:
    """Keypoints (AA_POSES) + reference IMAGE -> skeletons with the reference's body proportions."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "AA_POSES")
    RETURN_NAMES = ("pose_images", "poses")
    FUNCTION = "retarget"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "poses": ("AA_POSES",),
                "reference": ("IMAGE",),
                "backend": (["mediapipe"], {"default": "mediapipe"}),
            }
        }

    def retarget(self, poses, reference, backend: str):
        from PIL import Image

        from animate_anyone.pose.align import retarget
        from animate_anyone.pose.sequences import reference_pose, render_sequence

        image = Image.fromarray(to_uint8(reference)[0])
        aligned = retarget(poses, reference_pose(image, backend=backend))
        return to_image(render_sequence(aligned, image.size)), aligned


class AnimateAnyoneAnimate:
    """Reference IMAGE + pose IMAGE batch -> the animation (IMAGE batch)."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    FUNCTION = "animate"

    @classmethod
    def INPUT_TYPES(cls):
        from animate_anyone.pipelines.pipeline_animate_anyone import DECODERS
        from animate_anyone.pipelines.settings import PRESETS

        return {
            "required": {
                "pipeline": ("AA_PIPELINE",),
                "reference": ("IMAGE",),
                "pose_images": ("IMAGE",),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**63 - 1}),
                "preset": ([UNSET["preset"], *PRESETS], {"default": UNSET["preset"]}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 200, "tooltip": "0: the preset's"}),
                "guidance": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 20.0, "tooltip": "-1: the preset's"}),
                "context_frames": ("INT", {"default": 24, "min": 1, "max": 32}),
                "context_overlap": ("INT", {"default": 4, "min": 0, "max": 31}),
                "width": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 8, "tooltip": "0: from the reference"}),
                "height": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 8, "tooltip": "0: from the reference"}),
                "decoder": (list(DECODERS), {"default": "vae", "tooltip": DECODER_TOOLTIP}),
            }
        }

    def animate(
        self,
        pipeline,
        reference,
        pose_images,
        seed,
        preset,
        steps,
        guidance,
        context_frames,
        context_overlap,
        width,
        height,
        decoder="vae",
    ):
        from PIL import Image

        from animate_anyone.pipelines.settings import SamplingRequest, unset_markers

        given = dict(preset=preset, steps=steps, guidance=guidance)
        given.update(context_frames=context_frames, context_overlap=context_overlap)
        request = SamplingRequest(**unset_markers(given, UNSET))
        settings = pipeline.sampling_settings(request)  # resolved and checked once; the progress bar needs the steps
        out = pipeline(
            Image.fromarray(to_uint8(reference)[0]),
            to_uint8(pose_images),
            settings,
            height=height or None,  # 0: the pipeline's default (the reference's aspect ratio at the model's size)
            width=width or None,
            generator=torch.Generator().manual_seed(int(seed)),
            output_type="np",
            decoder=decoder,
            callback_on_step_end=_ComfyStep(settings.steps),
        )
        return (to_image(out.frames),)


NODE_CLASS_MAPPINGS = {
    "AnimateAnyoneLoadModel": AnimateAnyoneLoadModel,
    "AnimateAnyoneExtractPoses": AnimateAnyoneExtractPoses,
    "AnimateAnyoneRetargetPoses": AnimateAnyoneRetargetPoses,
    "AnimateAnyoneAnimate": AnimateAnyoneAnimate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimateAnyoneLoadModel": "Animate Anyone: load model",
    "AnimateAnyoneExtractPoses": "Animate Anyone: extract poses",
    "AnimateAnyoneRetargetPoses": "Animate Anyone: retarget poses",
    "AnimateAnyoneAnimate": "Animate Anyone: animate",
}
