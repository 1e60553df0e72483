"""``Motion``: procedural joint-angle and root curves over time, a small serialisable dataclass.

Every channel is ``bias + sum_k amp_k * sin(2 pi * freq_k * tempo * t + phase_k)`` (``t`` in seconds), so all
curves are smooth (C-infinity). A jump adds a hop term ``h * max(sin, 0)^2`` (C1: smooth take-off and
landing) and a crouch ``c * max(-sin, 0)^2`` that bends the knees between hops. ``tempo`` multiplies every
frequency (and a walk's speed): the splits use it to hold out a tempo band (see ``splits``).

Channels (``CHANNELS``): ``root_x``, ``root_y`` (character units, +y down; ``root_y`` <= 0 lifts the body off
the ground, on top of the ground contact that kinematics computes), ``tilt`` (pelvis rotation), ``lean`` (torso
rotation about the pelvis), ``head`` (head rotation about the neck), ``turn`` (the body's yaw, radians, 0 =
facing the camera, > 0 = turned towards image right), and per side (``r_`` / ``l_``, the character's right /
left) ``shoulder``, ``elbow``, ``hip``, ``knee``: rotations of a segment relative to its parent.

Angle convention: screen rotations in image coordinates (x right, y down), positive = clockwise on screen;
a limb at 0 hangs straight down from its parent's frame. So raising the right arm (image left when facing the
camera) sideways is a positive ``r_shoulder`` and the left one negative; a forward swing for a character
facing image right (``turn`` > 0) is negative.

Kinds (``KINDS``): ``dance`` (sums of sinusoids on harmonics of a random beat), ``walk`` (periodic leg and arm
swing in a three-quarter view, forward root motion), ``jump`` (hops with crouch and arm swing), ``turn`` (the
body yaws from one side to the other, torso and head leaning with it).

A ``route`` (long clips, ``random_route``) moves the whole body across the stage on top of a motion: keyframes
``(t, x, yaw)`` in seconds (not scaled by ``tempo``); between keyframes ``k`` and ``k + 1`` the root travels from
``x_k`` to ``x_{k+1}`` along a smoothstep (C1: still at every keyframe) and the body yaws by ``yaw_k * sin(pi u)^2``
(``u`` the segment's progress: facing the camera at the keyframes, turned towards the travel at mid-way). A segment
with ``x_{k+1} = x_k`` and ``yaw_k = 0`` is a pause. Past the last keyframe the root stays where it ended.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

KINDS = ("dance", "walk", "jump", "turn")
SIDES = ("r", "l")
LIMB_CHANNELS = ("shoulder", "elbow", "hip", "knee")
CHANNELS = ("root_x", "root_y", "tilt", "lean", "head", "turn") + tuple(
    f"{s}_{c}" for s in SIDES for c in LIMB_CHANNELS
)
OUTWARD = {"r": 1.0, "l": -1.0}  # sign of a rotation that moves a side's limb away from the body (facing camera)


@dataclass(frozen=True)
class Channel:
    bias: float = 0.0
    amp: tuple[float, ...] = ()
    freq: tuple[float, ...] = ()  # Hz at tempo 1
    phase: tuple[float, ...] = ()


@dataclass(frozen=True)
class Hop:
    height: float  # character units
    freq: float  # hops per second at tempo 1
    phase: float
    crouch: float  # knee bend (radians) at the bottom of a crouch
    arms: float  # extra outward arm rotation (radians) at the top of a hop


@dataclass(frozen=True)
class Motion:
    id: str
    kind: str
    tempo: float
    channels: dict[str, Channel]
    velocity: float = 0.0  # root_x speed, character units per second at tempo 1
    hop: Hop | None = None
    route: tuple[tuple[float, float, float], ...] = ()  # (t seconds, root x, peak yaw of the next segment)

    def values(self, t: float) -> dict[str, float]:
        """Every channel's value at time ``t`` seconds."""
        out = {}
        for name in CHANNELS:
            c = self.channels.get(name)
            v = 0.0 if c is None else c.bias
            if c is not None:
                for a, f, p in zip(c.amp, c.freq, c.phase):
                    v += a * math.sin(2 * math.pi * f * self.tempo * t + p)
            out[name] = v
        out["root_x"] += self.velocity * self.tempo * t
        if self.hop is not None:
            s = math.sin(2 * math.pi * self.hop.freq * self.tempo * t + self.hop.phase)
            air, low = max(s, 0.0) ** 2, max(-s, 0.0) ** 2
            out["root_y"] -= self.hop.height * air
            for side, sign in OUTWARD.items():
                out[f"{side}_hip"] += sign * 0.5 * self.hop.crouch * low
                out[f"{side}_knee"] -= sign * self.hop.crouch * low
                out[f"{side}_shoulder"] += sign * self.hop.arms * air
        if self.route:
            x, yaw = route_at(self.route, t)
            out["root_x"] += x
            out["turn"] += yaw
        return out

    def to_dict(self) -> dict:
        """As JSON-ready values; ``route`` only when there is one (motions written before routes existed read the
        same)."""
        d = asdict(self)
        if not self.route:
            del d["route"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Motion:
        channels = {
            k: Channel(v["bias"], *(tuple(float(x) for x in v[n]) for n in ("amp", "freq", "phase")))
            for k, v in d["channels"].items()
        }
        hop = None if d.get("hop") is None else Hop(**{k: float(v) for k, v in d["hop"].items()})
        route = tuple(tuple(float(v) for v in key) for key in d.get("route", ()))
        return cls(d["id"], d["kind"], float(d["tempo"]), channels, float(d.get("velocity", 0.0)), hop, route)

    @classmethod
    def still(cls, id: str = "neutral", at: float = 0.0) -> Motion:
        """The neutral pose: facing the camera, arms slightly out, legs slightly apart; ``at``: its root x."""
        channels = {f"{s}_shoulder": Channel(0.22 * o) for s, o in OUTWARD.items()}
        if at:
            channels["root_x"] = Channel(at)
        channels.update({f"{s}_hip": Channel(0.06 * o) for s, o in OUTWARD.items()})
        channels.update({f"{s}_elbow": Channel(0.05 * o) for s, o in OUTWARD.items()})
        return cls(id, "neutral", 1.0, channels)

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        kind: str,
        id: str = "motion",
        *,
        duration: float = 2.0,
        tempo: tuple[float, float] = (0.75, 1.0),
    ) -> Motion:
        """A motion of ``kind``; ``duration`` (seconds) keeps a walk's root inside a frame; ``tempo`` is a range."""
        if kind not in KINDS:
            raise ValueError(f"unknown motion kind {kind!r}; one of {', '.join(KINDS)}")
        tmp = float(rng.uniform(*tempo))
        u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731

        def wave(bias: float, amp: float, base: float, harmonics=(0.5, 1.0, 2.0)) -> Channel:
            amps = tuple(amp * float(w) for w in rng.dirichlet(np.ones(len(harmonics))))
            phases = tuple(float(p) for p in rng.uniform(0, 2 * math.pi, len(harmonics)))
            return Channel(bias, amps, tuple(base * h for h in harmonics), phases)

        ch: dict[str, Channel] = {}
        velocity, hop = 0.0, None
        if kind == "dance":
            beat = u(0.4, 0.9)
            ch["turn"], ch["lean"] = wave(u(-0.3, 0.3), u(0, 0.5), beat), wave(0, u(0.05, 0.25), beat)
            ch["head"], ch["tilt"] = wave(0, u(0.05, 0.3), beat), wave(0, u(0, 0.08), beat)
            ch["root_x"], bounce = wave(0, u(0, 0.06), beat), u(0, 0.03)
            ch["root_y"] = Channel(-bounce, (bounce,), (2 * beat,), (u(0, 2 * math.pi),))
            for s, o in OUTWARD.items():
                ch[f"{s}_shoulder"] = wave(o * u(0.2, 1.4), o * u(0.4, 1.4), beat)
                ch[f"{s}_elbow"] = wave(o * u(-0.2, 1.2), o * u(0.2, 1.0), beat)
                ch[f"{s}_hip"] = wave(o * u(0.0, 0.25), o * u(0, 0.2), beat)
                bend = u(0, 0.35)
                ch[f"{s}_knee"] = wave(-o * bend, -o * u(0, bend), beat)
        elif kind == "walk":
            facing, cadence, swing, arm = (1.0 if rng.random() < 0.5 else -1.0), u(0.6, 0.95), u(0.28, 0.5), u(0.2, 0.5)
            phase, knee = u(0, 2 * math.pi), u(0.15, 0.35)
            ch["turn"] = Channel(facing * u(0.75, 1.15), (u(0, 0.08),), (cadence,), (phase,))
            ch["lean"], ch["head"] = Channel(facing * u(0.02, 0.12)), wave(0, u(0, 0.12), cadence)
            for s, shift in (("r", 0.0), ("l", math.pi)):
                ch[f"{s}_hip"] = Channel(0.0, (-facing * swing,), (cadence,), (phase + shift,))
                ch[f"{s}_knee"] = Channel(facing * knee, (facing * knee,), (cadence,), (phase + shift + 1.2,))
                ch[f"{s}_shoulder"] = Channel(0.08 * OUTWARD[s], (facing * arm,), (cadence,), (phase + shift,))
                bend = u(0.1, 0.4)
                ch[f"{s}_elbow"] = Channel(-facing * bend, (-facing * u(0, bend),), (cadence,), (phase + shift,))
            speed = facing * min(u(0.12, 0.25) * tmp, 0.6 / max(duration, 1e-6))  # at most 0.6 units a clip
            ch["root_x"], velocity = Channel(-speed * duration / 2), speed / tmp  # crosses the centre half way
        elif kind == "jump":
            hop = Hop(u(0.05, 0.11), u(0.6, 1.0), u(0, 2 * math.pi), u(0.25, 0.6), u(0.3, 1.4))
            ch["turn"], ch["head"] = wave(u(-0.4, 0.4), u(0, 0.2), hop.freq), wave(0, u(0, 0.15), hop.freq)
            for s, o in OUTWARD.items():
                ch[f"{s}_shoulder"] = wave(o * u(0.1, 0.6), o * u(0, 0.3), hop.freq)
                ch[f"{s}_elbow"] = wave(o * u(0, 0.8), o * u(0, 0.3), hop.freq)
                ch[f"{s}_hip"] = Channel(o * u(0.03, 0.15))
        else:  # turn
            spin = u(0.2, 0.4)
            yaw, phase = u(0.8, 1.2), u(0, 2 * math.pi)
            ch["turn"] = Channel(u(-0.15, 0.15), (yaw,), (spin,), (phase,))
            ch["lean"] = Channel(0.0, (u(0.03, 0.12),), (spin,), (phase,))
            ch["head"] = Channel(0.0, (u(0.05, 0.2),), (spin,), (phase + u(-0.5, 0.5),))
            for s, o in OUTWARD.items():
                ch[f"{s}_shoulder"] = wave(o * u(0.1, 0.9), o * u(0.1, 0.6), 2 * spin)
                ch[f"{s}_elbow"] = wave(o * u(0, 1.0), o * u(0, 0.4), 2 * spin)
                ch[f"{s}_hip"] = Channel(o * u(0.02, 0.12))
        return cls(id, kind, tmp, ch, velocity, hop)


