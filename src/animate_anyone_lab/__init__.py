"""A procedurally generated world of 2D articulated characters with exact ground truth (the synthetic benchmark).

* :mod:`.character`: ``Character`` (proportions + a textured ``Style`` per part), ``Character.random(rng)``.
* :mod:`.motion`: ``Motion`` (smooth joint-angle and root curves: dance, walk, jump, turn), ``Motion.random``.
* :mod:`.kinematics`: ``pose(character, motion, t)`` -> ``Rig``: COCO-18 joints and depth-sorted placed parts.
* :mod:`.raster`, :mod:`.render`: painting parts (analytic anti-aliasing), ``Stage`` (framing, background),
  ``render_clip`` -> frames, ``PoseSequence`` keypoints and part-id maps; ``pose_images`` via ``pose.draw``.
* :mod:`.splits`: ``train`` / ``heldout_character`` / ``heldout_motion`` as pure functions of seeds.
* :mod:`.dataset`: ``make_dataset`` (the training data format, one directory per split) and ``preview``.

Everything is a pure function of its seeds (numpy ``default_rng`` seeded with ``[seed, stream, index]``).
"""

from .character import Character
from .dataset import make_dataset, preview
from .kinematics import Rig, pose
from .motion import KINDS, Motion
from .render import Stage, pose_images, reference_image, render_clip
from .splits import SPLITS, clip_spec

__all__ = [
    "Character",
    "KINDS",
    "Motion",
    "Rig",
    "SPLITS",
    "Stage",
    "clip_spec",
    "make_dataset",
    "pose",
    "pose_images",
    "preview",
    "reference_image",
    "render_clip",
]
