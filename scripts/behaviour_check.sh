#!/usr/bin/env bash
# Fingerprints of what the commands produce, for checking that a refactor changes no output bit:
#   bash scripts/behaviour_check.sh OUT_DIR        (then: diff OUT_A/hashes.txt OUT_B/hashes.txt)
# Through the command line only (its flags outlive refactors of the Python API): the demo, and `animate` with
# every sampling preset and window mode on the packaged miniature model (trained temporal layers, several windows)
# and on a tiny init-model model, written as PNG frames (lossless and deterministic, unlike h264), one thread.
set -euo pipefail
OUT=${1:?usage: behaviour_check.sh OUT_DIR}
mkdir -p "$OUT"
AA=${AA:-.venv/bin/animate-anyone}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
MINI=$($PY -c "from animate_anyone.assets import packaged_model; print(packaged_model())")

# Inputs: held-out demo clip 1 (reference image, 40 pose frames), written as PNGs.
$PY - "$OUT/inputs" <<'EOF'
import sys
from pathlib import Path
from PIL import Image
from animate_anyone_lab.demo import demo_clip
out = Path(sys.argv[1]); (out / "pose").mkdir(parents=True, exist_ok=True)
reference, _, poses = demo_clip(1, frames=40, size=64)
Image.fromarray(reference).save(out / "reference.png")
for i, frame in enumerate(poses):
    Image.fromarray(frame).save(out / "pose" / f"{i:04d}.png")
EOF
[ -d "$OUT/tiny" ] || $AA init-model --architecture tiny --seed 3 --out "$OUT/tiny"

run() {  # name, model, extra animate arguments...
  local name=$1 model=$2; shift 2
  [ -d "$OUT/runs/$name" ] || $AA animate --model "$model" --reference "$OUT/inputs/reference.png" \
    --pose "$OUT/inputs/pose" --out "$OUT/runs/$name" --quiet "$@" 2>>"$OUT/stderr.txt"
}
[ -d "$OUT/runs/demo" ] || $AA demo --out "$OUT/runs/demo" --quiet --frames 16 --steps 8 2>>"$OUT/stderr.txt"
for preset in quality fast student; do
  run "mini-$preset" "$MINI" --preset "$preset" --context-frames 16 --context-overlap 4
  run "tiny-$preset" "$OUT/tiny" --preset "$preset" --frames 12 --context-frames 8 --context-overlap 2 --size 64x64
done
run mini-moore "$MINI" --steps 6 --window-mode moore --context-frames 16 --context-overlap 4
run mini-anchored "$MINI" --steps 6 --window-mode anchored --context-frames 16 --context-overlap 4
run mini-overrides "$MINI" --preset fast --steps 7 --guidance 2.5 --scheduler euler --context-frames 12 \
  --context-overlap 3 --seed 5 guidance_interval=[0.2,0.8] cache_interval=3 cache_depth=1
(cd "$OUT/runs" && find . -name '*.png' | sort | xargs sha256sum) > "$OUT/hashes.txt"
echo "$(wc -l < "$OUT/hashes.txt") frames hashed in $OUT/hashes.txt"
