#!/usr/bin/env bash
# Issue 29's recipe (docs/benchmark.md, "The sharper model"): the packaged miniature model continued, with the
# project's own commands only, from the model it replaced (commit a9ec209's assets/mini, itself made from scratch by
# scripts/synthetic_benchmark.sh), so a new machine rebuilds it in one run of this script:
#   1. the decoder fine-tuned with LPIPS (VGG) + a patch adversarial loss, the encoder kept bit for bit;
#   2. stage 1 continued from the old model's weights (temporal layers reset to identities), each STAGE1_CURVE
#      length's EMA export scored on the validation split (the only split any choice looks at);
#   3. stage 2 from the chosen length's export; 4. the new decoder put into the result: $W/model.
#   usage: scripts/sharpen_mini.sh [WORKDIR]   (default sharp/)
# Environment: START (the model to continue; default a9ec209's packaged model, taken from git), DATA (a folder made
# by `synthetic make --clips 400 --heldout-clips 16 --size 64 --frames 24`; default $W/data, made here), VAL (the
# validation split; default $W/val/heldout_character, made here), STAGE1_CURVE="1000 2000 3000 3500" (the exports
# scored), STAGE1_STEPS=3500 (the one stage 2 starts from), STAGE2_STEPS=600, DECODER_STEPS=2000, AA.
# Every step resumes when rerun. Run it with OMP_NUM_THREADS=1 beside other work, or 2 alone (docs/benchmark.md
# gives the cost). Training is deterministic for a fixed thread count.
set -euo pipefail
W=${1:-sharp}
AA=${AA:-animate-anyone}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
START=${START:-$W/start}
DATA=${DATA:-$W/data}
VAL=${VAL:-$W/val/heldout_character}
STAGE1_CURVE=${STAGE1_CURVE:-"1000 2000 3000 3500"}
STAGE1_STEPS=${STAGE1_STEPS:-3500}
STAGE2_STEPS=${STAGE2_STEPS:-600}
DECODER_STEPS=${DECODER_STEPS:-2000}
METRICS=l1,psnr,ssim,lpips,flicker,pck@0.05,pck@0.1
mkdir -p "$W/eval"
log() { echo "[$(date +%H:%M:%S)] $*"; }
have() { [ -f "$1/model_index.json" ]; }
# score NAME MODEL [--vae-roundtrip]: 10 guided DDIM steps on the validation split (with --vae-roundtrip: the
# model's VAE alone on the true frames), then evaluate as $W/eval/NAME.json.
score() {
  local json="$W/eval/$1.json" name=$1 model=$2
  shift 2
  [ -f "$json" ] && return
  log "score $name"
  local who=(--model "$model" --steps 10)
  [ "${1:-}" = --vae-roundtrip ] && who=(--vae-roundtrip "$model")
  $AA synthetic predict "${who[@]}" --data "$VAL" --out "$W/pred/$name" --quiet > /dev/null
  $AA evaluate --pred "$W/pred/$name" --gt "$VAL/videos" --pose-dir "$VAL/poses" --metrics "$METRICS" \
    --pose-backend regressor --out "$json" --quiet
}
# with_vae OUT MODEL VAE: a copy of MODEL whose vae/ is VAE (the encoders are the same, so nothing else changes).
with_vae() {
  have "$1" && return
  rm -rf "$1.partial" && cp -r "$2" "$1.partial" && rm -rf "$1.partial/vae" && cp -r "$3" "$1.partial/vae"
  mv "$1.partial" "$1"
}

log "data"
[ "$DATA" != "$W/data" ] || $AA synthetic make --out "$W/data" --clips 400 --heldout-clips 16 --size 64 --frames 24 --quiet
[ "$VAL" != "$W/val/heldout_character" ] ||
  $AA synthetic make --out "$W/val" --clips 8 --seed 1 --splits heldout_character --size 64 --frames 24 --quiet
if ! have "$START"; then
  log "start: the packaged model of commit a9ec209"
  rm -rf "$W/start.partial" && mkdir -p "$W/start.partial"
  git -C "$ROOT" archive a9ec209 src/animate_anyone/assets/mini | tar -x -C "$W/start.partial"
  mv "$W/start.partial/src/animate_anyone/assets/mini" "$START" && rm -rf "$W/start.partial"
fi

# 1. The decoder: LPIPS (VGG, weight 1) + patch adversarial (0.5, from step 500), peak rate 2e-4, encoder frozen.
if [ ! -f "$W/vae/config.json" ]; then
  log "decoder fine-tune ($DECODER_STEPS steps)"
  $AA synthetic autoencoder --data "$DATA/train" --init "$START/vae" --decoder-only --out "$W/vae" \
    --steps "$DECODER_STEPS" --lr 2e-4 --perceptual-weight 1 --adversarial-weight 0.5 --adversarial-start 500 --quiet
fi
score start "$START"
score vae-start "$START" --vae-roundtrip
with_vae "$W/start-newdecoder" "$START" "$W/vae"
score vae-new "$W/start-newdecoder" --vae-roundtrip
score start-newdecoder "$W/start-newdecoder"

# 2. Stage 1 continued (constant rate: stopping at N equals a run with max_steps=N), exports scored.
run="$W/runs/stage1"
for step in $STAGE1_CURVE; do
  snap="$run/step-$step"
  if ! have "$snap"; then
    log "train stage1 to $step steps"
    $AA train stage1 --config "$ROOT/configs/train/mini_stage1.yaml" --resume --quiet model.pretrained="$START" \
      model.reset_temporal=true data.root="$DATA/train" output_dir="$run/train" seed=0 max_steps="$step" \
      checkpoint_every=500
    rm -rf "$snap.partial" && cp -r "$run/train/final" "$snap.partial" && mv "$snap.partial" "$snap"
  fi
  score "stage1-$step" "$snap"
done

# 3. Stage 2 from the chosen stage-1 length; 4. the new decoder in the result.
stage2="$W/runs/stage2"
if ! have "$stage2/final"; then
  log "train stage2 ($STAGE2_STEPS steps) from stage 1 at $STAGE1_STEPS"
  $AA train stage2 --config "$ROOT/configs/train/mini_stage2.yaml" --resume --quiet \
    model.pretrained="$run/step-$STAGE1_STEPS" data.root="$DATA/train" output_dir="$stage2" seed=0 \
    max_steps="$STAGE2_STEPS"
fi
score stage2 "$stage2/final"
with_vae "$W/model" "$stage2/final" "$W/vae"
score model "$W/model"
log "the model: $W/model (validation scores in $W/eval)"
