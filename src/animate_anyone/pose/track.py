"""One person through a video: choose who (``--person``) and keep them from frame to frame.

A backend returns everyone it finds in a frame (DWPose: several people; MediaPipe: at most one, and not always
the same one). The tracker picks the chosen person in the first frame with anyone in it, then in every later
frame the detection whose keypoints continue the last tracked ones. A frame where no detection continues them
(the person left, or a one-person backend jumped to someone else) is a **switch**: the best detection is taken
and the frame index reported, so that a clip that changes people is never used silently (``data prepare``
quarantines it).

    tracker = PersonTracker("largest", (width, height))
    index = tracker.select(bodies)        # bodies: (P, 18, 3); None when nobody is there
    tracker.switches, tracker.most_people
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import SettingError

PERSON_HELP = (
    "whom to follow when several people are seen: largest (default), center, N (the N-th from the left, from 0), "
    "or a box x0,y0,x1,y1 in pixels of the first frame; pose extract also takes all (everyone, one skeleton each)"
)
JUMP = 0.5  # a detection continues the tracked person when their keypoints moved less than this x the body's size


def parse_person(value: str | int | None) -> str | int | tuple[float, float, float, float]:
    """``person``: "largest", "center", an index, or a box "x0,y0,x1,y1"; ``SettingError`` naming the value."""
    if value is None:
        return "largest"
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    if value in ("largest", "center", "all"):
        return value
    parts = str(value).split(",")
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
        raise SettingError("person", value, PERSON_HELP)
    return box


def body_box(body: np.ndarray) -> np.ndarray | None:
    """(x0, y0, x1, y1) of the visible keypoints of one (18, 3) body, or None when none is visible."""
    seen = body[body[:, 2] > 0, :2]
    if len(seen) == 0:
        return None
    return np.concatenate([seen.min(axis=0), seen.max(axis=0)])


def _size(box: np.ndarray) -> float:
    return max(float(np.hypot(box[2] - box[0], box[3] - box[1])), 1.0)


def _iou(a: np.ndarray, b: tuple[float, float, float, float]) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def distance(previous: np.ndarray, body: np.ndarray) -> float:
    """How far ``body`` is from ``previous`` (both (18, 3)), in units of the previous body's size: the mean
    movement of the keypoints both show, or of the box centres when they share none."""
    both = (previous[:, 2] > 0) & (body[:, 2] > 0)
    size = _size(body_box(previous))
    if both.any():
        return float(np.linalg.norm(previous[both, :2] - body[both, :2], axis=1).mean()) / size
    a, b = body_box(previous), body_box(body)
    return float(np.hypot(*((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2))) / size


@dataclass
class PersonTracker:
    """See the module doc. ``switches``: frame indices where the followed person changed; ``most_people``: the
    largest number of people seen in one frame."""

    person: str | int | tuple[float, float, float, float]
    size: tuple[int, int]  # (width, height) of the frames
    jump: float = JUMP
    switches: list[int] = field(default_factory=list)
    most_people: int = 0
    _last: np.ndarray | None = None
    _frame: int = 0

    def select(self, bodies: np.ndarray) -> int | None:
        """The index into ``bodies`` ((P, 18, 3), this frame's detections) of the followed person, or None."""
        frame, self._frame = self._frame, self._frame + 1
        boxes = [body_box(b) for b in bodies]
        people = [i for i, box in enumerate(boxes) if box is not None]
        self.most_people = max(self.most_people, len(people))
        if not people:
            return None
        if self._last is None:
            chosen = self._choose(people, boxes)
        else:
            costs = {i: distance(self._last, bodies[i]) for i in people}
            chosen = min(costs, key=costs.get)
            if costs[chosen] > self.jump:
                self.switches.append(frame)
        self._last = bodies[chosen]
        return chosen

    def _choose(self, people: list[int], boxes: list) -> int:
        if self.person == "largest":
            return max(people, key=lambda i: (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]))
        if self.person == "center":
            middle = np.array(self.size, dtype=float) / 2
            return min(people, key=lambda i: float(np.hypot(*((boxes[i][:2] + boxes[i][2:]) / 2 - middle))))
        if isinstance(self.person, int):
            by_x = sorted(people, key=lambda i: (boxes[i][0] + boxes[i][2]) / 2)
            if self.person >= len(by_x):
                raise SettingError(
                    "person", self.person, f"the first frame with people shows {len(by_x)}; use 0 to {len(by_x) - 1}"
                )
            return by_x[self.person]
        return max(people, key=lambda i: _iou(boxes[i], self.person))
