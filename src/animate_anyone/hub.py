"""The Hugging Face Hub: model directories named by a repository id, the public release's sources, model cards.

    resolve_model("org/name")                 # the local snapshot of a model directory shared on the Hub
    resolve_model("models/tiny")              # an existing local path always wins: returned as it is
    fetch(PUBLIC_SOURCES[1])                  # one public source's files, as ``convert public`` fetches them
    write_model_card(directory, Card(summary, sources))  # README.md with Hub metadata (model_dir's writer)

A Hub id is resolved to a local snapshot once, where a command checks its inputs before any work; everything after
works on that local path. huggingface_hub does the rest: its cache (``HF_HOME`` / ``HF_HUB_CACHE``: a rerun
downloads nothing again, an interrupted download resumes), ``revision`` (a branch, tag or commit), ``HF_ENDPOINT``,
``HF_TOKEN`` and ``HF_HUB_OFFLINE=1`` (the cache only). Its errors become one-line ``ValueError``s naming the
repository and the fix.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROJECT_LICENSE = "apache-2.0"  # this project's own (pyproject.toml): a directory without sources takes it
LICENSES = ("mit", "apache-2.0", "creativeml-openrail-m")  # least to most restrictive; any other makes "other"
TAGS = ("animate-anyone", "pose-to-video", "character-animation")
LOCAL_FIX = "or pass a local directory"
BY_HAND = "download the files by hand (README) and run `animate-anyone convert moore`"


@dataclass(frozen=True)
class Source:
    """A public Hub repository that a model directory takes one part from."""

    part: str  # what it gives: networks, vae, image_encoder, sd15
    repo: str
    files: tuple[str, ...]  # what is fetched (huggingface_hub's allow_patterns); () for a source never fetched
    revision: str  # a commit where a real source states one, else the branch
    license: str  # the repository's license tag on the Hub


@dataclass(frozen=True)
class Card:
    """What a model directory's card says: what it is (one sentence) and where its parts come from."""

    summary: str
    sources: tuple[Source, ...] = ()


# The public release of the README ("Animate a character with the public weights"): one table for the download, the
# conversion and the model card. Pinned: sd-vae-ft-mse, to the commit that other projects pin; patrolli/AnimateAnyone
# and sd-image-variations track "main", as no commit of theirs is stated in any source we could check.
PUBLIC_SOURCES = (
    Source(
        "networks",  # Moore-AnimateAnyone's release
        "patrolli/AnimateAnyone",
        ("denoising_unet.pth", "reference_unet.pth", "pose_guider.pth", "motion_module.pth"),
        "main",
        "apache-2.0",
    ),
    Source(
        "vae",
        "stabilityai/sd-vae-ft-mse",
        ("config.json", "diffusion_pytorch_model.safetensors"),
        "31f26fdeee1355a5c34592e401dd41e45d25a493",
        "mit",
    ),
    Source(
        "image_encoder",
        "lambdalabs/sd-image-variations-diffusers",
        ("image_encoder/*", "feature_extractor/*"),
        "main",
        "creativeml-openrail-m",
    ),
)
SD15 = Source("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", (), "main", "creativeml-openrail-m")  # --sd15


def public_sources(*parts: str) -> tuple[Source, ...]:
    """The public sources of ``parts`` (``networks``, ``vae``, ``image_encoder``, ``sd15``), in that order."""
    table = {source.part: source for source in (*PUBLIC_SOURCES, SD15)}
    return tuple(table[part] for part in parts)


# -- resolving ----------------------------------------------------------------------------------------------------


