"""Forward kinematics: (character, motion, t) -> COCO-18 joint positions and the placed, depth-sorted parts.

World coordinates: character units, x right, y down, the ground at y = 0. The pelvis is the root; the torso
rotates about it (``tilt`` + ``lean``), the head about the neck, arms about the shoulders, legs about the hips.
Rigid segments (their keypoint distances never change within a clip): shoulder-elbow, elbow-wrist, hip-knee,
knee-ankle and neck to the hips' midpoint (the pelvis). The body's *breadth* is not rigid: a ``turn`` of yaw
``theta`` scales the shoulder span, hip span and torso width by ``cos(theta)`` (a horizontal squash along the
torso's across-axis that suggests the turn), and moves the face points around the head (below), so the
neck-shoulder, hip-hip and head-feature distances change with the turn on purpose.

Ground contact: the pelvis height is chosen every frame so that the lower ankle's sole touches y = 0 (a smooth
maximum of the two ankles, temperature 0.01 units, so it stays C-infinity), then ``root_y`` is added (bounces,
hops). Feet therefore never sink; walking bobs by itself.

Face points: the head is treated as a sphere seen from the front: a feature at azimuth ``phi`` (0 = facing the
camera) sits at ``x = rx * sin(phi)`` across the head; the body's yaw ``theta`` adds to every azimuth. Nose
``phi = theta``; eyes ``theta -/+ 0.4`` (right/left); ears ``theta -/+ pi/2``. Keypoint choice: all 18 points
always have confidence 1, also when they are hidden behind the head or torso (an ear turned away, the far
shoulder): the ground truth is the skeleton, occlusion is only in the picture.

Draw order (``Placed.key``, drawn ascending): far arm (when its side is turned away: depth ``< -0.35``, depth
``sin(theta)`` for the right side and ``-sin(theta)`` for the left), legs (nearer leg over farther), neck, torso,
bag, near/front arms, hair, far ears, head with eyes and mouth, near ears, hat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .character import Character
from .motion import Motion

PART_NAMES = (
    "torso",
    "neck",
    "head",
    "hair",
    "hat",
    "bag",
    "strap",
    "ear_r",
    "ear_l",
    "upper_arm_r",
    "lower_arm_r",
    "hand_r",
    "upper_arm_l",
    "lower_arm_l",
    "hand_l",
    "thigh_r",
    "shin_r",
    "foot_r",
    "thigh_l",
    "shin_l",
    "foot_l",
)
FAR = -0.35  # a side whose depth is below this has its arm (and bag) behind the torso
SOFT = 0.01  # temperature of the ground contact's smooth maximum, character units


@dataclass(frozen=True)
class Placed:
    """A part in world coordinates: it covers u in [0, length] along ``axis`` from ``start``, half width
    ``width0`` at u = 0 to ``width1`` at u = length; ``squash`` shrinks its texture across (a turned torso)."""

    name: str  # in PART_NAMES
    style: str  # key of Character.styles
    start: np.ndarray
    axis: np.ndarray
    length: float
    width0: float
    width1: float
    key: tuple  # draw order, ascending
    squash: float = 1.0


@dataclass(frozen=True)
class Rig:
    keypoints: np.ndarray  # (18, 2) world coordinates, COCO-18 order
    parts: list[Placed]  # sorted by draw order
    root: np.ndarray  # pelvis, world
    lift: float  # height of the hop / bounce above ground contact (>= 0 in the air)


def rot(v, angle: float) -> np.ndarray:
    """``v`` rotated by ``angle`` radians, clockwise on screen (image coordinates, y down)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def pose(character: Character, motion: Motion, t: float) -> Rig:
    """The rig of ``character`` doing ``motion`` at ``t`` seconds."""
    b, v = character.body, motion.values(t)
    theta = max(-1.3, min(1.3, v["turn"]))
    breadth = math.cos(theta)
    depth = {"r": math.sin(theta), "l": -math.sin(theta)}
    side_sign = {"r": -1.0, "l": 1.0}  # the character's right is image left when facing the camera
    pelvis_turn, torso_turn = v["tilt"], v["tilt"] + v["lean"]
    up, across, down = rot((0, -1), torso_turn), rot((1, 0), torso_turn), rot((0, 1), torso_turn)
    hip_across = rot((1, 0), pelvis_turn)
    j: dict[str, np.ndarray] = {"pelvis": np.zeros(2), "neck": up * b.torso}
    for s, sign in side_sign.items():
        j[f"{s}_hip"] = hip_across * sign * b.hips * breadth
        j[f"{s}_shoulder"] = j["neck"] + across * sign * b.shoulders * breadth
        a1 = torso_turn + v[f"{s}_shoulder"]
        j[f"{s}_elbow"] = j[f"{s}_shoulder"] + rot((0, 1), a1) * b.upper_arm
        j[f"{s}_wrist"] = j[f"{s}_elbow"] + rot((0, 1), a1 + v[f"{s}_elbow"]) * b.lower_arm
        a2 = pelvis_turn + v[f"{s}_hip"]
        j[f"{s}_knee"] = j[f"{s}_hip"] + rot((0, 1), a2) * b.thigh
        j[f"{s}_ankle"] = j[f"{s}_knee"] + rot((0, 1), a2 + v[f"{s}_knee"]) * b.shin
    foot_w = b.leg_width * 0.75 + 0.004
    ys = np.array([j["r_ankle"][1], j["l_ankle"][1]])
    lowest = ys.max() + SOFT * math.log(np.exp((ys - ys.max()) / SOFT).sum())
    offset = np.array([v["root_x"], -lowest - foot_w + v["root_y"]])
    j = {k: p + offset for k, p in j.items()}

    head_turn = torso_turn + v["head"]
    hup, hacross = rot((0, -1), head_turn), rot((1, 0), head_turn)
    ry, rx = b.head, b.head * b.head_aspect
    centre = j["neck"] + hup * (b.neck + ry)

    def face(phi: float, height: float, inset: float = 1.0) -> np.ndarray:  # a point on the head, see module doc
        return centre + hacross * (rx * inset * math.sin(phi)) + hup * (ry * height)

    j["nose"] = face(theta, -0.15, 0.95)
    for s, sign in side_sign.items():
        j[f"{s}_eye"] = face(theta + sign * 0.4, 0.15, 0.85)
        j[f"{s}_ear"] = face(theta + sign * math.pi / 2, 0.05)
    keypoints = np.stack(
        [
            j[n]
            for n in (
                "nose",
                "neck",
                "r_shoulder",
                "r_elbow",
                "r_wrist",
                "l_shoulder",
                "l_elbow",
                "l_wrist",
                "r_hip",
                "r_knee",
                "r_ankle",
                "l_hip",
                "l_knee",
                "l_ankle",
                "r_eye",
                "l_eye",
                "r_ear",
                "l_ear",
            )
        ]
    )

    parts: list[Placed] = []

    def seg(name, style, a, c, w0, w1, key, ext=1.0):  # a part from joint a to joint c, ends covering the joints
        axis = (c - a) / max(float(np.linalg.norm(c - a)), 1e-9)
        length = float(np.linalg.norm(c - a)) + ext * (w0 + w1)
        parts.append(Placed(name, style, a - axis * ext * w0, axis, length, w0, w1, key))

    def blob(name, style, middle, axis, half_length, half_width, key):  # a part centred on a point
        start = middle - axis * half_length
        parts.append(Placed(name, style, start, axis, 2 * half_length, half_width, half_width, key))

    bottom, top = b.waist * 0.5, b.arm_width * 0.6 + 0.01
    parts.append(
        Placed(
            "torso",
            "torso",
            j["pelvis"] - up * bottom,
            up,
            b.torso + bottom + top,
            b.waist * breadth,
            b.chest * breadth,
            (2.0,),
            squash=breadth,
        )
    )
    seg("neck", "neck", j["neck"] + down * 0.01, centre, b.arm_width * 0.9, b.arm_width * 0.9, (1.9,))
    for s, sign in side_sign.items():
        d = depth[s]
        arm = (2.5 if d > FAR else 1.2) + 0.1 * d, int(s == "l")
        leg = 1.5 + 0.1 * d, int(s == "l")
        aw, lw = b.arm_width, b.leg_width
        seg(f"upper_arm_{s}", "upper_arm", j[f"{s}_shoulder"], j[f"{s}_elbow"], aw * 1.1, aw, arm + (0,))
        seg(f"lower_arm_{s}", "lower_arm", j[f"{s}_elbow"], j[f"{s}_wrist"], aw, aw * 0.85, arm + (1,))
        hand_axis = (j[f"{s}_wrist"] - j[f"{s}_elbow"]) / b.lower_arm
        hand = j[f"{s}_wrist"] + hand_axis * b.hand * 0.45
        blob(f"hand_{s}", "hand", hand, hand_axis, b.hand * 1.15, b.hand, arm + (2,))
        seg(f"thigh_{s}", "thigh", j[f"{s}_hip"], j[f"{s}_knee"], lw * 1.15, lw, leg + (0,))
        seg(f"shin_{s}", "shin", j[f"{s}_knee"], j[f"{s}_ankle"], lw, lw * 0.8, leg + (1,))
        toe = rot((math.sin(theta) + sign * 0.35 * breadth, 0.12), pelvis_turn)
        reach = float(np.linalg.norm(toe)) / math.hypot(1.0, 0.12)
        seg(
            f"foot_{s}",
            "foot",
            j[f"{s}_ankle"],
            j[f"{s}_ankle"] + toe / np.linalg.norm(toe) * b.foot * reach,
            foot_w,
            foot_w,
            leg + (2,),
        )
        ear = (3.05 if depth[s] > 0.3 else 2.95, int(s == "l"))
        blob(f"ear_{s}", "ear", j[f"{s}_ear"], hup, ry * 0.25, ry * 0.18 * (0.4 + 0.6 * abs(math.cos(theta))), ear)
    blob("head", "head", centre, hup, ry, rx, (3.0, 0))
    for s in ("r", "l"):
        eye_depth = math.cos(theta + side_sign[s] * 0.4)
        if eye_depth > 0.2:
            blob("head", "eye", j[f"{s}_eye"], hup, ry * 0.13, ry * 0.13 * eye_depth, (3.0, 1))
    if math.cos(theta) > 0.3:
        blob("head", "eye", face(theta, -0.5, 0.9), hacross, rx * 0.28 * math.cos(theta), ry * 0.05, (3.0, 2))
    if character.has("hair"):
        blob("hair", "hair", centre + hup * ry * 0.18, hup, ry, rx * 1.08, (2.9,))
    if character.has("hat"):
        hw, hh = rx * character.extras.get("hat_width", 0.9), character.extras.get("hat_height", 0.07)
        blob("hat", "hat", centre + hup * (ry * 0.7 + hh / 2), hup, hh / 2, hw * 0.75, (3.1, 0))
        blob("hat", "hat", centre + hup * ry * 0.72, hacross, hw * 1.2, 0.012 + hh * 0.1, (3.1, 1))
    if character.has("bag"):
        size, key = character.extras.get("bag_size", 0.06), ((2.2 if depth["l"] > FAR else 1.1),)
        spot = j["pelvis"] + across * (b.waist * breadth + size * 0.3) + up * (size * 0.5)
        seg("strap", "bag", j["r_shoulder"] * 0.7 + j["neck"] * 0.3, spot, 0.008, 0.008, key + (0,))
        blob("bag", "bag", spot, down, size, size * 0.8, key + (1,))
    parts.sort(key=lambda p: p.key)
    return Rig(keypoints, parts, j["pelvis"], max(0.0, -v["root_y"]))
