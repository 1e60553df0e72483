"""Issue 42, item 2: model directories on the Hugging Face Hub, the one-command download of the public weights, and
the model card every written directory carries. Against a local stand-in of the Hub (``stand_in_hub``), never the
internet: huggingface_hub's endpoint, cache and offline switch are pointed at the test's own."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone import hub as hub_module
from animate_anyone.cli.main import main
from animate_anyone.hub import PUBLIC_SOURCES, Card, card_sources, public_sources, resolve_model, write_model_card
from animate_anyone.model_dir import ModelDirectory
from animate_anyone.pipelines import AnimateAnyonePipeline
from conftest import golden_dir, golden_sizes, golden_spec
from stand_in_hub import StandInHub, offline_mode

MODEL_FILES = {"README.md", "model_index.json"}  # plus every component's configs and weights


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A running stand-in Hub that huggingface_hub talks to, with an empty cache under tmp_path/home; resolved ids
    are forgotten before and after (``resolve_model`` keeps them for the process)."""
    hub_module._snapshot.cache_clear()
    with StandInHub() as stand_in:
        stand_in.point(monkeypatch, tmp_path / "home")
        yield stand_in
    hub_module._snapshot.cache_clear()


def go_offline(hub, monkeypatch, tmp_path):
    """The server stopped, HF_HUB_OFFLINE=1 and nothing remembered in this process: only the cache is left."""
    hub.stop()
    offline_mode(monkeypatch, tmp_path / "home", offline=True)
    hub_module._snapshot.cache_clear()


def served_tiny(hub, tiny_model_dir, tmp_path) -> tuple[Path, str]:
    """``org/tiny``: a copy of the tiny model directory with files a model directory never needs beside it."""
    folder = tmp_path / "repo-tiny"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "notes.txt").write_text("not part of the model")
    (folder / "extra").mkdir()
    (folder / "extra" / "training_log.txt").write_text("not part of the model either")
    return folder, hub.add("org/tiny", folder)


def model_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def error_line(capsys) -> str:
    """The command's error: one line of stderr (progress bars aside)."""
    (line,) = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    return line