def hub_id(name_or_path, base: str | Path | None = None) -> str | None:
    """``name_or_path`` when it names a Hub repository: a string spelled ``org/name`` with no such path (relative to
    ``base``, default the working directory); None for anything else (a ``Path`` included): a local path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    text = name_or_path
    if not isinstance(text, str) or text.count("/") != 1 or text.startswith((".", "~", "/")):
        return None
    if (Path(base or ".") / text).exists():  # a local path always wins
        return None
    try:
        validate_repo_id(text)
    except HFValidationError:
        return None
    return text


def resolve_model(
    name_or_path, revision: str | None = None, *, cache_dir=None, token=None, local_files_only: bool = False
) -> Path:
    """The local model directory that ``name_or_path`` names: an existing path, or anything that is no Hub id, as it
    is (``model_dir.ModelDirectory`` says what is wrong with it); else the snapshot of the Hub repository
    ``org/name`` at ``revision`` (default its main branch), fetched into the Hugging Face cache with the files a model
    directory holds and nothing else. Resolved once per process: the same arguments give the same snapshot again
    without asking the Hub. One-line ``ValueError`` when the Hub cannot give it."""
    repo = hub_id(name_or_path)
    if repo is None:
        return Path(name_or_path)
    return _snapshot(repo, revision, cache_dir, token, local_files_only)


@functools.cache  # failures are not kept: a later call asks again
def _snapshot(repo: str, revision, cache_dir, token, local_files_only: bool) -> Path:
    from .weights import PRETRAINED_SUFFIXES

    files = ["model_index.json", "README.md", "*/*.json", *(f"*/*{suffix}" for suffix in PRETRAINED_SUFFIXES)]
    options = {"cache_dir": cache_dir, "token": token, "local_files_only": local_files_only}
    folder = _download(f"model {repo!r}", repo, revision, files, LOCAL_FIX, **options)
    if not (folder / "model_index.json").is_file():
        raise ValueError(
            f"model {repo!r} on the Hugging Face Hub is no animate-anyone model directory (no model_index.json): "
            f"share one written by `animate-anyone convert` or `init-model`, or {LOCAL_FIX}"
        )
    return folder


def fetch(source: Source, cache_dir=None) -> Path:
    """The local snapshot of ``source``'s files at its revision, downloaded once into the Hugging Face cache (a rerun
    fetches nothing again; an interrupted download resumes). ``ValueError`` naming the repository and the file when
    one of them is not there."""
    what = f"{source.part} source {source.repo!r}"
    folder = _download(what, source.repo, source.revision, source.files, f"or {BY_HAND}", cache_dir=cache_dir)
    missing = [pattern for pattern in source.files if not any(folder.glob(pattern))]
    if missing:
        raise ValueError(
            f"{what} (revision {source.revision}) has no {', '.join(missing)}: has the public layout changed? {BY_HAND}"
        )
    return folder


def _download(what: str, repo: str, revision, files, fix: str, **options) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=list(files), **options))
    except (HfHubHTTPError, LocalEntryNotFoundError) as exc:
        raise hub_error(what, revision, exc, fix, options.get("local_files_only", False)) from None


def hub_error(what: str, revision, exc: Exception, fix: str = LOCAL_FIX, local_files_only: bool = False) -> ValueError:
    """huggingface_hub's error for ``what`` (e.g. "model 'org/name'") as one line: what went wrong and the fix."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        why = (
            "is gated on the Hugging Face Hub: accept its conditions on its page, then `hf auth login` or set HF_TOKEN"
        )
    elif isinstance(exc, RepositoryNotFoundError):
        nowhere = "is neither a local directory nor a repository" if fix == LOCAL_FIX else "is no repository"
        login = "a private one needs `hf auth login` or HF_TOKEN"
        why = f"{nowhere} on the Hugging Face Hub ({login}): check the name, {fix}"
    elif isinstance(exc, RevisionNotFoundError):
        why = f"has no revision {revision!r} on the Hugging Face Hub: name a branch, tag or commit of it"
    elif isinstance(exc, LocalEntryNotFoundError) and (constants.HF_HUB_OFFLINE or local_files_only):
        switch = "HF_HUB_OFFLINE=1 is set" if constants.HF_HUB_OFFLINE else "local_files_only=True"
        why = f"is not in the Hugging Face cache and {switch}: run once online, {fix}"
    elif isinstance(exc, LocalEntryNotFoundError):
        why = (
            f"could not be fetched from {constants.ENDPOINT} and is not in the Hugging Face cache: check the "
            f"connection (or HF_ENDPOINT), {fix}"
        )
    else:
        status = getattr(getattr(exc, "response", None), "status_code", "an error")
        why = f"could not be fetched: the Hugging Face Hub answered {status}; try again later, {fix}"
    return ValueError(f"{what} {why}")


