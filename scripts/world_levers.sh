#!/usr/bin/env bash
# The "next lever" measurements of the background-flicker row in docs/benchmark.md: is `bg_change` a sampling
# setting (steps, guidance) or the model? And the VAE's own share (encode-decode of the true long clips).
#   usage: scripts/world_levers.sh [WORKDIR]   (a scripts/world_benchmark.sh work folder; writes WORKDIR/lever/)
# cross_body_small, true skeleton, generator seed 0; every step resumes.
set -euo pipefail
W=${1:-bench-world}
AA=${AA:-animate-anyone}
PY=${PY:-python}
MODEL=${MODEL:-$($PY -c 'from animate_anyone.assets import packaged_model; print(packaged_model())')}
mkdir -p "$W/lever"
for run in "steps20 20 2" "steps40 40 2" "guidance1 10 1" "guidance3.5 10 3.5"; do
  read -r name steps guidance <<< "$run"
  $AA synthetic predict --model "$MODEL" --data "$W/cross/cross_body_small" --out "$W/lever/$name" --steps "$steps" \
    --guidance "$guidance" --quiet
  [ -f "$W/lever/$name.json" ] || $AA synthetic measure --data "$W/cross/cross_body_small" --pred "$W/lever/$name" \
    --out "$W/lever/$name.json" --quiet
done
[ -f "$W/lever/vae_roundtrip.json" ] || $PY - "$W" <<'PYTHON'
import json, sys
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL

from animate_anyone.data.manifest import read_manifest
from animate_anyone_lab import world_metrics as world
from animate_anyone.media import iter_frames
from animate_anyone.assets import packaged_model

work = Path(sys.argv[1])
vae = AutoencoderKL.from_pretrained(packaged_model() / "vae").eval()
clips = {}
for clip in read_manifest(work / "long" / "long"):
    truth = np.stack(list(iter_frames(clip.video)))
    with np.load(work / "long" / "long" / "masks" / f"{clip.id}.npz") as masks:
        static = masks["static"]
    x = torch.from_numpy(truth).permute(0, 3, 1, 2).float() / 127.5 - 1  # (F, 3, H, W) in [-1, 1]
    with torch.no_grad():
        out = torch.cat([vae.decode(vae.encode(x[i : i + 24]).latent_dist.mean).sample for i in range(0, len(x), 24)])
    again = ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    clips[clip.id] = {"bg_change": world.background_change(again, static), "bg_psnr": world.background_psnr(again, truth, static)}
mean = {k: float(np.mean([c[k] for c in clips.values()])) for k in ("bg_change", "bg_psnr")}
(work / "lever" / "vae_roundtrip.json").write_text(json.dumps({"what": "VAE encode (mean) + decode of the true long clips", "mean": mean, "per_clip": clips}, indent=1) + "\n")
print("vae round trip", mean)
PYTHON
