#!/usr/bin/env bash
# The rows of docs/benchmark.md beside the 3-seed table of scripts/synthetic_benchmark.sh, with the project's own
# commands only. Each row is one evaluate JSON, $W/eval/NAME.json, named as its committed copy in
# docs/benchmark_results/ (which records the settings: the "predictions" key). Every step resumes when rerun
# (finished trainings, clips and evaluations are kept).
#   usage: scripts/synthetic_benchmark_rows.sh [WORKDIR]   (default bench/)
# PARTS (default all, in this order):
#   packaged    the packaged model's cells of the 3-seed table: full-0-SPLIT (10 steps), copy_reference-SPLIT,
#               ground_truth-SPLIT, vae_roundtrip-SPLIT (the model's VAE alone on the true frames: its ceiling)
#   presets     "Sampling presets" on the held-out splits: preset-default20-SPLIT (20 DDIM steps), preset-fast-SPLIT
#   validation  the validation split (8 held-out characters of dataset seed 1): val-copy_reference, val-full-0 (the
#               teacher, 10 steps), val-vae_roundtrip, val-no_temporal-0 (when synthetic_benchmark.sh's $W/runs/full-0/stage1 is there)
#   distill     the student: train distill, 500 steps (configs/train/mini_distill.yaml, about an hour of one thread);
#               student-0-SPLIT, val-student-0 (= the length check's step 500); the length check continues that run to
#               1,000 steps (--resume from its step-500 checkpoint; the rate is constant): val-student-at1000
#   curve       "Choosing the training length": stage 1 of seed 0 from synthetic_benchmark.sh's $W/init-0 in segments,
#               the EMA export of each (runs/curve-0/step-N) scored on the validation split: val-stage1-0-N
#   phased      issue 31: students of MODEL, 150 distillation steps each. The choice of the loss terms on the
#               validation split (val-distill-NAME, the variants of PHASED_CHOICE); the chosen 2- and 4-step phased
#               students (PHASED2_ARGS, PHASED4_ARGS) and the plain one on the held-out splits (phased2-SPLIT,
#               phased4-SPLIT, plain4-SPLIT); a light decoder trained into a copy of the 2-step student
#               (phased2-light-SPLIT; LIGHT_ARGS, default "--max-steps 1000 --channels 32 --blocks 2")
#   timing      after phased: one timed run of its rows and the teacher's on heldout_character ($W/timing.txt)
#   sampling    "Choosing the fast preset": sampling variants on the validation split with the curve's step-3000
#               export (or PROBE, e.g. the packaged model): val-sampling-{quality25,ddim20,ddim12,fast-allguided,
#               fast-nocache,fast,fast10}
# Environment: MODEL (the teacher and "full-0"; default the packaged model, which is synthetic_benchmark.sh's
# runs/full-0/stage2/final of seed 0); SPLITS="heldout_character heldout_motion"; CURVE_STEPS="1000 2000 3000 4000
# 5000"; SAMPLING_STEP=3000; DISTILL_STEPS=500; DISTILL_CHECK=1000; AA (the command; default animate-anyone).
# PREDICT_ARGS is appended to every synthetic predict (a smoke test: PREDICT_ARGS="--steps 1"; never for results).
# Wall times of predictions go to $W/row_times.txt. Run long parts with OMP_NUM_THREADS=1 (the committed rows were).
set -euo pipefail
W=${1:-bench}
AA=${AA:-animate-anyone}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${MODEL:-$ROOT/src/animate_anyone/assets/mini}
PARTS=${PARTS:-"packaged presets validation distill curve sampling phased timing"}
SPLITS=${SPLITS:-"heldout_character heldout_motion"}
CURVE_STEPS=${CURVE_STEPS:-"1000 2000 3000 4000 5000"}
SAMPLING_STEP=${SAMPLING_STEP:-3000}
DISTILL_STEPS=${DISTILL_STEPS:-500}
DISTILL_CHECK=${DISTILL_CHECK:-1000}
read -r -a EXTRA <<< "${PREDICT_ARGS:-}"
METRICS=l1,psnr,ssim,lpips,flicker,pck@0.05,pck@0.1
VAL="$W/val/heldout_character"
mkdir -p "$W/eval"
log() { echo "[$(date +%H:%M:%S)] $*"; }
want() { [[ " $PARTS " == *" $1 "* ]]; }
have() { [ -f "$1/model_index.json" ]; }

# score NAME SPLIT_DIR PRED_DIR PREDICT_ARGS...: predict the split into PRED_DIR, then evaluate it as NAME.
score() {
  local name=$1 data=$2 pred=$3
  shift 3
  local json="$W/eval/$name.json"
  [ -f "$json" ] && return
  log "$name"
  local start=$SECONDS
  $AA synthetic predict --data "$data" --out "$pred" --quiet "$@" "${EXTRA[@]}" > /dev/null
  echo "$name predict $((SECONDS - start)) s (OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset})" >> "$W/row_times.txt"
  $AA evaluate --pred "$pred" --gt "$data/videos" --pose-dir "$data/poses" --metrics "$METRICS" \
    --pose-backend regressor --out "$json" --quiet > /dev/null
}

