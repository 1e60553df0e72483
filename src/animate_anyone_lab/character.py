"""``Character``: a 2D articulated figure as a small, serialisable dataclass drawn from a seeded RNG.

Units: lengths are in *character units*, about one standing height (a typical character is 0.9-1.05 tall; the
renderer scales each clip's character to the frame). A character is its proportions (``Body``) plus one
``Style`` per drawn part: a shape (``box`` = rounded, possibly tapered rectangle; ``ellipse``; ``capsule`` = a
segment with round ends) filled with a ``Texture`` (``solid``, ``stripes``, ``checks``, ``dots``,
``gradient``) in part-local coordinates, so the texture moves with the part. Left and right limbs share their
style, like clothes. Clothing logic: a shirt texture on the torso and the sleeves (short or long), trousers or
shorts on the legs, skin on bare parts, shoes on the feet; optional hair, hat and bag.

``Character.random(rng, id)`` consumes a fixed sequence of draws (no dependence on earlier choices except
through ``rng``); ``to_dict`` / ``from_dict`` round-trip exactly through JSON.
"""

from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass, field, fields

import numpy as np

Color = tuple[int, int, int]
SHAPES = ("box", "ellipse", "capsule")
TEXTURES = ("solid", "stripes", "checks", "dots", "gradient")
SKINS: tuple[Color, ...] = (
    (255, 224, 196),
    (241, 194, 155),
    (224, 172, 125),
    (198, 134, 86),
    (141, 85, 54),
    (92, 58, 38),
    (150, 210, 140),
    (160, 190, 235),
)  # last two: fantasy skins
STYLE_NAMES = (
    "head",
    "hair",
    "neck",
    "torso",
    "upper_arm",
    "lower_arm",
    "hand",
    "thigh",
    "shin",
    "foot",
    "hat",
    "bag",
    "ear",
    "eye",
)


@dataclass(frozen=True)
class Texture:
    kind: str  # one of TEXTURES
    colors: tuple[Color, ...]  # one colour for solid, two otherwise (background first)
    period: float = 0.05  # stripe / check / dot spacing, or the gradient's span, in character units
    angle: float = 0.0  # radians, relative to the part's axis
    duty: float = 0.5  # stripe width / dot radius as a fraction of the period


@dataclass(frozen=True)
class Style:
    shape: str  # one of SHAPES
    texture: Texture
    outline: Color
    roundness: float = 0.5  # box corners: radius as a fraction of the half width


@dataclass(frozen=True)
class Body:
    """Proportions, character units. Limb lengths are joint to joint; widths are half widths."""

    head: float  # head half height
    head_aspect: float  # head half width / half height
    neck: float  # neck (top of torso) to the bottom of the head
    torso: float  # pelvis to neck
    shoulders: float  # half the distance between the shoulder joints
    hips: float  # half the distance between the hip joints
    waist: float  # torso half width at the pelvis
    chest: float  # torso half width at the shoulders
    upper_arm: float
    lower_arm: float
    arm_width: float
    thigh: float
    shin: float
    leg_width: float
    hand: float  # hand radius
    foot: float  # foot length

    @property
    def height(self) -> float:
        """Standing height, sole to crown, in the neutral pose."""
        return self.thigh + self.shin + self.leg_width + self.torso + self.neck + 2 * self.head


