"""Following one person through a video with several people (``pose.track``): the chosen person is kept, a jump to
someone else is reported, and ``data prepare`` quarantines such clips.

The videos are real (two skeletons drawn per frame and encoded); the extractor is scripted to return the people
drawn in each frame, in a shuffled order, as a multi-person backend (DWPose) does with its own order.
"""

from __future__ import annotations

import numpy as np
import pytest

from animate_anyone.media import iter_frames, probe_frames, write_video
from animate_anyone.pose import extract
from animate_anyone.pose.draw import draw_pose
from animate_anyone.pose.keypoints import PoseSequence
from animate_anyone.pose.track import PersonTracker, parse_person

FRAMES, WIDTH, HEIGHT = 20, 128, 96


def skeleton(center_x: float, scale: float, seed: int) -> np.ndarray:
    """An (18, 3) body: a fixed random shape around ``center_x``."""
    shape = np.random.default_rng(seed).uniform(-1, 1, (18, 2)) * np.array([10, 30]) * scale
    body = np.zeros((18, 3), np.float32)
    body[:, 0], body[:, 1], body[:, 2] = center_x + shape[:, 0], HEIGHT / 2 + shape[:, 1], 1.0
    return body


# person A walks right from the left; person B, smaller, stands on the right
A = np.stack([skeleton(25 + 1.5 * t, 1.0, seed=1) for t in range(FRAMES)])
B = np.stack([skeleton(100, 0.7, seed=2) for _ in range(FRAMES)])


class Scripted:
    """An extractor that returns, for frame t, the bodies of ``people(t)`` in a shuffled order."""

    def __init__(self, people):
        self.people, self.t, self.rng = people, 0, np.random.default_rng(0)

    def __call__(self, rgb):
        bodies = np.stack(self.people(self.t)) if self.people(self.t) else np.zeros((0, 18, 3), np.float32)
        self.t += 1
        bodies = bodies[self.rng.permutation(len(bodies))]
        p = len(bodies)
        return bodies, np.zeros((p, 2, 21, 3), np.float32), np.zeros((p, 68, 3), np.float32)

    def close(self):
        pass


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    """A video of both people, drawn and encoded."""
    both = PoseSequence.empty(FRAMES, 2, WIDTH, HEIGHT, fps=10.0)
    both.body[:, 0], both.body[:, 1] = A, B
    path = tmp_path_factory.mktemp("videos") / "two.mp4"
    write_video(path, [draw_pose(both, t, (WIDTH, HEIGHT)) for t in range(FRAMES)], 10.0)
    return path


def run(video, people, person):
    info = probe_frames(video)
    return extract.extract_frames(
        iter_frames(video), (info.width, info.height), info.fps, extractor=Scripted(people), person=person
    )


@pytest.mark.parametrize(("person", "expected"), [("0", A), ("largest", A), ("1", B), ("95,20,110,80", B)])
def test_the_chosen_person_is_kept_throughout(two_people, person, expected):
    pose, report = run(two_people, lambda t: [A[t], B[t]], person)
    assert np.allclose(pose.body[:, 0], expected)  # the same person in every frame, whatever the backend's order
    assert report.switches == [] and report.most_people == 2
    assert "2 people" in report.summary() and "WARNING" not in report.summary()


def test_a_jump_to_another_person_is_reported(two_people):
    """A one-person backend that loses A at frame 12 and finds B instead (as MediaPipe can)."""
    pose, report = run(two_people, lambda t: [A[t]] if t < 12 else [B[t]], "largest")
    assert report.switches == [12]
    assert "WARNING: the followed person changed at frame(s) 12" in report.summary()
    assert np.allclose(pose.body[:12, 0], A[:12]) and np.allclose(pose.body[12:, 0], B[12:])


def test_person_values():
    assert parse_person(None) == "largest" and parse_person("center") == "center" and parse_person("2") == 2
    assert parse_person("1,2,30,40") == (1.0, 2.0, 30.0, 40.0)
    for bad in ("tallest", "1,2,3", "5,5,1,1"):
        with pytest.raises(ValueError, match=f"^person {bad}: "):
            parse_person(bad)
    with pytest.raises(ValueError, match="^person 3: the first frame with people shows 2"):
        PersonTracker(3, (WIDTH, HEIGHT)).select(np.stack([A[0], B[0]]))


def test_data_prepare_quarantines_switches_and_crowds(two_people, tmp_path, monkeypatch):
    from animate_anyone.data.prepare import prepare_dataset

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("crowd", "switch", "solo"):
        (videos / f"{name}.mp4").write_bytes(two_people.read_bytes())
    scripts = {
        "crowd": lambda t: [A[t], B[t]],
        "switch": lambda t: [A[t]] if t < 12 else [B[t]],
        "solo": lambda t: [A[t]],
    }
    opened = []

    def open_backend(backend, **kwargs):  # the video being extracted is the next in sorted order
        opened.append(sorted(scripts)[len(opened)])
        return Scripted(scripts[opened[-1]])

    monkeypatch.setattr(extract, "open_backend", open_backend)
    common = dict(min_frames=8, min_size=32, progress=False)
    report = prepare_dataset(videos, tmp_path / "data", **common)
    reasons = {q["video"].split("/")[-1]: q["reason"] for q in report.quarantined}
    assert reasons == {"crowd.mp4": "several_people", "switch.mp4": "person_switch"}
    assert [c.id for c in report.clips] == ["solo"]
    # allowed on a rerun: the keypoints are reused, and what was seen is remembered beside them
    report = prepare_dataset(videos, tmp_path / "data", allow_switches=True, allow_several=True, **common)
    assert sorted(c.id for c in report.clips) == ["crowd", "solo", "switch"] and len(opened) == 3


def test_everyone_one_skeleton_each(two_people):
    """``--person all``: every detection is kept (one slot each) and rendered."""
    pose, report = run(two_people, lambda t: [A[t], B[t]] if t != 5 else [A[t]], "all")
    assert pose.num_people == 2 and report.most_people == 2
    for t in range(FRAMES):
        kept = sorted(pose.body[t, i, 0, 0] for i in range(2) if pose.body[t, i, :, 2].any())
        expected = sorted([A[t, 0, 0], B[t, 0, 0]] if t != 5 else [A[t, 0, 0]])
        assert np.allclose(kept, expected)
    both = PoseSequence.empty(1, 2, WIDTH, HEIGHT)
    both.body[0, 0], both.body[0, 1] = A[0], B[0]
    drawn = draw_pose(pose, 0, (WIDTH, HEIGHT))
    assert np.array_equal(drawn, draw_pose(both, 0, (WIDTH, HEIGHT)))  # A and B apart: the slot order is unseen
    assert drawn[:, WIDTH // 2 :].any() and drawn[:, : WIDTH // 3].any()  # a skeleton on each side
