"""``synthetic predict`` records its settings (OUT/predict.json), refuses to mix settings, and ``evaluate`` copies
the record into its results."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from animate_anyone.cli.main import main
from animate_anyone.evaluation.record import RECORD_FILE, check_ran, claim
from animate_anyone.model_dir import ModelDirectory

CLIPS = ["heldout_character-00000", "heldout_character-00001"]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "data"
    argv = ["synthetic", "make", "--out", str(out), "--clips", "2", "--size", "64", "--frames", "4", "--quiet"]
    assert main([*argv, "--splits", "heldout_character"]) == 0
    return out / "heldout_character"


def predict(split, out, *args: str) -> int:
    return main(["synthetic", "predict", "--data", str(split), "--out", str(out), "--quiet", *args])


def evaluate(pred, split, out) -> dict:
    argv = ["evaluate", "--pred", str(pred), "--gt", str(split / "videos"), "--out", str(out), "--metrics", "l1,psnr"]
    assert main([*argv, "--quiet"]) == 0
    return json.loads(out.read_text())


def test_predict_records_the_resolved_settings_and_evaluate_copies_them(tmp_path, mini_model_dir, split):
    pred = tmp_path / "pred"
    assert predict(split, pred, "--model", str(mini_model_dir), "--steps", "1", "--seed", "5") == 0
    assert sorted(p.name for p in pred.iterdir()) == [*CLIPS, RECORD_FILE]
    record = json.loads((pred / RECORD_FILE).read_text())
    assert record["model"] == {"path": str(mini_model_dir), "fingerprint": ModelDirectory(mini_model_dir).fingerprint()}
    assert record["baseline"] is None
    assert record["sampling"] == {
        "preset": "quality",
        "overrides": {"steps": 1, "guidance": 2.0},  # the benchmark's guidance 2 over the quality preset's 3.5
        "steps": 1,
        "guidance": 2.0,
        "scheduler": "model",
        "scheduler_class": "DDIMScheduler",  # the model directory's own
        "guidance_interval": [0.0, 1.0],
        "cache_interval": 1,
        "cache_depth": 1,
    }
    assert record["window"] == {"context_frames": 24, "context_overlap": 4, "window_mode": "shifted"}
    assert record["seed"] == 5 and "seed + k" in record["seed_rule"]
    assert (record["dtype"], record["device"]) == ("float32", "cpu")
    assert {k: record["output"][k] for k in ("clips", "width", "height", "frames")} == {
        "clips": 2,
        "width": 64,
        "height": 64,
        "frames": 4,
    }
    assert record["version"] and record["data"] == str(split)
    # evaluate copies the record; the ground truth scored against itself has none.
    assert evaluate(pred, split, tmp_path / "eval.json")["predictions"] == record
    assert evaluate(split / "videos", split, tmp_path / "gt.json")["predictions"] is None


def test_a_preset_is_recorded_as_it_ran(tmp_path, mini_model_dir, split):
    pred = tmp_path / "fast"
    assert predict(split, pred, "--model", str(mini_model_dir), "--preset", "fast", "--steps", "2") == 0
    sampling = json.loads((pred / RECORD_FILE).read_text())["sampling"]
    assert sampling["preset"] == "fast" and sampling["overrides"] == {"steps": 2}
    assert sampling["scheduler"] == "dpm++" and sampling["scheduler_class"] == "DPMSolverMultistepScheduler"
    assert (sampling["guidance"], sampling["guidance_interval"]) == (3.5, [0.0, 0.5])
    assert (sampling["cache_interval"], sampling["cache_depth"]) == (2, 1)


def test_a_rerun_with_other_settings_is_refused_unless_overwrite(tmp_path, mini_model_dir, split, capsys):
    pred = tmp_path / "pred"
    assert predict(split, pred, "--model", str(mini_model_dir), "--steps", "1") == 0
    stamp = (pred / CLIPS[0] / "000000.png").stat().st_mtime_ns
    capsys.readouterr()
    assert predict(split, pred, "--model", str(mini_model_dir), "--steps", "2", "--guidance", "3") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "sampling.guidance: 2.0 -> 3.0" in err and "sampling.steps: 1 -> 2" in err and "--overwrite" in err
    assert (pred / CLIPS[0] / "000000.png").stat().st_mtime_ns == stamp  # nothing was redone
    # The same model elsewhere (same fingerprint) with the same settings resumes; where it lives is not a setting.
    copy = tmp_path / "copy"
    shutil.copytree(mini_model_dir, copy)
    assert predict(split, pred, "--model", str(copy), "--steps", "1") == 0
    # The baseline into the model's folder: refused, naming the model.
    assert predict(split, pred, "--copy-reference") == 2
    assert "model.fingerprint" in capsys.readouterr().err
    # --overwrite redoes every clip and records the new settings.
    assert predict(split, pred, "--model", str(mini_model_dir), "--steps", "2", "--overwrite") == 0
    assert json.loads((pred / RECORD_FILE).read_text())["sampling"]["steps"] == 2
    assert (pred / CLIPS[0] / "000000.png").stat().st_mtime_ns != stamp


def test_copy_reference_records_the_baseline_and_old_folders_are_refused(tmp_path, split, capsys):
    copy = tmp_path / "copy"
    assert predict(split, copy, "--copy-reference") == 0
    record = json.loads((copy / RECORD_FILE).read_text())
    assert record["baseline"].startswith("copy_reference") and record["model"] is None
    assert record["sampling"] is None and record["seed"] is None and record["output"]["frames"] == 4
    # A folder of clips without a record (made before settings were recorded): their settings are unknown.
    (copy / RECORD_FILE).unlink()
    capsys.readouterr()
    assert predict(split, copy, "--copy-reference") == 2
    assert f"no {RECORD_FILE}" in capsys.readouterr().err
    assert predict(split, copy, "--copy-reference", "--overwrite") == 0
    assert json.loads((copy / RECORD_FILE).read_text())["baseline"] == record["baseline"]


def test_check_ran_compares_the_record_with_what_the_pipeline_ran():
    from animate_anyone.pipelines.settings import STEP_FIELDS, WINDOW_FIELDS, SamplingSettings

    ran = SamplingSettings(steps=3, guidance=2.0)
    record = {"sampling": {"preset": "quality", **ran.part(STEP_FIELDS)}, "window": ran.part(WINDOW_FIELDS)}
    record = json.loads(json.dumps(record))  # as read back: lists for tuples
    check_ran(record, {"sampling": ran})
    with pytest.raises(RuntimeError, match="steps"):
        check_ran(record, {"sampling": SamplingSettings(steps=4, guidance=2.0)})
    with pytest.raises(RuntimeError, match="window_mode"):
        check_ran(record, {"sampling": SamplingSettings(steps=3, guidance=2.0, window_mode="moore")})


def test_overwrite_with_other_settings_deletes_the_old_clips_first(tmp_path):
    """So that an interrupted redo leaves no clip of the old settings under the new record."""
    out = tmp_path / "pred"
    (out / "a").mkdir(parents=True)
    (out / "not-in-the-manifest").mkdir()
    with pytest.raises(ValueError, match=f"no {RECORD_FILE}"):
        claim(out, {"seed": 1}, ["a"], overwrite=False)
    claim(out, {"seed": 1}, ["a"], overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["not-in-the-manifest", RECORD_FILE]
    (out / "a").mkdir()
    claim(out, {"seed": 1}, ["a"], overwrite=True)  # the same settings: the clip is redone in place
    assert (out / "a").is_dir()
    claim(out, {"seed": 2}, ["a"], overwrite=True)
    assert not (out / "a").exists() and json.loads((out / RECORD_FILE).read_text()) == {"seed": 2}


def damaged_copy(split, tmp_path):
    """A copy of the module's dataset (its synthetic.json too), to damage; the split folder in it."""
    shutil.copytree(split.parent, tmp_path / "data")
    return tmp_path / "data" / split.name


