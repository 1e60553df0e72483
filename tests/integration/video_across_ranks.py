"""Run by tests/integration/test_distributed.py, alone or under torchrun: one video through the pipeline;
rank 0 saves the final latents, and every rank its UNet rows and wall time, to OUT."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from animate_anyone import distributed
from animate_anyone.pipelines import AnimateAnyonePipeline

model, out, frames = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
ranks, device = distributed.init_from_env(torch.device("cpu"))
pipe = AnimateAnyonePipeline.from_pretrained(model)
pipe.set_progress_bar_config(disable=True)
rng = np.random.default_rng(0)
reference = PIL.Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8))
poses = rng.integers(0, 255, (frames, 64, 48, 3), dtype=np.uint8)
start = time.perf_counter()
result = pipe(
    reference,
    poses,
    height=64,
    width=48,
    num_inference_steps=3,
    context_frames=16,
    context_overlap=4,
    generator=torch.Generator().manual_seed(0),
    output_type="latent",
)
seconds = time.perf_counter() - start
out.mkdir(parents=True, exist_ok=True)
if ranks.main:
    torch.save(result.frames, out / "latents.pt")
stats = {k: result.stats[k] for k in ("full_rows", "shallow_rows")}
(out / f"rank-{ranks.rank}.json").write_text(json.dumps({**stats, "seconds": seconds, "world": ranks.world}))
