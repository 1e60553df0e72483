"""The model directory: the one reader and the one writer of the project's on-disk model format.

    DIR/model_index.json     components and their classes (+ ``use_reference_net``), as diffusers expects
    DIR/reference_net/       ReferenceNet          (config.json = a diffusers UNet2DConditionModel config)
    DIR/denoising_unet/      AnimateAnyoneUNet     (config.json = a diffusers UNetMotionModel config)
    DIR/pose_guider/         PoseGuider
    DIR/vae/, image_encoder/, feature_extractor/, scheduler/   (stock diffusers / transformers components)
    DIR/README.md            the model card (Hub metadata: license, base models, pipeline tag; ``hub``)

Reading: :class:`ModelDirectory` checks a directory (naming what is missing before anything heavy loads) and
loads its networks or components. Writing: :func:`write_model_directory` is used by ``init-model``,
``convert moore|public|assemble`` and the training export; the directory is written to a temporary sibling and
renamed into place, so a crash never leaves a half-written model. Every directory written carries a model card,
README.md (``hub.write_model_card``), so that one pushed to the Hugging Face Hub describes itself; a directory on the
Hub is read through ``hub.resolve_model``, which gives its local snapshot.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_directory, write_text
from .hub import Card, write_model_card
from .models import NETWORKS, AnimateAnyone
from .weights import PRETRAINED_SUFFIXES

AUXILIARY = ("vae", "image_encoder", "feature_extractor", "scheduler")
COMPONENTS = (
    "vae",
    "image_encoder",
    "feature_extractor",
    "reference_net",
    "denoising_unet",
    "pose_guider",
    "scheduler",
)
OPTIONAL = ("light_decoder",)  # components a model directory may carry (pipelines read them when present)
LIBRARY = {  # the default (library, class) of each component in model_index.json
    "reference_net": ("animate_anyone.models", "ReferenceNet"),
    "denoising_unet": ("animate_anyone.models", "AnimateAnyoneUNet"),
    "pose_guider": ("animate_anyone.models", "PoseGuider"),
    "vae": ("diffusers", "AutoencoderKL"),
    "image_encoder": ("transformers", "CLIPVisionModelWithProjection"),
    "feature_extractor": ("transformers", "CLIPImageProcessor"),
    "scheduler": ("diffusers", "DDIMScheduler"),
    "light_decoder": ("animate_anyone.models", "LightDecoder"),
}
WEIGHTED = ("vae", "image_encoder", "reference_net", "denoising_unet", "pose_guider", "light_decoder")
FIX = (
    "create one with `animate-anyone convert public` (the public weights, downloaded and converted), `convert moore` "
    "(the same files, downloaded by hand) or `init-model`, or name a Hugging Face Hub id (org/name) of one"
)


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def vae_scale_factor(vae_config: Mapping[str, Any]) -> int:
    """How many pixels one latent covers along each side: 2 ** (VAE levels - 1) (8 for SD's VAE)."""
    return 2 ** (len(vae_config["block_out_channels"]) - 1)


def default_short_side(unet_config: Mapping[str, Any], vae_config: Mapping[str, Any]) -> int:
    """The output's shorter side when the caller gives no size: the resolution the denoising UNet was trained at,
    its ``sample_size`` (latents) times the VAE's downsampling factor, as diffusers' pipelines do (SD-1.5: 64 x 8 =
    512). The VAE's own ``sample_size`` is no guide: sd-vae-ft-mse says 256 for the same VAE that SD-1.5's folder
    says 512 for. It is the fallback only for a UNet config without ``sample_size``."""
    factor = vae_scale_factor(vae_config)
    latents = unet_config.get("sample_size")
    if isinstance(latents, (list, tuple)):  # diffusers also allows (height, width)
        latents = min(latents)
    return int(latents) * factor if latents else int(vae_config["sample_size"])


def _check_weights(folder: Path) -> None:
    files = [f for f in folder.iterdir() if f.suffix in PRETRAINED_SUFFIXES]
    if not files:
        raise FileNotFoundError(
            f"{folder} has no weights file (diffusion_pytorch_model.safetensors or model.safetensors): an incomplete "
            "copy? copy the folder again"
        )
    for file in files:
        if file.stat().st_size == 0:
            raise ValueError(f"{file} is empty (0 bytes): an interrupted copy or download? copy it again")


class ModelDirectory:
    """A model directory on disk: what it holds, checked before loading, and its parts loaded on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            what = "is a file, not" if self.path.exists() else "not found; expected"
            raise FileNotFoundError(f"model directory {self.path} {what} a model directory; {FIX}")

    def index(self) -> dict[str, Any]:
        file = self.path / "model_index.json"
        if not file.is_file():
            raise FileNotFoundError(f"{self.path} is not a model directory (no model_index.json); {FIX}")
        return read_json(file)

    def config(self, name: str) -> dict[str, Any]:
        """The ``config.json`` of a component folder (without loading any weights)."""
        file = self.path / name / "config.json"
        if not file.is_file():
            raise FileNotFoundError(f"{self.path} has no {name}/config.json; {FIX}")
        return read_json(file)

    @property
    def use_reference_net(self) -> bool:
        """False for the ablation trained without ReferenceNet (only the image embedding carries the reference)."""
        return bool(self.index().get("use_reference_net", True))

    def default_short_side(self) -> int:
        """The shorter side of the output when no size is given (``default_short_side``), from the configs."""
        return default_short_side(self.config("denoising_unet"), self.config("vae"))

    @property
    def random_weights(self) -> bool:
        """True for a directory written by ``init-model``: its networks were never trained (their output is noise)."""
        return self.index().get("weights") == "random"

    def fingerprint(self) -> str:
        """``sha256:<hex>`` over the files that decide what the model computes: its configs (``*.json``) and weights
        (``*.safetensors``, ``*.bin``), each by its path relative to the directory (POSIX) and its bytes, in sorted
        path order. Where the directory lives, file times, notes beside the model (PROVENANCE.txt, a README) and
        hidden entries (``.name``: partial writes, OS litter) do not count, so a copy has the same fingerprint."""
        digest = hashlib.sha256()
        kinds = (".json", *PRETRAINED_SUFFIXES)
        files = {p.relative_to(self.path).as_posix(): p for p in self.path.rglob("*") if p.is_file()}
        for rel in sorted(files):
            if any(part.startswith(".") for part in rel.split("/")) or not rel.endswith(kinds):
                continue
            name = rel.encode("utf-8")
            digest.update(len(name).to_bytes(8, "little") + name + files[rel].stat().st_size.to_bytes(8, "little"))
            with files[rel].open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        return f"sha256:{digest.hexdigest()}"

    def check(self, components: tuple[str, ...] = COMPONENTS) -> ModelDirectory:
        """FileNotFoundError naming the first component that model_index.json does not list, that has no folder
        with its config or no weights file; ValueError for a config that is not JSON or an empty weights file.
        Returns self."""
        listed = self.index()
        for name in components:
            if name not in listed:
                raise FileNotFoundError(f"{self.path}/model_index.json lists no {name!r} component; {FIX}")
            sub = self.path / name
            configs = sorted(sub.glob("*.json")) if sub.is_dir() else []
            if not configs:
                raise FileNotFoundError(f"{self.path} is missing the {name} component ({sub}/ with its config); {FIX}")
            for config in configs:
                read_json(config)  # a damaged config is named here, not deep inside a library's loader
            if name in WEIGHTED:
                _check_weights(sub)
        return self

    def load_networks(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> AnimateAnyone:
        """The model's networks (``models.NETWORKS``: ReferenceNet, denoising UNet, Pose Guider) as one
        ``AnimateAnyone``."""
        for name in NETWORKS:
            self.config(name)  # names the missing network before any weights load
        parts = {name: cls.from_pretrained(self.path / name, dtype=dtype) for name, cls in NETWORKS.items()}
        model = AnimateAnyone(**parts)
        return model.to(device) if device is not None else model

    def load_component(self, name: str):
        """The VAE, image encoder, image processor or scheduler (the scheduler class named in model_index.json)."""
        import diffusers
        from diffusers import AutoencoderKL
        from transformers import CLIPVisionModelWithProjection

        from .models.sizes import image_processor_class

        self.check((name,))
        folder = self.path / name
        if name == "vae":
            return AutoencoderKL.from_pretrained(folder, local_files_only=True)
        if name == "image_encoder":
            return CLIPVisionModelWithProjection.from_pretrained(folder, local_files_only=True)
        if name == "feature_extractor":
            return image_processor_class().from_pretrained(folder, local_files_only=True)
        if name == "scheduler":
            class_name = self.index()["scheduler"][1]
            return getattr(diffusers, class_name).from_pretrained(folder)
        raise ValueError(f"unknown component {name!r}; choose one of {', '.join(AUXILIARY)}")


# -- writing ----------------------------------------------------------------------------------------------------


def save_networks(model: AnimateAnyone, directory: Path) -> None:
    """Write the three networks into an existing (temporary) directory."""
    for name in NETWORKS:
        getattr(model, name).save_pretrained(directory / name, safe_serialization=True)


def _class_of(name: str, value) -> tuple[str, str]:
    """(library, class) for model_index.json: from the object, or from the source directory's index for a copy."""
    library, default = LIBRARY[name]
    if isinstance(value, (str, Path)):
        index = Path(value).parent / "model_index.json"
        listed = read_json(index).get(name) if index.is_file() else None
        return tuple(listed) if listed else (library, default)
    return library, type(value).__name__


def write_model_directory(
    out: str | Path,
    networks: AnimateAnyone | str | Path,
    components: Mapping[str, Any] | None = None,
    *,
    use_reference_net: bool = True,
    default_preset: str | None = None,
    random_weights: bool = False,
    student_steps: int | None = None,
    overwrite: bool = False,
    card: Card | None = None,
) -> Path:
    """Write a model directory and return its path.

    ``networks``: an ``AnimateAnyone`` (saved) or a folder holding ``reference_net/``, ``denoising_unet/`` and
    ``pose_guider/`` (copied as they are). ``components``: ``{"vae", "image_encoder", "feature_extractor",
    "scheduler"}`` and optionally ``"light_decoder"``, each an object with ``save_pretrained`` or the path of a
    component folder to copy (e.g. of another model directory); ``None`` writes the networks only (a partial
    directory that ``convert assemble`` completes). ``use_reference_net=False``: the ablation's setting, read by
    the pipeline. ``default_preset``: the sampling preset the pipeline uses when a call names none
    (``pipelines.settings``; "student" for a distilled model); None: not recorded (the pipeline's "quality");
    ``student_steps``: the steps the student was distilled for (a phased student; the ``student`` preset takes
    them). ``random_weights``: the networks were never trained (``init-model``); recorded as
    ``"weights": "random"`` so that ``animate`` can say so. ``card``: what its model card, README.md, says
    (``hub.Card``: what it is and the public repositories its parts come from; ``hub.write_model_card`` adds the Hub
    metadata, so that a pushed directory describes itself); None: a card without sources.
    """
    components = dict(components or {})
    unknown = sorted(set(components) - set(AUXILIARY) - set(OPTIONAL))
    if unknown:
        raise ValueError(f"unknown model-directory components {unknown}; expected {', '.join(AUXILIARY + OPTIONAL)}")
    import diffusers

    index: dict[str, Any] = {"_class_name": "AnimateAnyonePipeline", "_diffusers_version": diffusers.__version__}
    with atomic_directory(out, overwrite=overwrite) as tmp:
        # 1. The three networks.
        if isinstance(networks, AnimateAnyone):
            save_networks(networks, tmp)
        else:
            for name in NETWORKS:
                shutil.copytree(Path(networks) / name, tmp / name)
        index.update({name: list(LIBRARY[name]) for name in NETWORKS})
        # 2. The stock components, saved or copied.
        for name, value in components.items():
            if isinstance(value, (str, Path)):
                shutil.copytree(value, tmp / name)
            else:
                value.save_pretrained(tmp / name)
            index[name] = list(_class_of(name, value))
        index["use_reference_net"] = bool(use_reference_net)
        if default_preset is not None:
            index["default_preset"] = default_preset
        if student_steps is not None:
            index["student_steps"] = int(student_steps)
        if random_weights:
            index["weights"] = "random"
        write_text(tmp / "model_index.json", json.dumps(index, indent=2) + "\n")
        write_model_card(tmp, card or Card(_summary(random_weights)))
    return Path(out)


def _summary(random_weights: bool) -> str:
    if random_weights:
        return "Randomly initialised networks (`animate-anyone init-model`): until trained, the video is noise."
    return "A model directory written by animate-anyone."
