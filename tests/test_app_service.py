"""The app's service layer (no Gradio needed): jobs through ``jobs.animate``, the pose preview, cancellation and
errors that name the problem. The page itself is tested in a real browser (tests/integration)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from animate_anyone.app.service import AnimateService, JobCancelled
from animate_anyone.media import probe_frames, write_video
from animate_anyone.pose.keypoints import PoseSequence, load_pose


@pytest.fixture(scope="module")
def service(tiny_model_dir, tmp_path_factory):
    return AnimateService(tiny_model_dir, workdir=tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(folder / "ref.png")
    write_video(folder / "pose", list(rng.integers(0, 255, (4, 64, 48, 3), dtype=np.uint8)), 8.0)
    body = np.zeros((4, 1, 18, 3), np.float32)
    body[..., 0], body[..., 1], body[..., 2] = 24 + np.arange(18), 10 + 2 * np.arange(18), 1.0
    pose = PoseSequence(body, np.zeros((4, 1, 2, 21, 3)), np.zeros((4, 1, 68, 3)), 48, 64, fps=8.0)
    pose.save(folder / "motion.npz")
    nobody = PoseSequence.empty(4, 1, 48, 64, fps=8.0)
    nobody.save(folder / "nobody.npz")
    return folder


def test_animate_a_pose_video_and_a_keypoint_file(service, inputs):
    result = service.animate(inputs / "ref.png", inputs / "pose", "pose video", steps=2, size="48x64")
    assert (result.frames, result.steps) == (4, 2) and result.keypoints is None
    assert probe_frames(result.video).num_frames == 4
    assert (probe_frames(result.side_by_side).width, probe_frames(result.side_by_side).height) == (3 * 48, 64)
    # Keypoints: no reference body is needed when alignment is off; the driving keypoints come back.
    service_config = dict(steps=2, size="48x64", frames=3)
    result = service.animate(
        inputs / "ref.png",
        inputs / "motion.npz",
        "keypoint file",
        side_by_side=False,
        **service_config,
        **{"pose.align": False},
    )
    assert result.frames == 3 and result.side_by_side is None
    assert load_pose(result.keypoints).num_frames == 3
    assert result.video.parent != service.workdir and result.video.parent.parent == service.workdir


def test_preview_draws_the_skeleton_over_the_reference(service, inputs):
    plain = np.asarray(Image.open(inputs / "ref.png").convert("RGB"))
    shown = service.preview(inputs / "ref.png", inputs / "pose", "pose video")
    assert shown.shape == plain.shape and not np.array_equal(shown, plain)


@pytest.mark.parametrize(
    "motion, kind, message",
    [
        ("pose", "keypoint file", "needs a keypoint file"),
        ("motion.npz", "pose video", "needs a video or image"),
        ("nobody.npz", "keypoint file", "no person was found"),
        ("pose", "dance", "unknown motion kind"),
        (None, "pose video", "upload the motion first"),
    ],
)
def test_bad_inputs_are_named(service, inputs, motion, kind, message):
    with pytest.raises(ValueError, match=message):
        service.animate(inputs / "ref.png", inputs / motion if motion else None, kind, steps=1, **{"pose.align": False})


def test_bad_settings_are_named(service, inputs):
    with pytest.raises(ValueError, match="context_frames 40: exceeds"):
        service.animate(inputs / "ref.png", inputs / "pose", "pose video", context_frames=40)
    with pytest.raises(ValueError, match="preset turbo: must be one of quality, fast, student"):
        service.animate(inputs / "ref.png", inputs / "pose", "pose video", preset="turbo")


def test_the_page_shows_a_bad_setting_under_its_own_label(service, inputs):
    """The service names the setting (context_frames); the page says it as its field is labelled (one table)."""
    from animate_anyone.app.ui import LABELS, _message

    with pytest.raises(ValueError) as refused:
        service.animate(inputs / "ref.png", inputs / "pose", "pose video", context_frames=40)
    assert str(refused.value).startswith("context_frames 40: exceeds")
    assert _message(refused.value).startswith("Window length 40: exceeds the temporal layers'")
    assert LABELS["context_frames"] == "Window length"
    assert _message(ValueError("plain")) == "plain"  # not a setting: its own words


def test_the_decoder_reaches_the_job(service, inputs, tiny_model_dir, tmp_path_factory):
    """The page's Decoder: on a model without a light decoder, "light" stops the job before it loads, in the one line
    naming the fix (the page shows it as it is); on a model given TAESD by `convert light-decoder` the video is the
    light decoder's, not the VAE's."""
    from animate_anyone.app.ui import LABELS, _message
    from animate_anyone.media import iter_frames
    from taesd_model import model_with_taesd

    with pytest.raises(ValueError) as refused:
        service.animate(inputs / "ref.png", inputs / "pose", "pose video", steps=1, decoder="light")
    assert "decoder=light: this model has no light_decoder; convert the public TAESD" in _message(refused.value)
    assert LABELS["decoder"] == "Decoder"
    root = tmp_path_factory.mktemp("taesd")
    model, _ = model_with_taesd(root, tiny_model_dir)
    light_service = AnimateService(model, workdir=root / "app")
    settings = dict(steps=2, size="48x64", side_by_side=False)
    results = [
        light_service.animate(inputs / "ref.png", inputs / "pose", "pose video", decoder=decoder, **settings)
        for decoder in ("vae", "light")
    ]
    vae, light = (np.stack(list(iter_frames(r.video))).astype(int) for r in results)
    assert vae.shape == light.shape == (4, 64, 48, 3) and np.abs(vae - light).mean() > 5
    light_service.close()


def test_cancel_stops_a_running_job(service, inputs):
    done = threading.Event()

    def keep_cancelling():
        while not done.wait(0.005):
            service.cancel()

    thread = threading.Thread(target=keep_cancelling)
    thread.start()
    try:
        with pytest.raises(JobCancelled):
            service.animate(inputs / "ref.png", inputs / "pose", "pose video", steps=50, size="48x64")
    finally:
        done.set()
        thread.join()
    # The next job runs normally.
    assert service.animate(inputs / "ref.png", inputs / "pose", "pose video", steps=1, size="48x64").frames == 4


def test_jobs_sharing_the_pipeline_from_several_threads_give_the_sequential_frames(service, inputs, tmp_path):
    """The app's jobs run in worker threads on one pipeline; the device lock keeps each job's frames its own."""
    from animate_anyone.jobs.animate import animate
    from animate_anyone.media import iter_frames

    pipe, lock = service.pipeline(), threading.Lock()

    def job(seed: int, folder: str) -> np.ndarray:
        out = tmp_path / folder / str(seed)  # a folder of PNG frames: lossless
        config = service.config(seed=seed, steps=2, size="48x64")
        animate(config, inputs / "ref.png", inputs / "pose", out, progress=False, pipe=pipe, device_lock=lock)
        return np.stack(list(iter_frames(out)))

    sequential = [job(seed, "sequential") for seed in range(4)]
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda s=s: results.update({s: job(s, "threads")})) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1, 2, 3]
    assert all(np.array_equal(results[s], sequential[s]) for s in range(4))
    assert not np.array_equal(sequential[0], sequential[1])  # the seeds differ


def test_a_job_cancelled_after_its_last_step_leaves_nothing(service, inputs, monkeypatch):
    import animate_anyone.jobs.animate as jobs

    real, flag = jobs.animate, threading.Event()

    def animate_then_cancel(*args, **kwargs):
        out = real(*args, **kwargs)
        flag.set()  # the user cancels while the last frames are written
        return out

    monkeypatch.setattr(jobs, "animate", animate_then_cancel)
    before = set(service.workdir.iterdir())
    with pytest.raises(JobCancelled):
        service.animate(inputs / "ref.png", inputs / "pose", "pose video", steps=1, size="48x64", cancel=flag)
    assert set(service.workdir.iterdir()) == before  # its folder is gone