# distill OUT MAX_STEPS [CHECKPOINT [OVERRIDE...]]: train distill of MODEL (resumed; from CHECKPOINT, if not empty,
# when OUT has none yet), with mini_distill.yaml and the overrides.
distill() {
  local out=$1 steps=$2 from=${3:-}
  shift $(( $# < 3 ? $# : 3 ))
  have "$out/final" && return
  local resume=(--resume)
  if [ -n "$from" ] && ! compgen -G "$out/checkpoints/step-*" > /dev/null; then resume=(--resume "$from"); fi
  log "train distill $out ($steps steps)"
  local start=$SECONDS
  $AA train distill --config "$ROOT/configs/train/mini_distill.yaml" "${resume[@]}" --quiet model.pretrained="$MODEL" \
    data.root="$W/data/train" output_dir="$out" seed=0 max_steps="$steps" "$@"
  echo "$(basename "$out") distill $((SECONDS - start)) s" >> "$W/row_times.txt"
}

log "data"
$AA synthetic make --out "$W/data" --clips 400 --heldout-clips 16 --size 64 --frames 24 --quiet
$AA synthetic make --out "$W/val" --clips 8 --seed 1 --splits heldout_character --size 64 --frames 24 --quiet

if want packaged; then
  for split in $SPLITS; do
    d="$W/data/$split"
    score "full-0-$split" "$d" "$W/pred/full-0/$split" --model "$MODEL" --steps 10
    score "copy_reference-$split" "$d" "$W/pred/copy_reference/$split" --copy-reference
    score "vae_roundtrip-$split" "$d" "$W/pred/vae_roundtrip/$split" --vae-roundtrip "$MODEL"
    json="$W/eval/ground_truth-$split.json"  # the pose oracle's ceiling: the ground truth scored against itself
    [ -f "$json" ] || $AA evaluate --pred "$d/videos" --gt "$d/videos" --pose-dir "$d/poses" --metrics pck@0.05,pck@0.1 \
      --pose-backend regressor --out "$json" --quiet > /dev/null
  done
fi

if want presets; then
  for split in $SPLITS; do
    d="$W/data/$split"
    score "preset-default20-$split" "$d" "$W/pred/presets/default20/$split" --model "$MODEL" --guidance 2 --steps 20
    score "preset-fast-$split" "$d" "$W/pred/presets/fast/$split" --model "$MODEL" --preset fast --guidance 2
  done
fi

if want validation; then
  score val-copy_reference "$VAL" "$W/pred/val/copy_reference" --copy-reference
  score val-full-0 "$VAL" "$W/pred/val/full-0" --model "$MODEL" --steps 10
  score val-vae_roundtrip "$VAL" "$W/pred/val/vae_roundtrip" --vae-roundtrip "$MODEL"
  stage1="$W/runs/full-0/stage1/final"
  if have "$stage1"; then score val-no_temporal-0 "$VAL" "$W/pred/val/no_temporal-0" --model "$stage1" --steps 10; fi
fi

if want distill; then
  student="$W/runs/student-0"
  distill "$student" "$DISTILL_STEPS"
  for split in $SPLITS; do
    score "student-0-$split" "$W/data/$split" "$W/pred/student-0/$split" --model "$student/final"
  done
  score val-student-0 "$VAL" "$W/pred/val/student-0" --model "$student/final"
  longer="$W/runs/student-0-at$DISTILL_CHECK"
  distill "$longer" "$DISTILL_CHECK" "$student/checkpoints/step-$(printf %06d "$DISTILL_STEPS")"
  score "val-student-at$DISTILL_CHECK" "$VAL" "$W/pred/val/student-at$DISTILL_CHECK" --model "$longer/final"
fi

if want curve || { want sampling && [ -z "${PROBE:-}" ]; }; then
  have "$W/init-0" || { echo "curve, sampling: no $W/init-0; scripts/synthetic_benchmark.sh makes it" >&2; exit 2; }
  run="$W/runs/curve-0"
  for step in $CURVE_STEPS; do
    snap="$run/step-$step"
    if ! have "$snap"; then
      latest=$(compgen -G "$run/train/checkpoints/step-*" | sort | tail -n1 || true)
      latest=${latest##*step-}
      if [ -n "$latest" ] && [ $((10#$latest)) -gt "$step" ]; then
        echo "curve: $run/train is already past step $step (at $((10#$latest))); list CURVE_STEPS in order" >&2
        exit 2
      fi
      log "train stage1 seed 0 to $step steps"
      start=$SECONDS
      $AA train stage1 --config "$ROOT/configs/train/mini_stage1.yaml" --resume --quiet model.pretrained="$W/init-0" \
        data.root="$W/data/train" output_dir="$run/train" seed=0 max_steps="$step"
      echo "curve-0 stage1 to $step $((SECONDS - start)) s" >> "$W/row_times.txt"
      rm -rf "$snap.partial" && cp -r "$run/train/final" "$snap.partial" && mv "$snap.partial" "$snap"
    fi
    if want curve; then score "val-stage1-0-$step" "$VAL" "$W/pred/val/stage1-0-$step" --model "$snap" --steps 10; fi
  done
fi

if want sampling; then
  probe=${PROBE:-$W/runs/curve-0/step-$SAMPLING_STEP}
  have "$probe" || { echo "sampling: no $probe; add $SAMPLING_STEP to CURVE_STEPS" >&2; exit 2; }
  sample() { score "val-sampling-$1" "$VAL" "$W/pred/val/sampling-$1" --model "$probe" --guidance 2 "${@:2}"; }
  sample quality25 --preset quality
  sample ddim20 --steps 20
  sample ddim12 --steps 12
  sample fast-allguided --preset fast 'guidance_interval=[0,1]'
  sample fast-nocache --preset fast cache_interval=1
  sample fast --preset fast
  sample fast10 --preset fast --steps 10
fi
if want phased; then
  # name=override,override,... (no spaces); the runs are $W/runs/distill-NAME
  PHASED_CHOICE=${PHASED_CHOICE:-"plain4= phased2=distill.phases=2 p2-motion2=distill.phases=2,distill.motion_weight=2
    p2-temporal1=distill.phases=2,distill.temporal_weight=1 p2-temporal4=distill.phases=2,distill.temporal_weight=4
    p2-real1=distill.phases=2,distill.real_temporal_weight=1 p2-real3=distill.phases=2,distill.real_temporal_weight=3
    phased4=distill.phases=4,distill.solver_steps=40
    p4-real1=distill.phases=4,distill.solver_steps=40,distill.real_temporal_weight=1
    p4-real3=distill.phases=4,distill.solver_steps=40,distill.real_temporal_weight=3
    p4-real1-temporal4=distill.phases=4,distill.solver_steps=40,distill.real_temporal_weight=1,distill.temporal_weight=4"}
  for variant in $PHASED_CHOICE; do
    name=${variant%%=*}
    IFS=, read -r -a overrides <<< "${variant#*=}"
    distill "$W/runs/distill-$name" 150 "" "${overrides[@]}"
    score "val-distill-$name" "$VAL" "$W/pred/val/distill-$name" --model "$W/runs/distill-$name/final"
  done
  IFS=, read -r -a args2 <<< "${PHASED2_ARGS:-distill.phases=2,distill.real_temporal_weight=1}"
  IFS=, read -r -a args4 <<< "${PHASED4_ARGS:-distill.phases=4,distill.solver_steps=40,distill.real_temporal_weight=1}"
  distill "$W/runs/phased2" 150 "" "${args2[@]}"
  distill "$W/runs/phased4" 150 "" "${args4[@]}"
  distill "$W/runs/plain4" 150
  light="$W/runs/phased2-light"
  if ! [ -d "$light/light_decoder" ]; then
    rm -rf "$light" && cp -r "$W/runs/phased2/final" "$light"
    log "train light-decoder"
    start=$SECONDS
    read -r -a light_args <<< "${LIGHT_ARGS:---max-steps 1000 --channels 32 --blocks 2}"  # a CPU-sized decoder
    $AA train light-decoder --model "$light" --data "$W/data/train" "${light_args[@]}" --quiet
    echo "light-decoder $((SECONDS - start)) s" >> "$W/row_times.txt"
  fi
  for split in $SPLITS; do
    for name in phased2 phased4 plain4; do
      score "$name-$split" "$W/data/$split" "$W/pred/$name/$split" --model "$W/runs/$name/final"
    done
    score "phased2-light-$split" "$W/data/$split" "$W/pred/phased2-light/$split" --model "$light" --decoder light
  done
fi

if want timing; then
  light="$W/runs/phased2-light"
  if ! [ -f "$W/timing.txt" ]; then  # one run, one after another: the wall time of the 16 clips per row
    d="$W/data/heldout_character"
    rows=("default20|--model $MODEL --guidance 2 --steps 20" "fast|--model $MODEL --preset fast --guidance 2"
      "plain4|--model $W/runs/plain4/final" "phased4|--model $W/runs/phased4/final"
      "phased2|--model $W/runs/phased2/final" "phased2-light|--model $light --decoder light")
    rm -f "$W/timing.txt.partial"
    for row in "${rows[@]}"; do
      read -r -a args <<< "${row#*|}"
      rm -rf "$W/pred/timing/${row%%|*}"
      start=$SECONDS
      $AA synthetic predict --data "$d" --out "$W/pred/timing/${row%%|*}" --quiet "${args[@]}" "${EXTRA[@]}" > /dev/null
      echo "${row%%|*} $((SECONDS - start)) s (16 clips, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset})" >> "$W/timing.txt.partial"
    done
    mv "$W/timing.txt.partial" "$W/timing.txt"
  fi
fi
log "evaluate JSONs in $W/eval; prediction times in $W/row_times.txt"
