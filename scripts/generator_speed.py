"""Frames per second of the synthetic generator at 128 px (docs/benchmark.md). Run on one core:
taskset -c 0 python scripts/generator_speed.py
"""

import time

from animate_anyone_lab.render import pose_images, render_clip
from animate_anyone_lab.splits import clip_spec

n, frames = 10, 24
specs = [clip_spec(0, "train", i, 400, (128, 128), 2.0) for i in range(n)]
t = time.perf_counter()
for s in specs:
    images, kp, _ = render_clip(s.character, s.motion, s.stage, frames, 12.0)
t_render = time.perf_counter() - t
t = time.perf_counter()
for s in specs:
    images, kp, _ = render_clip(s.character, s.motion, s.stage, frames, 12.0)
    poses = pose_images(kp)
t_both = time.perf_counter() - t
print(
    f"128 px: {n * frames / t_render:.0f} frames/s rendered (RGB + keypoints); "
    f"{n * frames / t_both:.0f} frames/s with pose images"
)