@dataclass(frozen=True)
class Character:
    id: str
    body: Body
    styles: dict[str, Style]  # by STYLE_NAMES; hair / hat / bag only when the character has them
    skin: Color
    outline: Color
    extras: dict[str, float] = field(default_factory=dict)  # hat height/width, bag size, sleeve flags

    def has(self, name: str) -> bool:
        return name in self.styles

    @classmethod
    def random(cls, rng: np.random.Generator, id: str = "character") -> Character:
        u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
        head = u(0.06, 0.105)
        body = Body(
            head=head,
            head_aspect=u(0.78, 1.05),
            neck=u(0.015, 0.045),
            torso=u(0.24, 0.34),
            shoulders=u(0.07, 0.115),
            hips=u(0.04, 0.065),
            waist=u(0.055, 0.1),
            chest=u(0.08, 0.13),
            upper_arm=u(0.12, 0.19),
            lower_arm=u(0.11, 0.18),
            arm_width=u(0.02, 0.038),
            thigh=u(0.16, 0.26),
            shin=u(0.15, 0.25),
            leg_width=u(0.026, 0.048),
            hand=u(0.022, 0.036),
            foot=u(0.05, 0.085),
        )
        palette = make_palette(rng)
        skin = SKINS[int(rng.integers(len(SKINS)))] if rng.random() < 0.85 else palette[4]
        outline = _shade(palette[int(rng.integers(len(palette)))], 0.25) if rng.random() < 0.5 else (20, 20, 24)
        shirt, trousers = _texture(rng, palette), _texture(rng, palette)
        shoes = Texture("solid", (_shade(palette[int(rng.integers(5))], u(0.2, 0.9)),))
        bare = Texture("solid", (skin,))
        shape = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
        limb_shape, leg_shape = shape(("capsule", "capsule", "box")), shape(("capsule", "box", "box"))
        sleeves, trouser_len = float(rng.integers(3)), float(rng.integers(3))  # 0 none, 1 short, 2 long
        mk = lambda sh, tex, r=0.5: Style(sh, tex, outline, r)  # noqa: E731
        styles = {
            "head": mk(shape(("ellipse", "ellipse", "ellipse", "box")), bare, u(0.5, 0.9)),
            "neck": mk("capsule", bare),
            "torso": mk(shape(("box", "box", "ellipse", "capsule")), shirt, u(0.2, 0.8)),
            "upper_arm": mk(limb_shape, shirt if sleeves > 0 else bare, u(0.3, 1.0)),
            "lower_arm": mk(limb_shape, shirt if sleeves > 1 else bare, u(0.3, 1.0)),
            "hand": mk("ellipse", bare),
            "thigh": mk(leg_shape, trousers if trouser_len > 0 else bare, u(0.3, 1.0)),
            "shin": mk(leg_shape, trousers if trouser_len > 1 else bare, u(0.3, 1.0)),
            "foot": mk("box", shoes, u(0.4, 1.0)),
            "ear": mk("ellipse", bare),
            "eye": Style("ellipse", Texture("solid", (_shade(palette[int(rng.integers(5))], 0.3),)), outline),
        }
        extras = {"sleeves": sleeves, "trousers": trouser_len}
        draws = rng.random(3)  # hair, hat, bag: always drawn, so later draws do not shift
        if draws[0] < 0.6:
            hair = _shade(palette[int(rng.integers(5))], u(0.3, 0.8)) if rng.random() < 0.5 else (60, 40, 25)
            styles["hair"] = mk("ellipse", Texture("solid", (hair,)))
        if draws[1] < 0.3:
            styles["hat"] = mk("box", _texture(rng, palette), 0.3)
            extras.update(hat_height=u(0.05, 0.1), hat_width=u(0.7, 1.1))
        if draws[2] < 0.3:
            styles["bag"] = mk("box", _texture(rng, palette), 0.4)
            extras.update(bag_size=u(0.05, 0.08))
        return cls(id, body, styles, skin, outline, extras)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Character:
        def style(d: dict) -> Style:
            t = d["texture"]
            colors = tuple(tuple(int(v) for v in c) for c in t["colors"])
            tex = Texture(t["kind"], colors, float(t["period"]), float(t["angle"]), float(t["duty"]))
            return Style(d["shape"], tex, tuple(int(v) for v in d["outline"]), d["roundness"])

        body = Body(**{f.name: float(data["body"][f.name]) for f in fields(Body)})
        extras = {k: float(v) for k, v in data.get("extras", {}).items()}
        return cls(
            data["id"],
            body,
            {k: style(v) for k, v in data["styles"].items()},
            tuple(int(v) for v in data["skin"]),
            tuple(int(v) for v in data["outline"]),
            extras,
        )


def make_palette(rng: np.random.Generator) -> list[Color]:
    """Five colours: a base hue and a harmony (analogous, complementary, triadic or random)."""
    base = float(rng.random())
    scheme = int(rng.integers(4))
    offsets = [
        (0, 0.08, -0.08, 0.04, -0.04),
        (0, 0.5, 0.02, 0.48, 0.5),
        (0, 1 / 3, 2 / 3, 0.05, 0.38),
        tuple(rng.random(5)),
    ][scheme]
    sats, vals = rng.uniform(0.35, 0.95, 5), rng.uniform(0.45, 0.98, 5)
    return [
        tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb((base + o) % 1.0, s, v))
        for o, s, v in zip(offsets, sats, vals)
    ]


def _texture(rng: np.random.Generator, palette: list[Color]) -> Texture:
    kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
    i, j = rng.choice(len(palette), 2, replace=False)
    a, b = palette[int(i)], palette[int(j)]
    if rng.random() < 0.3:
        b = (245, 245, 240) if rng.random() < 0.5 else _shade(a, 0.45)  # white or a darker shade of the same
    period, angle = float(rng.uniform(0.025, 0.07)), float(rng.uniform(0, np.pi))
    duty = float(rng.uniform(0.2, 0.35)) if kind == "dots" else float(rng.uniform(0.3, 0.6))
    if kind == "gradient":
        period = float(rng.uniform(0.12, 0.35))
    return Texture(kind, (a,) if kind == "solid" else (a, b), period, angle, duty)


def _shade(color: Color, factor: float) -> Color:
    return tuple(int(round(c * factor)) for c in color)