def no_model(*args, **kwargs):
    raise AssertionError("the model was loaded before the inputs were checked")


def test_a_missing_reference_is_refused_before_any_clip_naming_the_clip_and_the_fix(tmp_path, split, capsys):
    """Every clip is checked before the first is predicted: one line names the clip, its file and the command that
    restores it, and nothing is written (the copy-reference run used to write clip 0, then stop on a raw Errno)."""
    import shlex

    from animate_anyone_lab import benchmark

    data = damaged_copy(split, tmp_path)
    (data / "references" / f"{CLIPS[1]}.png").unlink()
    pred = tmp_path / "pred"
    capsys.readouterr()
    assert predict(data, pred, "--copy-reference") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("animate-anyone synthetic predict: error: 1 of 2 clips of"), err
    assert f"{CLIPS[1]}: reference not found: {data / 'references' / CLIPS[1]}.png" in err and CLIPS[0] not in err
    assert "nothing was written" in err and not pred.exists()
    # The fix it names restores the clip (synthetic make with the dataset's settings rewrites a clip that lacks a file).
    command = err.split("`")[1]
    assert command.startswith("animate-anyone synthetic make --out")
    assert main(shlex.split(command)[1:] + ["--quiet"]) == 0
    assert predict(data, pred, "--copy-reference") == 0
    assert sorted(p.name for p in pred.iterdir()) == [*CLIPS, RECORD_FILE]
    # Several bad clips: the first SHOWN are named, the others counted, still in one line.
    for clip in CLIPS:
        (data / "references" / f"{clip}.png").unlink()
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(benchmark, "SHOWN", 1)
        assert predict(data, tmp_path / "pred2", "--copy-reference") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2 of 2 clips" in err and f"{CLIPS[0]}: reference" in err, err
    assert CLIPS[1] not in err and "; and 1 more)" in err and not (tmp_path / "pred2").exists()