def route_at(route: tuple[tuple[float, float, float], ...], t: float) -> tuple[float, float]:
    """(root x offset, extra yaw) of ``route`` at ``t`` seconds (see the module doc)."""
    if t <= route[0][0]:
        return route[0][1], 0.0
    for (t0, x0, yaw), (t1, x1, _) in zip(route, route[1:]):
        if t < t1:
            u = (t - t0) / (t1 - t0)
            return x0 + (x1 - x0) * u * u * (3 - 2 * u), yaw * math.sin(math.pi * u) ** 2
    return route[-1][1], 0.0


def random_route(
    rng: np.random.Generator, duration: float, reach: float = 0.35
) -> tuple[tuple[float, float, float], ...]:
    """Keyframes that cross the stage for ``duration`` seconds: moves (1.5-3.5 s, each to a point on the other side
    of the centre, within ``reach`` of it; turned towards the travel by 0.7-1.1 rad at mid-way) alternating with
    pauses (0.8-2 s), starting with a move from a random side."""
    t, x = 0.0, float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0) * reach)
    keys: list[tuple[float, float, float]] = []
    moving = True
    while t < duration:
        if moving:
            target = -math.copysign(1.0, x) * float(rng.uniform(0.0, 1.0)) * reach
            length = float(rng.uniform(1.5, 3.5))
            keys.append((t, x, math.copysign(float(rng.uniform(0.7, 1.1)), target - x)))
            x = target
        else:
            length = float(rng.uniform(0.8, 2.0))
            keys.append((t, x, 0.0))
        t, moving = t + length, not moving
    keys.append((t, x, 0.0))
    return tuple(keys)