def one_line_error(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


# -- from_pretrained and resolve_model ----------------------------------------------------------------------------


def test_from_pretrained_loads_a_model_directory_from_the_hub(hub, tiny_model_dir, tmp_path):
    folder, commit = served_tiny(hub, tiny_model_dir, tmp_path)
    pipe = AnimateAnyonePipeline.from_pretrained("org/tiny")
    assert type(pipe).__name__ == "AnimateAnyonePipeline" and pipe.pose_guider is not None
    # only what a model directory holds was fetched: not the notes beside it
    fetched = set(hub.gets("org/tiny"))
    assert fetched == model_files(tiny_model_dir) and "notes.txt" not in fetched and MODEL_FILES <= fetched
    snapshot = resolve_model("org/tiny")
    assert snapshot.name == commit and (tmp_path / "home" / "hub") in snapshot.parents  # huggingface_hub's cache
    assert ModelDirectory(snapshot).fingerprint() == ModelDirectory(tiny_model_dir).fingerprint()
    # a revision (here the commit itself) gives the same snapshot, from the cache; once resolved, an id is not asked
    # for again in this process
    downloads = len(hub.gets("org/tiny"))
    assert resolve_model("org/tiny", commit) == snapshot and len(hub.gets("org/tiny")) == downloads
    asked = len(hub.requests)
    assert resolve_model("org/tiny") == snapshot and resolve_model("org/tiny", commit) == snapshot
    assert len(hub.requests) == asked


def test_from_pretrained_loads_from_the_cache_offline_with_the_hub_gone(hub, tiny_model_dir, tmp_path, monkeypatch):
    served_tiny(hub, tiny_model_dir, tmp_path)
    online = resolve_model("org/tiny")  # fetched once
    go_offline(hub, monkeypatch, tmp_path)
    pipe = AnimateAnyonePipeline.from_pretrained("org/tiny")
    assert pipe.vae is not None and resolve_model("org/tiny") == online
    with pytest.raises(ValueError) as error:  # a revision never fetched is not in the cache
        resolve_model("org/tiny", "v2")
    assert "'org/tiny'" in one_line_error(error.value) and "HF_HUB_OFFLINE=1" in str(error.value)


def test_an_uncached_id_offline_is_one_line_naming_it_and_the_fix(hub, tmp_path, monkeypatch, capsys):
    go_offline(hub, monkeypatch, tmp_path)
    with pytest.raises(ValueError) as error:
        AnimateAnyonePipeline.from_pretrained("org/never-fetched")
    assert one_line_error(error.value) == (
        "model 'org/never-fetched' is not in the Hugging Face cache and HF_HUB_OFFLINE=1 is set: run once online, "
        "or pass a local directory"
    )
    # the command line: the same line, exit status 2, before the pose is read or anything is written
    PIL.Image.new("RGB", (48, 64)).save(tmp_path / "r.png")
    argv = ["animate", "--model", "org/never-fetched", "--reference", str(tmp_path / "r.png"), "--pose", "p.mp4"]
    argv += ["-o", str(tmp_path / "o.mp4")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"animate-anyone animate: error: {error.value}"


@pytest.mark.parametrize(
    "repo, revision, words",
    [
        ("org/missing", None, "is neither a local directory nor a repository on the Hugging Face Hub"),
        ("org/gated", None, "is gated on the Hugging Face Hub: accept its conditions"),
        ("org/tiny", "no-such-branch", "has no revision 'no-such-branch' on the Hugging Face Hub"),
    ],
)
def test_the_hubs_refusals_are_one_line_naming_the_repository(hub, tiny_model_dir, tmp_path, repo, revision, words):
    served_tiny(hub, tiny_model_dir, tmp_path)
    hub.add("org/gated", tiny_model_dir, gated=True)
    with pytest.raises(ValueError) as error:
        resolve_model(repo, revision)
    assert one_line_error(error.value).startswith(f"model {repo!r}") and words in str(error.value)


def test_a_hub_repository_that_is_no_model_directory_is_refused(hub, tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model.pth").write_bytes(b"\0")
    hub.add("org/not-a-model", tmp_path / "weights")
    with pytest.raises(
        ValueError, match=r"^model 'org/not-a-model' on the Hugging Face Hub is no animate-anyone model"
    ):
        resolve_model("org/not-a-model")


def test_a_local_path_always_wins_and_a_non_id_keeps_the_local_error(hub, tiny_model_dir, tmp_path, monkeypatch):
    served_tiny(hub, tiny_model_dir, tmp_path)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_model_dir, tmp_path / "org" / "tiny")  # ./org/tiny exists: it is the model, not the Hub's
    assert resolve_model("org/tiny") == Path("org/tiny") and hub.requests == []
    assert AnimateAnyonePipeline.from_pretrained("org/tiny").vae is not None and hub.requests == []
    for name in ("no/such/dir", "./org/missing", "missing", Path("org/missing")):  # no Hub id (a Path is a path)
        with pytest.raises(FileNotFoundError, match=f"model directory {str(name).removeprefix('./')} not found"):
            AnimateAnyonePipeline.from_pretrained(name)
    assert hub.requests == []


def test_animate_command_takes_a_hub_id_and_a_revision(hub, tiny_model_dir, tmp_path, capsys):
    from animate_anyone.media import write_video

    _, commit = served_tiny(hub, tiny_model_dir, tmp_path)
    reference = tmp_path / "ref.png"
    PIL.Image.fromarray(np.full((64, 48, 3), 180, dtype=np.uint8)).save(reference)
    pose = write_video(tmp_path / "pose.mp4", [np.zeros((64, 48, 3), dtype=np.uint8)] * 2, 8.0)
    out = tmp_path / "out.gif"
    argv = ["animate", "--model", "org/tiny", "--reference", str(reference), "--pose", str(pose), "--out", str(out)]
    argv += ["--steps", "1", "--size", "48x64", "--quiet"]
    assert main([*argv, "--revision", "v9"]) == 2 and not out.exists()  # the revision reaches the Hub
    assert "model 'org/tiny' has no revision 'v9' on the Hugging Face Hub" in capsys.readouterr().err
    assert main([*argv, "--revision", commit]) == 0 and out.is_file()
    assert set(hub.gets("org/tiny")) == model_files(tiny_model_dir)  # resolved once: every file fetched once
    assert len(hub.gets("org/tiny")) == len(model_files(tiny_model_dir))


def test_batch_job_lines_keep_a_hub_id_and_make_paths_relative_to_the_job_file(hub, tmp_path):
    from animate_anyone.jobs.job_file import _paths_from

    (tmp_path / "models" / "local").mkdir(parents=True)
    settings = _paths_from(tmp_path, {"model": "org/tiny"})
    assert settings == {"model": "org/tiny"}  # no such folder beside the job file: the Hub's
    assert _paths_from(tmp_path, {"model": "models/local"}) == {"model": str(tmp_path / "models" / "local")}


def test_the_environment_variables_reach_huggingface_hub_in_a_new_process(hub, tiny_model_dir, tmp_path):
    """HF_ENDPOINT and HF_HUB_OFFLINE as a user sets them (read when huggingface_hub is imported)."""
    _, commit = served_tiny(hub, tiny_model_dir, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "env-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    code = "from animate_anyone.hub import resolve_model; print(resolve_model('org/tiny'))"

    def run(**extra):
        return subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True)

    online = run()
    assert online.returncode == 0, online.stderr
    assert Path(online.stdout.strip()).name == commit
    hub.stop()
    offline = run(HF_HUB_OFFLINE="1")
    assert offline.returncode == 0 and offline.stdout == online.stdout, offline.stderr


# -- the model card ------------------------------------------------------------------------------------------------


def card(folder: Path) -> tuple[dict, str]:
    from huggingface_hub import ModelCard

    loaded = ModelCard.load(folder / "README.md")
    return loaded.data.to_dict(), loaded.text


def test_init_model_writes_a_card_with_hub_metadata_and_no_sources(tiny_model_dir):
    data, text = card(tiny_model_dir)
    assert data["pipeline_tag"] == "image-to-video" and data["library_name"] == "diffusers"
    assert data["license"] == "apache-2.0" and "base_model" not in data and "sources" not in data
    assert "random" in text.lower() and 'AnimateAnyonePipeline.from_pretrained("ORG/NAME")' in text
    assert "animate-anyone animate --model ORG/NAME" in text
    ModelDirectory(tiny_model_dir).check()  # the card is no component


def test_the_card_takes_the_most_restrictive_license_and_lists_each_source(tmp_path):
    sources = public_sources("networks", "vae", "image_encoder")
    write_model_card(tmp_path, Card("Converted.", sources))
    data, text = card(tmp_path)
    assert data["license"] == "creativeml-openrail-m"
    assert data["base_model"] == [s.repo for s in sources]
    for source in sources:
        assert (
            f"| {source.part} | [{source.repo}](https://huggingface.co/{source.repo}) | `{source.revision}` | " in text
        )
        assert source.license in text
    assert card_sources(tmp_path) == tuple(replace(s, files=()) for s in sources)  # what a derived card inherits
    write_model_card(tmp_path, Card("Only the VAE.", public_sources("vae")))
    assert card(tmp_path)[0]["license"] == "mit"


def test_the_training_export_inherits_the_starting_directorys_sources(tiny_model_dir, tmp_path):
    from diffusers import DDIMScheduler

    from animate_anyone.training.checkpoint import export_model

    start = tmp_path / "start"
    shutil.copytree(tiny_model_dir, start)
    write_model_card(start, Card("A base.", public_sources("vae", "image_encoder")))
    model = ModelDirectory(start).load_networks()
    out = export_model(model, start, DDIMScheduler(), tmp_path / "final")
    data, text = card(out)
    assert data["license"] == "creativeml-openrail-m" and "animate-anyone train" in text
    assert [row["repo"] for row in data["sources"]] == [s.repo for s in public_sources("vae", "image_encoder")]


# -- convert public: the one-command download ------------------------------------------------------------------


def stand_in_public_release(hub, root: Path) -> dict[str, set[str]]:
    """The public layout under the real file names and key names, with tiny tensors (the Moore golden set's networks,
    split into the stage-1 UNet and the motion module as the release ships them; a VAE and an image encoder that fit
    them), and files the conversion does not need beside them. Returns each repository's files that are needed."""
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    sizes, d = golden_sizes(), golden_dir()
    torch.manual_seed(0)
    networks = root / "patrolli" / "AnimateAnyone"
    networks.mkdir(parents=True)
    unet = load_file(d / "weights_denoising_unet.safetensors")
    torch.save({k: v for k, v in unet.items() if "motion_modules." not in k}, networks / "denoising_unet.pth")
    torch.save({k: v for k, v in unet.items() if "motion_modules." in k}, networks / "motion_module.pth")
    torch.save(load_file(d / "weights_reference_unet.safetensors"), networks / "reference_unet.pth")
    torch.save(load_file(d / "weights_pose_guider.safetensors"), networks / "pose_guider.pth")
    (networks / "audio2mesh.pt").write_bytes(b"not needed")
    blocks = sizes.pose_scale.bit_length()  # a VAE of n blocks downsamples 2 ** (n - 1) times, as the pose guider
    vae = root / "stabilityai" / "sd-vae-ft-mse"
    AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(32,) * blocks,
        layers_per_block=1,
        latent_channels=sizes.latent_channels,
        sample_size=32,
    ).save_pretrained(vae)
    (vae / "diffusion_pytorch_model.bin").write_bytes(b"the same weights again: not needed")
    encoder = root / "lambdalabs" / "sd-image-variations-diffusers"
    clip = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        patch_size=32,
        projection_dim=sizes.cross_attention_dim,
    )
    CLIPVisionModelWithProjection(clip).save_pretrained(encoder / "image_encoder")
    CLIPImageProcessor().save_pretrained(encoder / "feature_extractor")
    (encoder / "unet").mkdir()
    (encoder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not needed")
    needed = {}
    for source in PUBLIC_SOURCES:
        folder = root / source.repo
        pinned = source.revision if len(source.revision) == 40 else None  # the stand-in answers the pinned commit
        hub.add(source.repo, folder, commit=pinned)
        needed[source.repo] = {f for f in model_files(folder) if any(fnmatch.fnmatch(f, p) for p in source.files)}
    return needed


def public_args(tmp_path, out) -> list[str]:
    spec = golden_spec()
    (tmp_path / "unet.json").write_text(json.dumps(spec["denoising_unet_config_3d"]))
    (tmp_path / "extra.json").write_text(json.dumps(spec["unet_additional_kwargs"]))
    args = ["convert", "public", "--out", str(out), "--unet-config", str(tmp_path / "unet.json")]
    return args + ["--unet-additional-kwargs", str(tmp_path / "extra.json")]


def test_convert_public_fetches_only_the_files_needed_and_converts_them(hub, tmp_path, monkeypatch, capsys):
    needed = stand_in_public_release(hub, tmp_path / "release")
    out = tmp_path / "models" / "animate-anyone"
    assert main(public_args(tmp_path, out)) == 0, capsys.readouterr().err
    for repo, files in needed.items():
        assert sorted(hub.gets(repo)) == sorted(files), repo  # each needed file once, nothing else
    assert len(needed["patrolli/AnimateAnyone"]) == 4 and len(needed["stabilityai/sd-vae-ft-mse"]) == 2
    ModelDirectory(out).check()
    assert AnimateAnyonePipeline.from_pretrained(out).model.pose_guider is not None
    data, text = card(out)
    assert data["license"] == "creativeml-openrail-m" and data["base_model"] == [s.repo for s in PUBLIC_SOURCES]
    commits = {row["repo"]: row["revision"] for row in data["sources"]}
    assert commits == {repo: commit for repo, (commit, _) in hub.repos.items()}  # the commits fetched, not "main"
    assert commits["stabilityai/sd-vae-ft-mse"] == PUBLIC_SOURCES[1].revision and "convert public" in text
    vae = [path for _, path in hub.requests if "sd-vae-ft-mse" in path]  # asked for at its pinned commit only
    assert vae and all(PUBLIC_SOURCES[1].revision in path for path in vae), vae
    # a second run downloads nothing again (the Hugging Face cache), and so does one offline with the Hub gone
    fetched = len([r for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]])
    assert main([*public_args(tmp_path, out), "--overwrite"]) == 0
    assert len([r for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]]) == fetched
    go_offline(hub, monkeypatch, tmp_path)
    assert main([*public_args(tmp_path, tmp_path / "offline")]) == 0
    assert ModelDirectory(tmp_path / "offline").fingerprint() == ModelDirectory(out).fingerprint()


