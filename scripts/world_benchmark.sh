#!/usr/bin/env bash
# The world rows of docs/benchmark.md ("Long videos, another body, a steady background"), end to end with the
# project's own commands: the world splits -> predictions of the packaged miniature model with each window mode
# (long clips), as fresh 24-frame clips (the reference for drift), and with each driving skeleton (cross-body)
# -> synthetic measure (+ evaluate for PSNR/LPIPS of the cross-body rows). Every step resumes when rerun
# (finished clips, measure and evaluate files are kept), so an interrupted run continues where it stopped.
#   usage: scripts/world_benchmark.sh [WORKDIR]   (default bench-world/)
# Environment: SEEDS="0 1" (generator seeds: clip k uses seed + k); MODES="shifted moore anchored";
# LONG_CLIPS=4, CROSS_CLIPS=8 (clips per split); STEPS=10 (denoising steps, guidance 2: the benchmark's);
# PARTS="long cross" (which half to run); MODEL (default: the packaged miniature model).
# On 2 cores, run two lanes with one thread each, e.g. `OMP_NUM_THREADS=1 SEEDS=0 scripts/...` beside
# `OMP_NUM_THREADS=1 SEEDS=1 scripts/...`; then scripts/world_report.py WORKDIR draws the plots and the table.
set -euo pipefail
W=${1:-bench-world}
SEEDS=${SEEDS:-"0 1"}
MODES=${MODES:-"shifted moore anchored"}
PARTS=${PARTS:-"long cross"}
STEPS=${STEPS:-10}
AA=${AA:-animate-anyone}
PY=${PY:-python}
MODEL=${MODEL:-$($PY -c 'from animate_anyone.assets import packaged_model; print(packaged_model())')}
mkdir -p "$W/measure" "$W/eval"
log() { echo "[$(date +%H:%M:%S)] $*"; }
common=(--model "$MODEL" --steps "$STEPS" --quiet)

log "data"
$AA synthetic make --out "$W/long" --clips 1 --heldout-clips "${LONG_CLIPS:-4}" --splits long --size 64 --frames 24 \
  --long-frames 240 --quiet
$AA synthetic make --out "$W/cross" --clips 1 --heldout-clips "${CROSS_CLIPS:-8}" \
  --splits cross_body_small,cross_body_large --size 64 --frames 24 --quiet

measure() {  # measure NAME DATA PRED [FRESH]
  local out="$W/measure/$1.json"
  [ -f "$out" ] && return
  $AA synthetic measure --data "$2" --pred "$3" ${4:+--fresh "$4"} --out "$out" --quiet
}
evaluate() {  # evaluate NAME DATA PRED: PSNR, SSIM, LPIPS, L1 against the truth
  local out="$W/eval/$1.json"
  [ -f "$out" ] || $AA evaluate --pred "$3" --gt "$2/videos" --metrics psnr,ssim,lpips,l1 --out "$out" --quiet
}

for seed in $SEEDS; do
  if [[ " $PARTS " == *" long "* ]]; then
    data="$W/long/long"
    log "long seed $seed: fresh 24-frame clips"
    fresh="$W/pred/long-fresh-$seed"
    $AA synthetic predict "${common[@]}" --data "$data" --out "$fresh" --seed "$seed" --chunk 24
    for mode in $MODES; do
      log "long seed $seed: $mode"
      $AA synthetic predict "${common[@]}" --data "$data" --out "$W/pred/long-$mode-$seed" --seed "$seed" \
        --window-mode "$mode"
      measure "long-$mode-$seed" "$data" "$W/pred/long-$mode-$seed" "$fresh"
      evaluate "long-$mode-$seed" "$data" "$W/pred/long-$mode-$seed"
    done
    measure "long-fresh-$seed" "$data" "$fresh"
    evaluate "long-fresh-$seed" "$data" "$fresh"
  fi
  if [[ " $PARTS " == *" cross "* ]]; then
    for split in cross_body_small cross_body_large; do
      data="$W/cross/$split"
      for driver in raw aligned truth; do
        log "$split seed $seed: $driver skeleton"
        pred="$W/pred/$split-$driver-$seed"
        $AA synthetic predict "${common[@]}" --data "$data" --out "$pred" --seed "$seed" --driver "$driver"
        measure "$split-$driver-$seed" "$data" "$pred"
        evaluate "$split-$driver-$seed" "$data" "$pred"
      done
    done
  fi
done
# Baselines without a model: the truth itself (its static background moves by the encoding noise only) and
# copy-reference.
if [[ " $PARTS " == *" long "* ]]; then
  measure long-truth "$W/long/long" "$W/long/long/videos"
  $AA synthetic predict --copy-reference --data "$W/long/long" --out "$W/pred/long-copy" --quiet
  measure long-copy "$W/long/long" "$W/pred/long-copy"
fi
if [[ " $PARTS " == *" cross "* ]]; then
  for split in cross_body_small cross_body_large; do
    measure "$split-copied" "$W/cross/$split" "$W/cross/$split/copied"
  done
fi
log "done"
