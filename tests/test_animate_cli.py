"""``animate-anyone animate`` end to end on CPU with a tiny model: files in, a playable video out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import av
import numpy as np
import PIL.Image
import pytest

from animate_anyone.cli.main import main
from animate_anyone.media import write_video


def pose_video(path, frames, width=48, height=64, fps=10.0):
    rng = np.random.default_rng(frames)
    write_video(path, (rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(frames)), fps)
    return path


@pytest.fixture
def files(tmp_path):
    ref = tmp_path / "ref.png"
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 60, 4), dtype=np.uint8), "RGBA").save(ref)
    return {"ref": ref, "pose": pose_video(tmp_path / "pose.mp4", 5), "dir": tmp_path}


def animate(model, files, out, *extra):
    argv = ["animate", "--model", str(model), "--reference", str(files["ref"]), "--pose", str(files["pose"])]
    return main([*argv, "--out", str(out), "--steps", "2", "--quiet", *extra])


def read_video(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return stream.codec_context.name, float(stream.average_rate), frames


def test_writes_h264_mp4_with_frames_size_and_fps_of_the_pose(tiny_model_dir, files):
    out = files["dir"] / "out.mp4"
    sbs = files["dir"] / "sbs.mp4"
    assert animate(tiny_model_dir, files, out, "--size", "48x64", "--side-by-side", str(sbs)) == 0
    codec, fps, frames = read_video(out)
    assert (codec, fps, len(frames), frames[0].shape) == ("h264", 10.0, 5, (64, 48, 3))
    _, _, panel = read_video(sbs)
    assert len(panel) == 5 and panel[0].shape == (64, 3 * 48, 3)
    assert [p.name for p in files["dir"].iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_default_size_frames_gif_and_png_folder(tiny_model_dir, files):
    gif, folder = files["dir"] / "out.gif", files["dir"] / "frames"
    assert animate(tiny_model_dir, files, gif, "--frames", "3") == 0
    with PIL.Image.open(gif) as im:  # reference 60x80 -> short side 64 (the tiny VAE's sample size)
        assert (im.n_frames, im.size) == (3, (64, 88))
    assert animate(tiny_model_dir, files, folder, "--frames", "2", "--scheduler", "dpm++") == 0
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png"]


def test_bad_inputs_fail_in_one_line_and_write_nothing(tiny_model_dir, files, tmp_path, capsys):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "not_an_image.png").write_text("hello")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    shutil.rmtree(broken / "image_encoder")
    cases = {
        "missing pose": (dict(pose=tmp_path / "nope.mp4"), [], "nope.mp4"),
        "empty pose": (dict(pose=tmp_path / "empty.mp4"), [], "empty.mp4"),
        "corrupt pose": (dict(pose=tmp_path / "garbage.mp4"), [], "garbage.mp4"),
        "bad reference": (dict(ref=tmp_path / "not_an_image.png"), [], "not_an_image.png"),
        "size": ({}, ["--size", "100x64"], "--size 100x64: width 100 is not a positive multiple of 8"),
        "window": ({}, ["--context-frames", "40"], "positional-encoding limit of 32"),
        "frames": ({}, ["--frames", "9"], "--frames 9: the pose sequence"),
        "component": ({"model": broken}, [], "missing the image_encoder component"),
    }
    for name, (override, extra, message) in cases.items():
        out = tmp_path / f"{name.replace(' ', '_')}.mp4"
        model = override.pop("model", tiny_model_dir)
        assert animate(model, {**files, **override}, out, *extra) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("animate-anyone animate: error:") and message in err[0], (name, err)
        assert not out.exists(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_crash_mid_video_leaves_no_file(tiny_model_dir, files, monkeypatch):
    from animate_anyone.pipelines.pipeline_animate_anyone import AnimateAnyonePipeline

    original = AnimateAnyonePipeline.decode_latents

    def failing(self, latents, chunk_size=8, decoder="vae"):
        yield next(original(self, latents, chunk_size, decoder))
        raise RuntimeError("simulated crash while decoding")

    monkeypatch.setattr(AnimateAnyonePipeline, "decode_latents", failing)
    out = files["dir"] / "out.mp4"
    with pytest.raises(RuntimeError, match="simulated crash"):
        animate(tiny_model_dir, files, out)
    assert not out.exists() and not [p for p in files["dir"].iterdir() if p.name.startswith(".")]


PEAK_RSS = """
import resource, sys
from animate_anyone.cli.main import main
rc = main(sys.argv[1:])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(rc)
"""


@pytest.mark.integration  # two processes and 105 frames (15 s): in the integration tier, keeping the fast one short
def test_memory_is_flat_in_the_number_of_frames(tiny_model_dir, files, tmp_path):
    """Peak RSS of a 100-frame run within 1.5x of a 5-frame run (frames are decoded in chunks and streamed)."""
    peaks = {}
    for frames in (5, 100):
        pose = pose_video(tmp_path / f"pose{frames}.mp4", frames, width=128, height=128)
        out = tmp_path / f"out{frames}.mp4"
        argv = ["animate", "--model", str(tiny_model_dir), "--reference", str(files["ref"]), "--pose", str(pose)]
        argv += ["--out", str(out), "--size", "128x128", "--steps", "1", "--quiet"]
        done = subprocess.run([sys.executable, "-c", PEAK_RSS, *argv], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        peaks[frames] = int(done.stdout.split("PEAK_KB")[1]) / 1024
        assert len(read_video(out)[2]) == frames
    print("peak RSS MiB:", json.dumps(peaks))
    assert peaks[100] <= 1.5 * peaks[5], peaks


def test_settings_come_from_config_then_flags_then_overrides(tmp_path, tiny_model_dir, files, monkeypatch):
    """The typed inference config: a YAML file, flags as shortcuts, key=value overrides last; the job receives
    one AnimateConfig (captured here instead of running the model)."""
    import animate_anyone.jobs.animate as job
    from animate_anyone.pipelines import Optimisations

    seen = {}
    monkeypatch.setattr(job, "animate", lambda config, *a, **k: seen.setdefault("config", config) and a[2])
    config = tmp_path / "mine.yaml"
    config.write_text(f"model: {tiny_model_dir}\nsteps: 7\nguidance: 2.0\noptimisations:\n  window_batch: 3\n")
    argv = [
        "animate",
        "--config",
        str(config),
        "--reference",
        str(files["ref"]),
        "--pose",
        str(files["pose"]),
        "--out",
        str(tmp_path / "o.mp4"),
        "--guidance",
        "1.5",
        "--no-align",
        "steps=9",
        "optimisations.fused_qkv=true",
    ]
    assert main(argv) == 0
    c = seen["config"]
    assert (c.model, c.pose.align, c.seed) == (str(tiny_model_dir), False, 0)
    assert (c.sampling.steps, c.sampling.guidance) == (9, 1.5)
    assert c.optimisations == Optimisations(window_batch=3, fused_qkv=True)


def test_unknown_config_key_is_a_clear_error(tiny_model_dir, files, capsys):
    assert animate(tiny_model_dir, files, files["dir"] / "o.mp4", "optimisations.turbo=true") == 2
    assert "optimisations.turbo" in capsys.readouterr().err