# -- the model card -----------------------------------------------------------------------------------------------


def strictest(licenses: Iterable[str]) -> str:
    """The most restrictive of ``licenses`` (``LICENSES``' order); "other" when one is not in that list; this
    project's own license when there are none."""
    found = set(licenses)
    if not found:
        return PROJECT_LICENSE
    if found - set(LICENSES):
        return "other"
    return max(found, key=LICENSES.index)


def write_model_card(directory: str | Path, card: Card) -> Path:
    """Write ``directory/README.md``, the model card that makes a pushed directory describe itself: Hub metadata
    (license: the most restrictive of the sources', base_model: their repositories, pipeline_tag, library_name, tags,
    and the sources themselves, which a directory made from this one inherits: ``card_sources``) and a short body
    (the summary, how to load it, each source with its revision and license). Returns the file."""
    from huggingface_hub import ModelCard, ModelCardData

    sources = tuple(card.sources)
    data = ModelCardData(
        license=strictest(source.license for source in sources),
        base_model=list(dict.fromkeys(source.repo for source in sources)) or None,
        pipeline_tag="image-to-video",
        library_name="diffusers",
        tags=list(TAGS),
        sources=[_row(source) for source in sources] or None,
    )
    file = Path(directory) / "README.md"
    ModelCard(f"---\n{data.to_yaml()}\n---\n\n{_body(card.summary, sources, data.license)}").save(file)
    return file


def card_sources(directory: str | Path) -> tuple[Source, ...]:
    """The sources that ``directory``'s model card records (none without a card, or from a card of another kind)."""
    from huggingface_hub import ModelCard

    file = Path(directory) / "README.md"
    if not file.is_file():
        return ()
    rows = ModelCard.load(file).data.to_dict().get("sources") or []
    keys = {"part", "repo", "revision", "license"}
    return tuple(Source(files=(), **row) for row in rows if isinstance(row, dict) and set(row) == keys)


def _row(source: Source) -> dict[str, str]:
    return {"part": source.part, "repo": source.repo, "revision": source.revision, "license": source.license}


def _body(summary: str, sources: tuple[Source, ...], license: str) -> str:
    lines = [
        "# Animate Anyone model",
        "",
        summary,
        "",
        "A model directory of the `animate-anyone` package (Animate Anyone, Hu et al. 2023, arXiv:2311.17117, on "
        "diffusers): one reference image and a pose sequence in, a video of the character out.",
        "",
        "## Use",
        "",
        "```python",
        "from animate_anyone.pipelines import AnimateAnyonePipeline",
        "",
        'pipe = AnimateAnyonePipeline.from_pretrained("ORG/NAME")  # this repository\'s id, or a local copy',
        "```",
        "",
        "```bash",
        "animate-anyone animate --model ORG/NAME --reference ref.png --pose pose.mp4 --out out.mp4",
        "```",
        "",
        "## Sources",
        "",
    ]
    if not sources:
        return "\n".join([*lines, f"None: its weights were made by animate-anyone itself ({license}).", ""])
    lines += [
        f"The license above ({license}) is the most restrictive of its sources':",
        "",
        "| part | repository | revision | license |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s.part} | [{s.repo}](https://huggingface.co/{s.repo}) | `{s.revision}` | {s.license} |" for s in sources
    ]
    return "\n".join([*lines, ""])
