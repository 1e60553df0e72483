"""A procedurally generated world of 2D articulated characters with exact ground truth (the synthetic benchmark).

* :mod:`.character`: ``Character`` (proportions + a textured ``Style`` per part), ``Character.random(rng)``.
* :mod:`.motion`: ``Motion`` (smooth joint-angle and root curves: dance, walk, jump, turn), ``Motion.random``.
* :mod:`.kinematics`: ``pose(character, motion, t)`` -> ``Rig``: COCO-18 joints and depth-sorted placed parts.
* :mod:`.raster`, :mod:`.render`: painting parts (analytic anti-aliasing), ``Stage`` (framing, background),
  ``render_clip`` -> frames, ``PoseSequence`` keypoints and part-id maps; ``pose_images`` via ``pose.draw``.
* :mod:`.splits`: ``train`` / ``heldout_character`` / ``heldout_motion`` as pure functions of seeds.
* :mod:`.dataset`: ``make_dataset`` (the training data format, one directory per split) and ``preview``.

Everything is a pure function of its seeds (numpy ``default_rng`` seeded with ``[seed, stream, index]``).

The lab around the world: :mod:`.world_metrics` (what only the world can measure), :mod:`.oracle` (the pose
oracle's training), :mod:`.autoencoder` (the miniature model's VAE), :mod:`.benchmark` and :mod:`.measure` (the
quality benchmark), :mod:`.demo`, and :mod:`.cli` (the ``synthetic`` and ``demo`` commands). The lab imports the
product (``animate_anyone``); the product never imports it. Nothing is imported here: a command that only builds
its parser (``animate-anyone --help``) does not load the world.
"""
