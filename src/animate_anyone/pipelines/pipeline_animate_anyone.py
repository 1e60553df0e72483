"""``AnimateAnyonePipeline``: one reference image + a pose sequence -> a video of that character.

    pipe = AnimateAnyonePipeline.from_pretrained("models/animate-anyone", dtype=torch.float16).to("cuda")
    video = pipe(Image.open("ref.png"), pose_frames).frames              # the model's own preset (quality)
    video = pipe(Image.open("ref.png"), pose_frames, {"preset": "fast", "steps": 10}).frames   # pipelines.settings
    video = pipe(Image.open("ref.png"), pose_frames, num_inference_steps=20, guidance_scale=3.5).frames  # diffusers'

The pipeline only orchestrates; the networks' forward lives in ``models.AnimateAnyone``, the windowed
denoising loop in ``pipelines.sampling`` and the inference optimisations in ``pipelines.optimisations``
(``pipe.set_optimisations(...)``). The sampling settings (steps, guidance, solver, guidance interval,
feature caching, temporal windows) are one object, ``pipelines.settings.SamplingSettings``, resolved once from a
preset and the fields a caller changes (``SamplingRequest``) and passed whole to the sampler; any
diffusers scheduler can also replace the model's own (``pipe.scheduler = ...from_config(pipe.scheduler.config)``,
used by the presets whose ``scheduler`` is "model"). ``hooks`` (a
``PipelineHooks``) see the stages of a call: the benchmark times the real ``__call__`` through them.

diffusers' call conventions hold too: ``num_inference_steps`` and ``guidance_scale`` (folded into the one sampling
request: ``settings.with_diffusers_names``), ``output_type`` ("np", "pil", "pt", "latent"), ``return_dict``,
``callback_on_step_end`` with ``callback_on_step_end_tensor_inputs`` and ``pipe.interrupt``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from ..config import SettingError
from ..distributed import Ranks
from ..model_dir import COMPONENTS, ModelDirectory, default_short_side, vae_scale_factor
from ..models import AnimateAnyone
from ..models.light_decoder import HOW_TO_GET_ONE
from ..shapes import check_size
from .optimisations import Optimisations, applied, as_optimisations
from .sampling import sample_video, step_schedules
from .settings import (
    DIFFUSERS_NAMES,
    ModelDefaults,
    SamplingRequest,
    SamplingSettings,
    SettingsWarning,
    make_scheduler,
    with_diffusers_names,
)

OUTPUT_TYPES = ("np", "pil", "pt", "latent")
STAGES = ("reference", "pose_guider", "denoising", "vae_decode")
DECODERS = ("vae", "light")  # what turns the final latents into frames: the VAE's decoder, or the light decoder


@dataclass
class AnimateAnyonePipelineOutput(BaseOutput):
    """``frames``: (frames, H, W, 3) uint8 for ``"np"``, a list of PIL images for ``"pil"``, a float32 tensor
    (frames, 3, H, W) in [0, 1] for ``"pt"``, the final latents (1, 4, frames, H/8, W/8) for ``"latent"``; None
    when the frames were handed to ``frame_sink`` instead."""

    frames: np.ndarray | list[PIL.Image.Image] | Tensor | None
    stats: dict | None = None  # "full_rows", "shallow_rows" (UNet rows x windows run), "sampling" (SamplingSettings)


def default_size(reference: PIL.Image.Image, short_side: int) -> tuple[int, int]:
    """(width, height) with the reference's aspect ratio, the shorter side ``short_side``, both multiples of 8."""
    w, h = reference.size
    scale = short_side / min(w, h)
    return max(8, round(w * scale / 8) * 8), max(8, round(h * scale / 8) * 8)


class PipelineHooks:
    """What ``AnimateAnyonePipeline.__call__`` reports while it runs; the base class does nothing.

    ``stage(name)`` wraps each stage (``STAGES``: "reference" = CLIP embedding, VAE encode and ReferenceNet pass;
    "pose_guider" = one window's pose features, nested inside "denoising"; "denoising" = the whole loop;
    "vae_decode" = decoding to uint8 frames, including handing them to ``frame_sink``). ``step_end(step, latents)``
    follows every scheduler step.
    """

    def stage(self, name: str) -> AbstractContextManager:
        return nullcontext()

    def step_end(self, step: int, latents: Tensor) -> None:
        pass