def test_convert_moore_and_assemble_cards_name_the_public_sources_of_their_parts(tmp_path):
    from conftest import golden_convert_args

    networks = tmp_path / "networks"
    assert main(golden_convert_args(tmp_path, networks)) == 0  # the three networks only
    data, text = card(networks)
    assert [row["repo"] for row in data["sources"]] == ["patrolli/AnimateAnyone"] and "three networks only" in text
    assert data["license"] == "apache-2.0"
    from animate_anyone.convert.release import _assembled_sources

    (tmp_path / "sd-vae-ft-mse").mkdir()
    (tmp_path / "sd-vae-ft-mse" / "config.json").write_text("{}")
    inherited = _assembled_sources(str(networks), str(tmp_path / "sd-vae-ft-mse"))  # a VAE folder: sd-vae-ft-mse
    assert [s.repo for s in inherited] == [s.repo for s in PUBLIC_SOURCES]
    sd15 = _assembled_sources(str(networks), str(tmp_path / "v1-5-pruned.safetensors"))  # a checkpoint: SD-1.5's
    assert [s.part for s in sd15] == ["networks", "sd15", "image_encoder"]


def test_convert_public_checks_its_output_before_downloading(hub, tmp_path, capsys):
    stand_in_public_release(hub, tmp_path / "release")
    out = tmp_path / "exists"
    out.mkdir()
    assert main(public_args(tmp_path, out)) == 2
    assert "--out" in capsys.readouterr().err and hub.requests == []
    assert main([*public_args(tmp_path, tmp_path / "new"), "--unet-config", str(tmp_path / "nope.json")]) == 2
    assert "--unet-config" in capsys.readouterr().err and hub.requests == []


def test_convert_public_names_a_missing_public_file(hub, tmp_path, capsys):
    stand_in_public_release(hub, tmp_path / "release")
    (tmp_path / "release" / "patrolli" / "AnimateAnyone" / "pose_guider.pth").unlink()
    assert main(public_args(tmp_path, tmp_path / "out")) == 2
    err = error_line(capsys)
    assert "networks source 'patrolli/AnimateAnyone' (revision main) has no pose_guider.pth" in err
    assert not (tmp_path / "out").exists()
    networks = tmp_path / "release" / "patrolli" / "AnimateAnyone"
    (networks / "pose_guider.pth").write_bytes(b"back")
    hub.add("patrolli/AnimateAnyone", networks, commit="1" * 40)  # a new file, a new commit
    del hub.repos["lambdalabs/sd-image-variations-diffusers"]  # a source gone from the Hub: named, and the way round
    assert main(public_args(tmp_path, tmp_path / "out")) == 2
    err = error_line(capsys)
    assert "image_encoder source 'lambdalabs/sd-image-variations-diffusers' is no repository on the Hugging" in err
    assert err.endswith("or download the files by hand (README) and run `animate-anyone convert moore`")