def test_keypoints_shorter_than_the_clip_are_refused_before_the_model_loads(
    tmp_path, mini_model_dir, split, capsys, monkeypatch
):
    """A pose file of 3 frames for a 4-frame clip used to give a 3-frame prediction and exit 0."""
    from animate_anyone.pipelines import loading
    from animate_anyone.pose.keypoints import load_pose

    data = damaged_copy(split, tmp_path)
    pose = data / "poses" / f"{CLIPS[1]}.npz"
    load_pose(pose).select(slice(0, 3)).save(pose)
    monkeypatch.setattr(loading, "load_pipeline", no_model)
    pred = tmp_path / "pred"
    capsys.readouterr()
    assert predict(data, pred, "--model", str(mini_model_dir), "--steps", "1") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{CLIPS[1]}: keypoints {pose} hold 3 frames, the clip has 4" in err and CLIPS[0] not in err
    assert "delete the damaged or short files, then rerun `animate-anyone synthetic make" in err
    assert not pred.exists()
    # The baselines read the truth's keypoints too (evaluate scores PCK against them): refused as well.
    assert predict(data, pred, "--copy-reference") == 2
    assert f"keypoints {pose} hold 3 frames" in capsys.readouterr().err and not pred.exists()


def test_the_driving_keypoints_are_cut_to_the_clip_and_out_must_be_a_folder(tmp_path, split):
    """Keypoints longer than the clip drive exactly the clip's frames; an --out that is a file is refused first."""
    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.pose.keypoints import PoseSequence, load_pose
    from animate_anyone_lab.benchmark import check_inputs

    data = damaged_copy(split, tmp_path)
    pose = data / "poses" / f"{CLIPS[0]}.npz"
    truth = load_pose(pose)
    longer = PoseSequence(*(np.concatenate([a, a]) for a in (truth.body, truth.hands, truth.face)), 64, 64, truth.fps)
    longer.save(pose)
    clips = read_manifest(data)
    skeletons = check_inputs(data, clips, tmp_path / "pred", mode="poses")
    assert [s.num_frames for s in skeletons.values()] == [4, 4]
    assert np.array_equal(skeletons[CLIPS[0]].body, truth.body)
    assert check_inputs(data, clips, tmp_path / "pred", mode="reference") == {}
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "file", tmp_path / "file" / "pred"):
        with pytest.raises(ValueError, match="is a file, not a folder"):
            check_inputs(data, clips, out, mode="reference")