class AnimateAnyonePipeline(DiffusionPipeline):
    model_cpu_offload_seq = "image_encoder->reference_net->pose_guider->denoising_unet->light_decoder->vae"
    _optional_components = ["light_decoder"]
    _callback_tensor_inputs = ["latents"]  # what callback_on_step_end may read and replace

    def __init__(
        self,
        vae,
        image_encoder,
        feature_extractor,
        reference_net,
        denoising_unet,
        pose_guider,
        scheduler,
        light_decoder=None,
        use_reference_net: bool = True,
        default_preset: str = "quality",
        student_steps: int | None = None,
    ):
        """``use_reference_net=False`` (stored in model_index.json by a training run with
        ``model.reference_net: false``): the ablation without reference attention; only the CLIP image embedding
        carries the reference's appearance. ``default_preset``: the sampling preset of a call that names none
        (a distilled student records "student"); ``student_steps``: the steps a phased student was distilled for, which
        its ``student`` preset takes (``ModelDefaults``). ``light_decoder``: an optional ``LightDecoder``
        (``animate-anyone train light-decoder``), which a call chooses with ``decoder="light"``."""
        super().__init__()
        self.register_modules(
            vae=vae,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            reference_net=reference_net,
            denoising_unet=denoising_unet,
            pose_guider=pose_guider,
            scheduler=scheduler,
            light_decoder=light_decoder,
        )
        self.register_to_config(
            use_reference_net=bool(use_reference_net), default_preset=default_preset, student_steps=student_steps
        )
        self.vae_scale_factor = vae_scale_factor(vae.config)
        self.optimisations = Optimisations()
        self._applied = contextlib.ExitStack()  # the module-level optimisations in force; close() undoes them
        self._interrupt, self._num_timesteps = False, 0

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load every component from a model directory: a local folder, or the id of one on the Hugging Face Hub
        (``"org/name"``: its snapshot, fetched once into the Hugging Face cache by ``hub.resolve_model``, with
        ``revision``, ``cache_dir``, ``token`` and ``local_files_only`` as in diffusers; ``HF_HUB_OFFLINE=1`` reads
        the cache only). An existing local path always wins."""
        from ..hub import resolve_model

        path = resolve_model(
            pretrained_model_name_or_path,
            kwargs.pop("revision", None),
            cache_dir=kwargs.pop("cache_dir", None),
            token=kwargs.pop("token", None),
            local_files_only=kwargs.pop("local_files_only", False),
        )
        if not kwargs.keys() & set(COMPONENTS):  # components passed in by the caller need not be on disk
            ModelDirectory(path).check()
        return super().from_pretrained(path, local_files_only=True, **kwargs)

    @property
    def interrupt(self) -> bool:
        """diffusers' stop: a ``callback_on_step_end`` sets ``pipe._interrupt = True`` and the call decodes the
        latents of the steps run so far. Reset at the start of every call."""
        return self._interrupt

    @property
    def num_timesteps(self) -> int:
        """The denoising steps of the latest call (its resolved ``steps``)."""
        return self._num_timesteps

    @property
    def model(self) -> AnimateAnyone:
        return AnimateAnyone(self.reference_net, self.denoising_unet, self.pose_guider)

    def set_optimisations(self, options: Optimisations | dict | None = None, **changes) -> Optimisations:
        """Switch the inference optimisations (``pipelines.optimisations``): an ``Optimisations``, a dict of its
        fields, or keyword changes of the current ones. Module-level switches are applied now, and the previous
        ones undone first. Returns the options in force."""
        new = as_optimisations(options, self.optimisations if options is None else None)
        new = as_optimisations(changes, new) if changes else new
        if new.offload != self.optimisations.offload:
            self.set_offload(new.offload)
        self._applied.close()
        self._applied.enter_context(applied(self.model, self.vae, new))
        self.optimisations = new
        return new

    def set_offload(self, offload: str, device: torch.device | str | None = None) -> None:
        """diffusers' CPU offloading (``Optimisations.offload``: "model", "sequential", or "none" to end it) onto
        ``device``, the accelerator the networks run on (default: where the pipeline runs now). The weights wait in
        host memory; ``load_pipeline`` calls this before anything is moved to the device."""
        device = torch.device(device) if device is not None else self._execution_device
        self.remove_all_hooks()
        if offload == "model":
            self.enable_model_cpu_offload(device=device)
        elif offload == "sequential":
            self.enable_sequential_cpu_offload(device=device)
        else:
            self.to(device)
        self.optimisations = dataclasses.replace(self.optimisations, offload=offload)

    # -- the pieces __call__ is made of ---------------------------------------------------------------------
    def check_inputs(
        self, height, width, num_frames, available_frames, output_type, decoder="vae", tensor_inputs=("latents",)
    ):
        """The call's own values (the sampling settings are checked where they are resolved)."""
        unknown = [name for name in tensor_inputs if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs {unknown}: a callback may read {self._callback_tensor_inputs}"
            )
        check_size(width, height, "output size", self.vae_scale_factor)
        if decoder not in DECODERS:
            raise ValueError(f"decoder={decoder!r}: choose one of {', '.join(DECODERS)}")
        if decoder == "light" and self.light_decoder is None:
            raise ValueError(
                f"decoder='light': this model has no light_decoder; {HOW_TO_GET_ONE}, or use decoder='vae'"
            )
        if not 1 <= num_frames <= available_frames:
            raise ValueError(f"num_frames={num_frames}: the pose sequence has {available_frames} frames; use 1 to that")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")

    def encode_image(self, reference: PIL.Image.Image, height: int, width: int, device, dtype) -> tuple[Tensor, Tensor]:
        """CLIP image embedding (1, 1, C) and scaled VAE latents (1, 4, h, w) of the reference."""
        clip = self.feature_extractor(images=reference, return_tensors="pt").pixel_values
        image_embeds = self.image_encoder(clip.to(device, self.image_encoder.dtype)).image_embeds.unsqueeze(1)
        pixels = _to_tensor(np.asarray(reference.resize((width, height), PIL.Image.Resampling.BICUBIC)))  # (1, 3, H, W)
        pixels = pixels.to(device, self.vae.dtype) * 2 - 1
        latents = self.vae.encode(pixels).latent_dist.mean * self.vae.config.scaling_factor  # as Moore: the mean
        return image_embeds.to(dtype), latents.to(dtype)

    def decode_latents(self, latents: Tensor, chunk_size: int = 8, decoder: str = "vae") -> Iterator[np.ndarray]:
        """Yield (H, W, 3) uint8 frames, decoding ``chunk_size`` frames at a time with the VAE's decoder or
        (``decoder="light"``) the light decoder, which reads the latents as the denoiser made them (scaled)."""
        frames = latents.shape[2]
        for start in range(0, frames, chunk_size):
            chunk = latents[0, :, start : start + chunk_size].transpose(0, 1)  # (f, 4, h, w)
            yield from self.decode_chunk(chunk, decoder).cpu().numpy()  # (H, W, 3) each

    def decode_chunk(self, chunk: Tensor, decoder: str = "vae") -> Tensor:
        """Latents (f, 4, h, w) -> frames (f, H, W, 3) uint8 where the latents are (the device)."""
        if decoder == "light":
            images = self.light_decoder(chunk.to(self.light_decoder.dtype))  # (f, 3, H, W) in [-1, 1]
        else:
            images = self.vae.decode(chunk.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        images = ((images.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
        return images.permute(0, 2, 3, 1)  # (f, H, W, 3)

    def decode_across_ranks(
        self, latents: Tensor, chunk_size: int = 8, decoder: str = "vae", ranks: Ranks = Ranks()
    ) -> Iterator[np.ndarray]:
        """``decode_latents`` split over the processes ``ranks``: in each round every process decodes one chunk and
        the main process receives them and yields the frames in order (other processes yield nothing). Memory stays
        at one round of chunks whatever the video's length."""
        if ranks.world == 1:
            yield from self.decode_latents(latents, chunk_size, decoder)
            return
        starts = list(range(0, latents.shape[2], chunk_size))
        for first in range(0, len(starts), ranks.world):
            index = first + ranks.rank
            local = None
            if index < len(starts):
                chunk = latents[:, :, starts[index] : starts[index] + chunk_size]  # (1, 4, f, h, w)
                local = np.stack(list(self.decode_latents(chunk, chunk_size, decoder)))  # (f, H, W, 3) uint8
            parts = ranks.gather_to_main(local)
            if ranks.main:
                for part in parts:
                    if part is not None:
                        yield from part

    def initial_noise(
        self,
        num_frames: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """The unit-variance noise a call draws from ``generator`` for ``num_frames`` frames at ``height`` x
        ``width``: (1, C, num_frames, height / 8, width / 8) for SD-sized models."""
        shape = (
            1,
            self.denoising_unet.config.in_channels,
            num_frames,
            height // self.vae_scale_factor,
            width // self.vae_scale_factor,
        )
        return randn_tensor(shape, generator=generator, device=torch.device(device), dtype=dtype)

    # -- the task ----------------------------------------------------------------------------------------
    @property
    def model_defaults(self) -> ModelDefaults:
        """This model's default preset and limits, what a ``SamplingRequest`` is resolved against."""
        return ModelDefaults.read(self.config, self.denoising_unet.config)

    def sampling_settings(
        self,
        sampling: SamplingSettings | SamplingRequest | str | dict | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
    ) -> SamplingSettings:
        """``sampling`` resolved for this model (``SamplingRequest.resolve``), with diffusers' names for the steps
        and the guidance folded in (``with_diffusers_names``; a broken rule names the keyword the caller used);
        ``SamplingSettings`` pass as given."""
        keywords = {"num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale}
        sampling = with_diffusers_names(sampling, **keywords)
        if isinstance(sampling, SamplingSettings):
            return sampling
        try:
            return SamplingRequest.of(sampling).resolve(self.model_defaults)
        except SettingError as error:
            used = {DIFFUSERS_NAMES[name]: name for name, value in keywords.items() if value is not None}
            raise error.named(used) from None

    @torch.no_grad()
    def __call__(
        self,
        reference_image: PIL.Image.Image,
        pose_frames: Sequence[PIL.Image.Image] | np.ndarray | Tensor,
        sampling: SamplingSettings | SamplingRequest | str | dict | None = None,
        *,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        generator: torch.Generator | None = None,
        eta: float = 0.0,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        frame_sink: Callable[[np.ndarray], None] | None = None,
        hooks: PipelineHooks | None = None,
        latents: Tensor | None = None,
        decoder: str = "vae",
        ranks: Ranks | None = None,
    ) -> AnimateAnyonePipelineOutput | tuple:
        """Animate ``reference_image`` (any PIL mode) with ``pose_frames`` (rendered skeletons: PIL images,
        uint8 array (frames, H, W, 3), or float tensor (frames, 3, H, W) in [0, 1]).

        ``sampling``: the steps, guidance, solver, guidance interval, feature caching and temporal windows
        (``pipelines.settings``): a preset name, a ``SamplingRequest`` (or a dict of its fields) resolved against
        this model's default preset (``model_defaults``: "quality" unless it is a distilled student), or
        ``SamplingSettings`` already resolved (``sampling_settings``), used as they are. diffusers' names
        ``num_inference_steps`` and ``guidance_scale`` set the request's ``steps`` and ``guidance`` (a value given
        both ways is an error naming both). Settings that do not suit the model (guidance on a distilled student,
        the student preset on a model that was not distilled) raise a ``SettingsWarning`` of one line when resolved.

        Size defaults to the reference's aspect ratio with the shorter side the model's own resolution
        (``model_dir.default_short_side``: 512 for SD-1.5 models); ``num_frames`` defaults to all pose frames. The
        pose frames stay where they are given (host memory); each window's frames go to the device when it runs.
        Videos longer than the settings' ``context_frames`` are denoised in overlapping windows (``window_mode``:
        "shifted" blends moving windows, "moore" reproduces the public implementation). With ``frame_sink``, decoded
        uint8 frames are handed over one by one as they are decoded and not kept, so memory does not grow with the
        video's length. The optimisations in force (``set_optimisations``) set the decode chunk size, window batching
        and the reference K/V cache; ``hooks`` see the stages (``PipelineHooks``).

        ``output_type``: "np" (uint8 frames), "pil", "pt" (float tensor in [0, 1]) or "latent"
        (``AnimateAnyonePipelineOutput``); ``return_dict=False`` returns the tuple ``(frames,)`` instead.
        ``callback_on_step_end(pipe, step, timestep, tensors)``, as in diffusers: called after every scheduler step
        with ``tensors`` holding the names of ``callback_on_step_end_tensor_inputs`` ("latents": the whole video's,
        (1, 4, frames, h, w)); a "latents" it returns replaces them, and setting ``pipe._interrupt = True`` stops
        the loop there and decodes the latents so far (``interrupt``). A diffusers ``PipelineCallback`` brings its
        own tensor inputs. Handed several ``ranks``, every process runs it.

        ``latents``: the initial noise (unit variance, ``initial_noise``'s shape) instead of drawing it from
        ``generator``; e.g. a slice of a longer video's noise, to animate its frames as a fresh short clip.
        ``decoder``: "vae" (the model's VAE) or "light" (its ``light_decoder``: a fraction of the decode's work,
        not exact).

        ``ranks``: the processes that share this video (``distributed.Ranks``, e.g. ``Ranks.of_group()`` on every
        process of a group): each denoises its share of every step's windows and decodes its share of the chunks,
        and the main process alone gets the frames (the others get ``frames=None``). Default: this process alone,
        whatever process group exists (a call on one process of a group never waits for the others).
        """
        device, dtype = self._execution_device, self.denoising_unet.dtype
        opts, hooks = self.optimisations, hooks or PipelineHooks()
        # 1. Inputs.
        settings = self.sampling_settings(sampling, num_inference_steps, guidance_scale)
        tensor_inputs = getattr(callback_on_step_end, "tensor_inputs", callback_on_step_end_tensor_inputs)
        if opts.compile and any(not step.refresh for step in settings.plan):
            warnings.warn(
                f"feature caching (cache_interval {settings.cache_interval}) runs the denoising UNet uncompiled: "
                "optimisations.compile speeds up calls without caching only (set cache_interval=1 to compile it)",
                SettingsWarning,
                stacklevel=2,
            )
        sampler = make_scheduler(self.scheduler, settings.scheduler)
        reference_image = _rgb(reference_image)
        if height is None or width is None:
            w, h = default_size(reference_image, default_short_side(self.denoising_unet.config, self.vae.config))
            width, height = width or w, height or h
        pose = _pose_tensor(pose_frames)  # (F, 3, Hp, Wp) uint8
        num_frames = pose.shape[0] if num_frames is None else num_frames
        self.check_inputs(height, width, num_frames, pose.shape[0], output_type, decoder, tensor_inputs)
        self._interrupt, self._num_timesteps = False, settings.steps
        pose = _resize(pose[:num_frames], height, width)  # (F, 3, H, W) uint8, where it came (the host)
        # 2. Reference: CLIP embedding and one ReferenceNet pass (its bank serves every step and window).
        model = self.model
        with hooks.stage("reference"):
            image_embeds, ref_latents = self.encode_image(reference_image, height, width, device, dtype)
            use_reference = self.config.use_reference_net
            bank = model.encode_reference(ref_latents, image_embeds, opts.ref_kv_cache) if use_reference else None

        # 3. Pose features per window (the guider works frame by frame, so windows can be encoded on demand).
        def pose_features(idx: Tensor) -> Tensor:
            with hooks.stage("pose_guider"):
                frames = pose[idx.to(pose.device)].to(device, non_blocking=True)  # (f, 3, H, W) uint8: 1 byte a value
                images = frames.to(dtype) / 255
                return model.encode_pose(images.transpose(0, 1).unsqueeze(0)).to(dtype)  # (1, C0, f, h, w)

        # 4. Initial noise (1, C, frames, h, w), unit variance (the sampler scales it).
        noise = self.initial_noise(num_frames, height, width, generator, device, dtype)
        if latents is not None:
            if latents.shape != noise.shape:
                raise ValueError(
                    f"latents must have shape {tuple(noise.shape)} for this call, got {tuple(latents.shape)}"
                )
            noise = latents.to(device=device, dtype=dtype)

        # 5. Denoising loop over windows, with a progress bar of steps x windows.
        def step_end(step: int, timestep: Tensor, latents: Tensor) -> Tensor | None:
            hooks.step_end(step, latents)
            if callback_on_step_end is None:
                return None
            tensors = {name: {"latents": latents}[name] for name in tensor_inputs}
            returned = callback_on_step_end(self, step, timestep, tensors) or {}
            return returned.get("latents")

        ranks = ranks or Ranks()  # handed several processes, this one runs (and counts) its own windows
        schedules = step_schedules(settings.plan, settings, num_frames)
        total = sum(len(ranks.mine(len(schedule))) for schedule in schedules)
        stats: dict = {}
        with self.progress_bar(total=total) as bar, hooks.stage("denoising"):
            latents = sample_video(
                model,
                sampler,
                noise,
                image_embeds,
                pose_features,
                bank,
                settings,
                generator=generator,
                eta=eta,
                callback=lambda step, window: bar.update(),
                window_batch=opts.window_batch,
                on_step_end=step_end,
                interrupted=lambda: self.interrupt,
                stats=stats,
                ranks=ranks,
            )
        stats["sampling"] = settings
        if output_type == "latent":
            return self._output(latents, stats, return_dict)
        # 6. Decode in chunks; stream to the sink or collect.
        # Shared by several processes, the chunks are decoded across them and only the main one gets frames.
        decoded = self.decode_across_ranks(latents, opts.decode_chunk_size or num_frames, decoder, ranks)
        with hooks.stage("vae_decode"):
            if frame_sink is not None:
                for frame in decoded:
                    frame_sink(frame)
                frames = None
            else:
                collected = list(decoded)
                frames = np.stack(collected) if collected else None
        if output_type == "pil" and frames is not None:
            frames = [PIL.Image.fromarray(f) for f in frames]
        if output_type == "pt" and frames is not None:
            frames = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255  # (F, 3, H, W) in [0, 1]
        return self._output(frames, stats, return_dict)

    def _output(self, frames, stats: dict, return_dict: bool) -> AnimateAnyonePipelineOutput | tuple:
        self.maybe_free_model_hooks()  # offloaded models (enable_model_cpu_offload) go back to the host
        return AnimateAnyonePipelineOutput(frames=frames, stats=stats) if return_dict else (frames,)


def _rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    if not isinstance(image, PIL.Image.Image):
        raise TypeError(
            f"reference_image must be a PIL image (see animate_anyone.media.load_image), got {type(image).__name__}"
        )
    from ..media import load_image

    return load_image(image)


def _to_tensor(array: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).unsqueeze(0).float() / 255


def _pose_tensor(frames) -> Tensor:
    """Pose frames in any accepted form -> (F, 3, H, W) uint8."""
    if isinstance(frames, Tensor):
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"pose tensor must be (frames, 3, H, W), got {tuple(frames.shape)}")
        return frames if frames.dtype == torch.uint8 else (frames.float().clamp(0, 1) * 255).round().to(torch.uint8)
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"pose array must be uint8 (frames, H, W, 3), got {frames.dtype} {frames.shape}")
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    frames = list(frames)
    if not frames:
        raise ValueError("pose_frames is empty")
    if all(isinstance(f, np.ndarray) for f in frames):  # a list of (H, W, 3) uint8 arrays
        if len({f.shape for f in frames}) > 1:
            raise ValueError(f"pose frames differ in shape: {sorted({f.shape for f in frames})}")
        return _pose_tensor(np.stack(frames))
    if not all(isinstance(f, PIL.Image.Image) for f in frames):
        kinds = sorted({type(f).__name__ for f in frames})
        raise TypeError(
            f"pose_frames must be PIL images, uint8 (H, W, 3) arrays or one (F, H, W, 3) array/tensor, got {kinds}"
        )
    sizes = {f.size for f in frames}
    if len(sizes) > 1:
        raise ValueError(f"pose frames differ in size: {sorted(sizes)}")
    return torch.from_numpy(np.stack([np.asarray(f.convert("RGB")) for f in frames])).permute(0, 3, 1, 2)


def _resize(pose: Tensor, height: int, width: int) -> Tensor:
    """(F, 3, h, w) uint8 -> (F, 3, height, width) uint8 (bilinear, frame by frame to bound memory)."""
    if pose.shape[-2:] == (height, width):
        return pose
    out = torch.empty(pose.shape[0], 3, height, width, dtype=torch.uint8)
    for i in range(pose.shape[0]):
        frame = torch.nn.functional.interpolate(
            pose[i : i + 1].float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False
        )
        out[i] = frame.round().clamp(0, 255).to(torch.uint8)[0]
    return out
