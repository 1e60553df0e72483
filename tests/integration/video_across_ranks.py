"""Run by tests/integration/test_distributed.py, alone or under torchrun: one video of the packaged miniature
model (trained: its temporal layers are not zero, so every frame depends on its window) through the pipeline with
a sampling preset; rank 0 saves the decoded frames, and every rank its UNet rows, windows per step and wall time,
to OUT.   usage: video_across_ranks.py MODEL OUT FRAMES PRESET"""

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from animate_anyone import distributed
from animate_anyone.pipelines import AnimateAnyonePipeline
from animate_anyone.pipelines.settings import SettingsWarning
from animate_anyone_lab.demo import demo_clip

model, out, frames, preset = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(1)
warnings.simplefilter("ignore", SettingsWarning)  # the student preset on the teacher: the split is what is tested
ranks, device = distributed.join(distributed.Launch.from_env(), torch.device("cpu"))  # handed to the pipeline
pipe = AnimateAnyonePipeline.from_pretrained(model)
pipe.set_progress_bar_config(disable=True)
reference, _, poses = demo_clip(0, frames, 64)
start = time.perf_counter()
result = pipe(
    PIL.Image.fromarray(reference),
    poses,
    {"preset": preset, "context_frames": 12, "context_overlap": 4},
    generator=torch.Generator().manual_seed(0),
    output_type="np",
    ranks=ranks,
)
seconds = time.perf_counter() - start
out.mkdir(parents=True, exist_ok=True)
if ranks.main:
    np.save(out / "frames.npy", result.frames)
stats = {k: result.stats[k] for k in ("full_rows", "shallow_rows", "windows")}
(out / f"rank-{ranks.rank}.json").write_text(json.dumps({**stats, "seconds": seconds, "world": ranks.world}))
distributed.shutdown()  # leave the group before exiting (gloo can abort an exiting process otherwise)
