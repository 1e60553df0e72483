"""Bad inputs to every command, as a new user makes them: each ends with exit status 2, one line on stderr that
names the flag or the file, no traceback, and nothing left behind in the working folder.

The table runs the CLI in this process (fast); the signal cases (Ctrl-C, SIGTERM) and the ``--quiet`` silence of
native libraries run it in a child process, as a user does.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone.cli.main import main
from animate_anyone.media import write_video
from animate_anyone.pose.keypoints import PoseSequence
from stop_signal import stop_at

WORLD = {}  # name -> path, filled by the `world` fixture


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_dir):
    """Inputs, good and bad, in one folder; the tests run with it as the working directory."""
    root = tmp_path_factory.mktemp("world")
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(root / "ref.png")
    pose = PoseSequence.empty(6, 1, 48, 64, fps=10.0)
    pose.body[:, 0, :, :2] = np.random.default_rng(1).uniform(8, 40, (6, 18, 2))
    pose.body[:, 0, :, 2] = 1.0
    pose.save(root / "pose.npz")
    rng = np.random.default_rng(2)
    write_video(root / "pose.mp4", (rng.integers(0, 255, (64, 48, 3), dtype=np.uint8) for _ in range(6)), 10.0)
    (root / "empty.npz").write_bytes(b"")
    np.savez(root / "objects.npz", body=np.array([{"x": 1}], dtype=object))
    (root / "text.png").write_text("not an image")
    (root / "exists.mp4").write_bytes(b"an earlier result")
    (root / "exists.npz").write_bytes(b"an earlier result")
    (root / "exists.json").write_text("{}")
    # A trained-looking copy of the tiny model (init-model marks its weights random: animate would warn) ...
    model = root / "model"
    shutil.copytree(tiny_model_dir, model)
    index = json.loads((model / "model_index.json").read_text())
    index.pop("weights", None)
    (model / "model_index.json").write_text(json.dumps(index))
    # ... and damaged copies of it.
    for name in ("empty_weights", "no_weights", "bad_config"):
        shutil.copytree(model, root / name)
    (root / "empty_weights" / "pose_guider" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    (root / "no_weights" / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    (root / "bad_config" / "vae" / "config.json").write_text('{"in_channels": 3,')
    (root / "run" / "checkpoints" / "step-000002").mkdir(parents=True)  # a used training output_dir
    (root / "no_clips").mkdir()
    (root / "no_clips" / "manifest.jsonl").write_text("")  # a dataset whose manifest lists nothing
    return root


def animate(*extra, model="model", reference="ref.png", pose="pose.npz", out="out.mp4"):
    return ["animate", "--model", model, "--reference", reference, "--pose", pose, "-o", out, "--quiet", *extra]


ANIMATE = animate()


def train(*extra):
    """``train stage1`` on the tiny copy with the toy-sized settings, and ``extra`` arguments."""
    return [
        "train",
        "stage1",
        "--quiet",
        "model.pretrained=model",
        "data.root=.",
        "output_dir=fresh_run",
        "log_with=none",
        *extra,
    ]


# id -> (argv, words the one line must contain)
CASES = {
    # tracebacks before
    "pose render: empty .npz": (["pose", "render", "empty.npz", "-o", "r.mp4"], ["empty.npz", "empty"]),
    "pose align: empty .npz": (["pose", "align", "empty.npz", "--reference", "ref.png", "-o", "a.npz"], ["empty.npz"]),
    "animate: empty .npz": (animate(pose="empty.npz"), ["empty.npz"]),
    "animate: --device tpu": ([*ANIMATE, "--device", "tpu"], ["--device tpu"]),
    "animate: huge --size": (
        [*ANIMATE, "--size", "20000x20000"],
        ["--size 20000x20000 with", "GiB", "use a smaller --size"],
    ),
    "pose render: huge --size": (
        ["pose", "render", "pose.npz", "-o", "r.mp4", "--size", "100000x100000"],
        ["--size 100000x100000", "GiB"],
    ),
    "model: empty weights file": (
        animate(model="empty_weights"),
        ["pose_guider/diffusion_pytorch_model.safetensors", "empty"],
    ),
    "model: weights file missing": (animate(model="no_weights"), ["vae", ".safetensors"]),
    "init-model: --vae missing": (
        ["init-model", "--architecture", "tiny", "--vae", "nope", "--out", "m"],
        ["--vae nope"],
    ),
    # bad values accepted before
    "animate: --guidance nan": ([*ANIMATE, "--guidance", "nan"], ["--guidance nan"]),
    "animate: --fps 0": ([*ANIMATE, "--fps", "0"], ["--fps"]),
    "bench: --frames 0": (["bench", "--frames", "0", "--quiet"], ["--frames 0"]),
    "pose align: --smoothing -1": (
        ["pose", "align", "pose.npz", "--reference", "ref.png", "-o", "a.npz", "--smoothing", "-1"],
        ["--smoothing"],
    ),
    "evaluate: --out .txt": (
        ["evaluate", "--pred", "pose.mp4", "--gt", "pose.mp4", "--out", "r.txt", "--metrics", "psnr", "--quiet"],
        ["--out r.txt", ".json"],
    ),
    "demo: --out .txt": (["demo", "--out", "d.txt", "--quiet"], ["--out d.txt"]),
    # unclear messages before
    "animate: --frames 0": ([*ANIMATE, "--frames", "0"], ["--frames 0", "at least 1"]),
    "animate: --frames -1": ([*ANIMATE, "--frames", "-1"], ["--frames -1", "at least 1"]),
    "animate: --frames 1000": ([*ANIMATE, "--frames", "1000"], ["--frames 1000", "1 to 6"]),
    "animate: --frames 1000 (video)": (
        animate("--frames", "1000", pose="pose.mp4"),
        ["--frames 1000", "1 to 6"],
    ),
    "animate: --steps 0": ([*ANIMATE, "--steps", "0"], ["--steps 0"]),
    "animate: --guidance -1": ([*ANIMATE, "--guidance", "-1"], ["--guidance -1"]),
    "animate: --context-frames 0": ([*ANIMATE, "--context-frames", "0"], ["--context-frames 0"]),
    "animate: --context-overlap too big": ([*ANIMATE, "--context-overlap", "30"], ["--context-overlap 30"]),
    "model: corrupt vae/config.json": (animate(model="bad_config"), ["vae/config.json"]),
    "pose render: object .npz": (["pose", "render", "objects.npz", "-o", "r.mp4"], ["objects.npz", "arrays"]),
    "animate: --model is an image": (animate(model="ref.png"), ["ref.png", "is a file"]),
    "animate: reference is text": (
        animate(reference="text.png"),
        ["text.png"],
    ),
    # silent state changes before
    "animate: existing --out": (animate(out="exists.mp4"), ["exists.mp4", "--overwrite"]),
    "animate: existing --side-by-side": ([*ANIMATE, "--side-by-side", "exists.mp4"], ["--side-by-side", "--overwrite"]),
    "pose render: existing -o": (["pose", "render", "pose.npz", "-o", "exists.mp4"], ["exists.mp4", "--overwrite"]),
    "pose align: existing -o": (
        ["pose", "align", "pose.npz", "--reference", "ref.png", "-o", "exists.npz"],
        ["exists.npz", "--overwrite"],
    ),
    "evaluate: existing --out": (
        ["evaluate", "--pred", "pose.mp4", "--gt", "pose.mp4", "-o", "exists.json", "--metrics", "psnr", "--quiet"],
        ["exists.json", "--overwrite"],
    ),
    "bench: existing --json": (["bench", "--json", "exists.json", "--quiet"], ["exists.json", "--overwrite"]),
    "demo: existing --out": (["demo", "--out", "exists.mp4", "--quiet"], ["exists.mp4", "--overwrite"]),
    "train: used output_dir": (
        ["train", "stage1", "model.pretrained=model", "data.root=.", "output_dir=run", "--quiet"],
        ["output_dir run", "--resume", "--overwrite"],
    ),
    # found only after the work before (issue 40): each answered before anything loads
    "train: output_dir is a file": (train("output_dir=exists.json"), ["output_dir=exists.json", "is a file"]),
    "train: max_steps=0": (train("max_steps=0"), ["max_steps 0", "at least 1"]),
    "train: optim.lr=-1": (train("optim.lr=-1"), ["optim.lr -1.0", "> 0"]),
    "train: an unknown optim.lr_scheduler": (
        train("optim.lr_scheduler=cosin"),
        ["optim.lr_scheduler 'cosin'", "cosine"],
    ),
    "train: a dataset without clips": (train("data.root=no_clips"), ["data.root=no_clips", "no usable clips"]),
    "train: --resume from a folder that is no checkpoint": (
        train("--resume", "no_clips"),
        ["--resume no_clips", "not a usable training checkpoint"],
    ),
    "animate: --frames 1000000 (not the memory)": ([*ANIMATE, "--frames", "1000000"], ["--frames 1000000", "1 to 6"]),
    "animate: --out inside a file": (animate(out="exists.json/clip.mp4"), ["--out exists.json/clip.mp4", "is a file"]),
    "pose render: -o inside a file": (
        ["pose", "render", "pose.npz", "-o", "exists.json/r.mp4"],
        ["exists.json", "file"],
    ),
    "animate: decoder=light without one": ([*ANIMATE, "decoder=light"], ["decoder=light", "no light_decoder"]),
    # the library names its settings (fps, stride, clip_length, steps, out); each command renames them to its flags
    "pose render: --fps 0": (["pose", "render", "pose.npz", "-o", "r.mp4", "--fps", "0"], ["--fps 0.0", "positive"]),
    "data check: --stride 0": (["data", "check", "no_clips", "--stride", "0"], ["--stride 0", "at least 1"]),
    "evaluate: --clip-length 0": (
        ["evaluate", "--pred", "pose.mp4", "--gt", "pose.mp4", "-o", "r.json", "--metrics", "fvd", "--clip-length=0"],
        ["--clip-length 0", "fvd", "at least 9 frames"],
    ),
    "train light-decoder: --max-steps 0": (
        ["train", "light-decoder", "--model", "model", "--data", "no_clips", "--max-steps", "0", "--quiet"],
        ["--max-steps 0", "at least 1"],
    ),
    "init-model: existing --out": (["init-model", "--out", "model"], ["model already exists", "--out", "--overwrite"]),
}
if not torch.cuda.is_available():
    CASES["animate: --device cuda without CUDA"] = ([*ANIMATE, "--device", "cuda"], ["--device cuda"])


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, world, monkeypatch, capfd):
    argv, words = CASES[case]
    monkeypatch.chdir(world)
    before = listing(world)
    code = main(argv)
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"animate-anyone {argv[0]}") and ": error: " in lines[0], lines[0]
    assert "Traceback" not in err and "allow_pickle" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert listing(world) == before  # no output, no partial file, no folder


def test_quiet_silences_native_logs_and_names_the_image_without_a_person(world):
    """In a fresh process (MediaPipe's C++ logging starts there): one line, naming the reference file."""
    PIL.Image.new("RGB", (48, 64), (200, 200, 200)).save(world / "blank.png")
    argv = animate(reference="blank.png")
    done = subprocess.run([sys.executable, "-m", "animate_anyone.cli.main", *argv], cwd=world, capture_output=True)
    (world / "blank.png").unlink()
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr.decode()
    assert "blank.png: no person found" in lines[0]


def _stop_animate(world, tmp_path, signum):
    """Start a long ``animate`` in a child process, signal it once the denoising bar moves, and return
    (exit code, stderr, files in its output folder)."""
    out = tmp_path / "out"
    out.mkdir()
    argv = animate(
        "--steps",
        "1000",
        model=str(world / "model"),
        reference=str(world / "ref.png"),
        pose=str(world / "pose.mp4"),
        out=str(out / "video.mp4"),
    )
    argv.remove("--quiet")  # the bar tells when to stop it
    command = [sys.executable, "-m", "animate_anyone.cli.main", *argv]
    code, err = stop_at(command, rb"denoising[^\n]*\| *[1-9][0-9]*/1000", signum=signum)  # a denoising step done
    return code, err, sorted(p.name for p in out.iterdir())


@pytest.mark.parametrize(
    ("signum", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_signal_during_animate_leaves_no_partial_file(world, tmp_path, signum, code, word):
    returncode, err, left = _stop_animate(world, tmp_path, signum)
    assert returncode == code, err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("animate-anyone animate: ") and word in last, err
    assert "Traceback" not in err
    assert left == []  # neither the video nor a hidden .partial


def test_random_weights_are_announced_once(tiny_model_dir, world, tmp_path, capfd, monkeypatch):
    monkeypatch.setattr("animate_anyone.jobs.animate._WARNED", set())  # once per process: other tests warned already
    argv = ["animate", "--model", str(tiny_model_dir), "--reference", str(world / "ref.png")]
    argv += ["--pose", str(world / "pose.mp4"), "--frames", "2", "--steps", "1", "--quiet"]
    assert main([*argv, "-o", str(tmp_path / "a.gif")]) == 0
    assert main([*argv, "-o", str(tmp_path / "b.gif")]) == 0
    err = capfd.readouterr().err
    assert err.count("random weights") == 1, err
    assert main(["animate", "--model", str(world / "model"), *argv[3:], "-o", str(tmp_path / "c.gif")]) == 0
    assert "random weights" not in capfd.readouterr().err


def test_an_error_after_a_progress_bar_starts_on_its_own_line(capfd):
    from tqdm import tqdm

    from animate_anyone.cli.main import _say

    bar = tqdm(total=10, desc="decoding")
    bar.update(3)
    _say("animate", "error: something")
    err = capfd.readouterr().err
    assert err.splitlines()[-1] == "animate-anyone animate: error: something", repr(err)


def test_every_option_has_help_and_every_out_has_o():
    import argparse

    from animate_anyone.cli.main import build_parser

    missing = []

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif action.dest != "help" and not action.help:
                missing.append(f"{' '.join(path)} {action.option_strings or action.dest}: no help")
            elif "--out" in action.option_strings and "-o" not in action.option_strings:
                missing.append(f"{' '.join(path)} --out: no -o")

    walk(build_parser(), [])
    assert not missing, missing
