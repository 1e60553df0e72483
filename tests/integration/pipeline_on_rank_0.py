"""Run by tests/integration/test_shipped_configs.py, alone or under torchrun: the caller joins its own process group
(as a training job or a user's DDP script does), then rank 0 alone calls the pipeline (handed no ranks) and saves the
frames; the other ranks wait at a barrier. Before issue 40 the pipeline asked the global group whether to share the
video and rank 0 waited for ever in a collective the others never joined; the group's short timeout turns such a wait
into a failure in 60 s.   usage: pipeline_on_rank_0.py OUT"""

import datetime
import json
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from animate_anyone.assets import packaged_model
from animate_anyone.distributed import Launch
from animate_anyone.pipelines import AnimateAnyonePipeline
from animate_anyone_lab.demo import demo_clip

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
launch = Launch.from_env()
if launch.launched:
    torch.distributed.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
called = False
if launch.main:
    pipe = AnimateAnyonePipeline.from_pretrained(str(packaged_model()))
    pipe.set_progress_bar_config(disable=True)
    reference, _, poses = demo_clip(0, 12, 64)
    sampling = {"steps": 3, "context_frames": 8, "context_overlap": 2}  # two windows a step
    frames = pipe(PIL.Image.fromarray(reference), poses, sampling, generator=torch.Generator().manual_seed(0)).frames
    np.save(out / "frames.npy", frames)
    called = True
(out / f"rank-{launch.rank}.json").write_text(json.dumps({"world": launch.world, "called": called}))
if launch.launched:
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
