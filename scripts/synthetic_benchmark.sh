#!/usr/bin/env bash
# The synthetic benchmark of docs/benchmark.md, end to end, with the project's own commands only:
# data -> small VAE (+ decoder fine-tune) -> for 3 seeds: stage 1 + stage 2 of the full model and of the no-ReferenceNet ablation
# -> predictions on both held-out splits -> evaluate -> the table. Every step resumes when rerun (finished
# runs, clips and evaluations are kept), so an interrupted benchmark continues where it stopped.
#   usage: scripts/synthetic_benchmark.sh [WORKDIR]   (default bench/)
# Environment: SEEDS="0 1 2"; VARIANTS="full noref" (the trainings to run); ONLY_TRAIN=1 stops after training;
# SPLITS="heldout_character heldout_motion" (the splits to predict and score); STEPS=10 (denoising steps).
# PCK uses the packaged pose oracle (evaluate --pose-backend regressor; made by `synthetic oracle`, see the doc).
# On 2 cores, two lanes with one thread each are faster than one with two: after the data, VAE and init-*
# steps, run `OMP_NUM_THREADS=1 VARIANTS=full ONLY_TRAIN=1 scripts/...` and the same with VARIANTS=noref
# side by side, then the script once more for the predictions and the table.
# The other rows of docs/benchmark.md (presets, validation split, distillation): scripts/synthetic_benchmark_rows.sh.
# Every prediction folder records its settings (predict.json) and every evaluate JSON copies them ("predictions").
set -euo pipefail
W=${1:-bench}
SEEDS=${SEEDS:-"0 1 2"}
VARIANTS=${VARIANTS:-"full noref"}
AA=${AA:-animate-anyone}
CONFIGS=$(cd "$(dirname "$0")/../configs/train" && pwd)
mkdir -p "$W"
log() { echo "[$(date +%H:%M:%S)] $*"; }

log "data"
$AA synthetic make --out "$W/data" --clips 400 --heldout-clips 16 --size 64 --frames 24 --quiet
if [ ! -f "$W/vae/config.json" ]; then
  log "autoencoder"
  $AA synthetic autoencoder --data "$W/data/train" --out "$W/vae" --max-steps 6000 --resume --quiet
fi
# (--resume: a run cut short continues from its checkpoint; a first run starts at step 0.)
# A longer decoder-only fine-tune: the encoder (so every latent the models train on) stays bit for bit the same,
# and the reconstruction gains about 1.5 dB (docs/benchmark.md, "VAE ceiling").
if [ ! -f "$W/vae-dec/config.json" ]; then
  log "autoencoder decoder fine-tune"
  $AA synthetic autoencoder --data "$W/data/train" --init "$W/vae" --decoder-only --out "$W/vae-dec" --max-steps 12000 --resume --quiet
fi

train() {  # train VARIANT SEED STAGE EXTRA...
  local variant=$1 seed=$2 stage=$3; shift 3
  local out="$W/runs/$variant-$seed/stage$stage"
  [ -f "$out/final/model_index.json" ] && return
  local from="$W/init-$seed"
  [ "$stage" = 2 ] && from="$W/runs/$variant-$seed/stage1/final"
  log "train $variant seed $seed stage $stage"
  local start=$SECONDS
  $AA train "stage$stage" --config "$CONFIGS/mini_stage$stage.yaml" --resume --quiet \
    model.pretrained="$from" data.root="$W/data/train" output_dir="$out" seed="$seed" "$@"
  echo "$variant-$seed stage$stage $((SECONDS - start)) s" >> "$W/train_times.txt"
}

for seed in $SEEDS; do
  [ -f "$W/init-$seed/model_index.json" ] || $AA init-model --architecture mini --vae "$W/vae-dec" --seed "$seed" --out "$W/init-$seed"
done
for seed in $SEEDS; do
  for variant in $VARIANTS; do
    extra=()
    [ "$variant" = noref ] && extra=(model.reference_net=false)
    train "$variant" "$seed" 1 "${extra[@]}"
    train "$variant" "$seed" 2 "${extra[@]}"
  done
done
[ -n "${ONLY_TRAIN:-}" ] && exit 0

# Variants: the full model (stage 2), without temporal layers (the same run's stage-1 export: the temporal
# layers are identities there), and without ReferenceNet (its own stage 1 + stage 2).
model_of() {  # model_of VARIANT SEED
  case $1 in
    full) echo "$W/runs/full-$2/stage2/final" ;;
    no_temporal) echo "$W/runs/full-$2/stage1/final" ;;
    no_referencenet) echo "$W/runs/noref-$2/stage2/final" ;;
  esac
}
results=()
for split in ${SPLITS:-heldout_character heldout_motion}; do
  for variant in full no_referencenet no_temporal; do
    for seed in $SEEDS; do
      pred="$W/pred/$variant-$seed/$split"
      json="$W/eval/$variant-$seed-$split.json"
      log "predict + evaluate $variant seed $seed $split"
      $AA synthetic predict --model "$(model_of $variant "$seed")" --data "$W/data/$split" --out "$pred" --steps "${STEPS:-10}" --quiet
      [ -f "$json" ] || $AA evaluate --pred "$pred" --gt "$W/data/$split/videos" --pose-dir "$W/data/$split/poses" \
        --metrics l1,psnr,ssim,lpips,flicker,pck@0.05,pck@0.1 --pose-backend regressor --out "$json" --quiet > /dev/null
      results+=("$variant:$split:$json")
    done
  done
  # A baseline: the reference image repeated (no motion at all).
  json="$W/eval/copy_reference-$split.json"
  $AA synthetic predict --copy-reference --data "$W/data/$split" --out "$W/pred/copy_reference/$split" --quiet
  [ -f "$json" ] || $AA evaluate --pred "$W/pred/copy_reference/$split" --gt "$W/data/$split/videos" --pose-dir "$W/data/$split/poses" \
    --metrics l1,psnr,ssim,lpips,flicker,pck@0.05,pck@0.1 --pose-backend regressor --out "$json" --quiet > /dev/null
  results+=("copy_reference:$split:$json")
  # The pose oracle's ceiling: the ground truth scored against itself.
  json="$W/eval/ground_truth-$split.json"
  [ -f "$json" ] || $AA evaluate --pred "$W/data/$split/videos" --gt "$W/data/$split/videos" --pose-dir "$W/data/$split/poses" \
    --metrics pck@0.05,pck@0.1 --pose-backend regressor --out "$json" --quiet > /dev/null
  results+=("ground_truth:$split:$json")
done
$AA synthetic report --results "${results[@]}" --out "$W/table.md" --overwrite
log "wrote $W/table.md; training times in $W/train_times.txt"
