"""The synthetic world's pose oracle: the keypoint regressor, its command, and PCK through it in evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from animate_anyone.assets import packaged_pose_oracle
from animate_anyone.cli.main import main
from animate_anyone.pose.keypoints import BODY_NAMES
from animate_anyone.pose.regressor import FLIP_ORDER, RegressorExtractor
from animate_anyone_lab.oracle import augment, load_keypoint_data


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    """Two fresh held-out-character clips of 8 frames (dataset seed 7: not the benchmark's data)."""
    out = tmp_path_factory.mktemp("oracle") / "data"
    argv = ["synthetic", "make", "--out", str(out), "--clips", "2", "--size", "64", "--frames", "8"]
    assert main([*argv, "--seed", "7", "--splits", "heldout_character", "--quiet"]) == 0
    return out / "heldout_character"


def test_flip_order_swaps_left_and_right():
    assert sorted(FLIP_ORDER) == list(range(18))
    assert [FLIP_ORDER[i] for i in FLIP_ORDER] == list(range(18))  # an involution
    for i, j in enumerate(FLIP_ORDER):
        assert BODY_NAMES[j] == BODY_NAMES[i].replace("left", "L").replace("right", "left").replace("L", "right")


def test_augment_flips_images_and_keypoints_together():
    images = torch.zeros(1, 3, 8, 8)
    images[0, :, 2, 1] = 1.0  # one lit pixel at (x=1, y=2)
    points = torch.zeros(1, 18, 2)
    points[0, BODY_NAMES.index("left_wrist")] = torch.tensor([1.5, 2.5])  # its centre
    for seed in range(20):  # some of these flip
        out, moved = augment(images, points, torch.Generator().manual_seed(seed))
        if moved[0, BODY_NAMES.index("right_wrist"), 0] > 0:  # flipped: the lit pixel moved to x = 6
            assert moved[0, BODY_NAMES.index("right_wrist")].tolist() == [6.5, 2.5]
            assert moved[0, BODY_NAMES.index("left_wrist")].tolist() == [8.0, 0.0]  # the old right (0, 0), flipped
            assert out[0, 0, 2].argmax() == 6
            return
    pytest.fail("no flip in 20 seeds")


def test_packaged_oracle_reads_the_pose_of_unseen_characters(heldout):
    """On true frames of characters it never saw, the packaged regressor finds the exact keypoints (PCK@0.1 well
    above 0.8); the same frames scored against another clip's keypoints fail, so the measure follows the pose."""
    from animate_anyone_lab.oracle import regressor_pck

    assert (packaged_pose_oracle() / "config.json").is_file()
    extractor = RegressorExtractor()
    frames, points = load_keypoint_data([heldout], 64)
    assert frames.shape == (16, 3, 64, 64) and points.shape == (16, 18, 2)
    assert regressor_pck(extractor, frames, points) > 0.9
    swapped = torch.cat([points[8:], points[:8]])  # clip 1's keypoints for clip 0's frames and back
    assert regressor_pck(extractor, frames, swapped) < 0.6
    # Any frame size: keypoints come back in the frame's pixels.
    big = torch.nn.functional.interpolate(frames[:2].float(), scale_factor=2, mode="nearest").to(torch.uint8)
    body = extractor.batch(big.permute(0, 2, 3, 1).numpy())[0]
    assert body.shape == (2, 1, 18, 3) and np.all(body[..., 2] == 1)
    assert np.abs(body[:, 0, :, :2] / 2 - points[:2].numpy()).mean() < 2.0


def test_oracle_command_and_evaluate_with_the_regressor(tmp_path, heldout, capsys):
    """``synthetic oracle`` (a few steps) writes a folder ``evaluate --pose-backend regressor --pose-model``
    reads; the results name the backend. Ground truth scored with the packaged oracle is near its ceiling."""
    model = tmp_path / "oracle"
    argv = ["synthetic", "oracle", "--data", str(heldout), "--heldout", str(heldout), "--out", str(model)]
    assert main([*argv, "--max-steps", "2", "--batch-size", "4", "--quiet"]) == 0
    assert "PCK@0.1" in capsys.readouterr().out
    assert main([*argv, "--max-steps", "2", "--quiet"]) == 2  # refuses to replace it without --overwrite
    for pose_model, floor in ((model, 0.0), (None, 0.9)):
        out = tmp_path / f"eval-{pose_model is None}.json"
        extra = [] if pose_model is None else ["--pose-model", str(pose_model)]
        evaluate = ["evaluate", "--pred", str(heldout / "videos"), "--gt", str(heldout / "videos")]
        evaluate += ["--pose-dir", str(heldout / "poses"), "--metrics", "psnr,pck@0.1", "--out", str(out)]
        assert main([*evaluate, "--pose-backend", "regressor", *extra, "--quiet"]) == 0
        results = json.loads(out.read_text())
        assert results["pose_backend"].startswith("regressor") and not results["skipped"]
        assert results["aggregate"]["pck@0.1"]["mean"] >= floor
    bad = ["--pose-backend", "regressor", "--pose-model", str(tmp_path / "missing"), "--quiet"]
    assert main([*evaluate[:-1], str(tmp_path / "bad.json"), *bad]) == 2  # an explicit model must load
    assert "keypoint regressor not found" in capsys.readouterr().err and not (tmp_path / "bad.json").exists()


def test_oracle_command_resumes_exactly_and_checks_the_resume_first(tmp_path, heldout, monkeypatch, capsys):
    """``synthetic oracle --resume`` (``training/small_loop.py``): a run stopped by Ctrl-C during step 4 (its
    checkpoint: step 2), then resumed, writes the weights of an uninterrupted run bit for bit, and its checkpoints go.
    Resuming with another --lr is refused in one line naming the checkpoint; resuming a finished run is refused."""
    from safetensors.torch import load_file

    from animate_anyone.training.small_loop import SmallLoop

    argv = ["synthetic", "oracle", "--data", str(heldout), "--max-steps", "4", "--batch-size", "4", "--quiet"]
    argv += ["--checkpoint-every", "2", "--out"]
    assert main([*argv, str(tmp_path / "straight")]) == 0
    run, steps_run, stop = SmallLoop.run, [], [True]

    def stopped_in_step_4(self, step, *args, **kwargs):  # Ctrl-C during step 4 while ``stop``; the steps run
        def step_or_stop(i: int):
            if i == 3 and stop[0]:
                raise KeyboardInterrupt
            steps_run.append(i)
            return step(i)

        return run(self, step_or_stop, *args, **kwargs)

    monkeypatch.setattr(SmallLoop, "run", stopped_in_step_4)
    assert main([*argv, str(tmp_path / "stopped")]) == 130
    assert "continue with --resume" in capsys.readouterr().err
    assert main([*argv, str(tmp_path / "stopped"), "--resume", "--lr", "1e-3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stopped.checkpoints/step-000002.pt is another run's checkpoint" in err, err
    stop[0] = False
    assert main([*argv, str(tmp_path / "stopped"), "--resume"]) == 0
    assert steps_run == [0, 1, 2, 2, 3]  # the resume starts after the checkpoint
    weights = [load_file(tmp_path / name / "diffusion_pytorch_model.safetensors") for name in ("straight", "stopped")]
    straight, resumed = weights
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert not (tmp_path / "stopped.checkpoints").exists()
    assert main([*argv, str(tmp_path / "stopped"), "--resume"]) == 2  # finished: nothing is trained again
    assert "is finished" in capsys.readouterr().err
