#!/usr/bin/env bash
# Issue 29's recipe (docs/benchmark.md, "The sharper model"): the packaged miniature model continued, with the
# project's own commands only, from the model it replaced (commit a9ec209's assets/mini, itself made from scratch by
# scripts/synthetic_benchmark.sh), so a new machine rebuilds it in one run of this script:
#   1. the decoder fine-tuned with LPIPS (VGG) + a patch adversarial loss (DECODER_ARGS), the encoder kept bit for
#      bit (so every network trained on the old latents works with it);
#   2. stage 1 continued from the old model's weights (temporal layers reset to identities), the EMA export at each
#      STAGE1_CURVE length scored on the validation split (the only split any choice looks at);
#   3. stage 2 from the chosen length's export; 4. the new decoder put into the result: $W/model.
# Each validation score is $W/eval/val-NAME.json (committed in docs/benchmark_results/sharp/): val-previous (the old
# model), val-vae-previous / val-vae-$DECODER_NAME (each VAE alone on the true frames), val-previous-$DECODER_NAME (old
# networks, new decoder), val-stage1-N (old decoder), val-stage1-$STAGE1_STEPS-$DECODER_NAME.
#   usage: scripts/sharpen_mini.sh [WORKDIR]   (default sharp/)
# Environment: START (the model to continue; default a9ec209's packaged model, taken from git), DATA (a folder made
# by `synthetic make --clips 400 --heldout-clips 16 --size 64 --frames 24`; default $W/data, made here), VAL (the
# validation split; default $W/val/heldout_character, made here), STAGE1_CURVE="1000 2000 3000 3500" (the exports
# scored), STAGE1_STEPS=3500 (the one stage 2 starts from), STAGE2_STEPS=600, DECODER_STEPS=2000,
# DECODER_ARGS="--perceptual-weight 0.3 --adversarial-weight 0.1" and DECODER_NAME=mild (chosen on the validation
# split against DECODER_ARGS="--perceptual-weight 1 --adversarial-weight 0.5" DECODER_NAME=strong DECODER_ONLY=1:
# DECODER_ONLY stops after the decoder's rows), AA (the command).
# Every step resumes when rerun. The committed model ran every training on one thread (OMP_NUM_THREADS=1); training
# is deterministic for a fixed thread count. The held-out rows: scripts/synthetic_benchmark_rows.sh with MODEL=$W/model.
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
read -r -a DECODER_ARGS <<< "${DECODER_ARGS:-"--perceptual-weight 0.3 --adversarial-weight 0.1"}"
DN=${DECODER_NAME:-mild}
METRICS=l1,psnr,ssim,lpips,flicker,pck@0.05,pck@0.1
mkdir -p "$W/eval"
log() { echo "[$(date +%H:%M:%S)] $*"; }
have() { [ -f "$1/model_index.json" ]; }
# score NAME MODEL [--vae-roundtrip]: 10 guided DDIM steps on the validation split (with --vae-roundtrip: the
# model's VAE alone on the true frames), then evaluate as $W/eval/val-NAME.json.
score() {
  local name=$1 model=$2
  local json="$W/eval/val-$name.json"
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

# 1. The decoder: LPIPS (VGG) + patch adversarial (from step 500), peak rate 2e-4, encoder frozen.
vae="$W/vae-$DN"
if [ ! -f "$vae/config.json" ]; then
  log "decoder fine-tune $DN ($DECODER_STEPS steps)"
  $AA synthetic autoencoder --data "$DATA/train" --init "$START/vae" --decoder-only --out "$vae" \
    --max-steps "$DECODER_STEPS" --lr 2e-4 "${DECODER_ARGS[@]}" --adversarial-start 500 --resume --quiet
fi
score previous "$START"
score vae-previous "$START" --vae-roundtrip
with_vae "$W/previous-$DN" "$START" "$vae"
score "vae-$DN" "$W/previous-$DN" --vae-roundtrip
score "previous-$DN" "$W/previous-$DN"

# 2. Stage 1 continued (constant rate: stopping at N is a run with max_steps=N), exports scored.
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
  [ -n "${DECODER_ONLY:-}" ] || score "stage1-$step" "$snap"
done
with_vae "$run/step-$STAGE1_STEPS-$DN" "$run/step-$STAGE1_STEPS" "$vae"
score "stage1-$STAGE1_STEPS-$DN" "$run/step-$STAGE1_STEPS-$DN"
[ -z "${DECODER_ONLY:-}" ] || exit 0

# 3. Stage 2 from the chosen stage-1 length; 4. the new decoder in the result.
stage2="$W/runs/stage2"
if ! have "$stage2/final"; then
  log "train stage2 ($STAGE2_STEPS steps) from stage 1 at $STAGE1_STEPS"
  $AA train stage2 --config "$ROOT/configs/train/mini_stage2.yaml" --resume --quiet \
    model.pretrained="$run/step-$STAGE1_STEPS" data.root="$DATA/train" output_dir="$stage2" seed=0 \
    max_steps="$STAGE2_STEPS"
fi
with_vae "$W/model" "$stage2/final" "$vae"
cp "$ROOT/src/animate_anyone/assets/mini/PROVENANCE.txt" "$W/model/"
log "the model: $W/model; score it with MODEL=$W/model scripts/synthetic_benchmark_rows.sh"
