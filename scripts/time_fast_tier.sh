#!/usr/bin/env bash
# The fast tier's size and wall time, measured in a fresh clone of HEAD, written as JSON (the README links the result
# instead of stating numbers that drift):
#   bash scripts/time_fast_tier.sh [OUT_JSON]     (default docs/performance_results/fast_tier.json)
# Uses this checkout's .venv; run it with nothing else on the machine (the README's figure is for a quiet machine).
set -euo pipefail
OUT=${1:-docs/performance_results/fast_tier.json}
HERE=$(pwd)
CLONE=$(mktemp -d)
trap 'rm -rf "$CLONE"' EXIT
git clone -q "$HERE" "$CLONE/repo"
cd "$CLONE/repo"
start=$(date +%s.%N)
PYTHONPATH="$CLONE/repo/src" "$HERE/.venv/bin/python" -m pytest -q -p no:cacheprovider > "$CLONE/log.txt" 2>&1 || status=$?
end=$(date +%s.%N)
summary=$(grep -E "^[0-9]+ (passed|failed)" "$CLONE/log.txt" | tail -1)
cd "$HERE"
"$HERE/.venv/bin/python" - "$OUT" "$summary" "$start" "$end" "$(git rev-parse --short HEAD)" "$(nproc)" "${status:-0}" <<'EOF'
import json, re, sys
out, summary, start, end, commit, cores, status = sys.argv[1:]
counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)", summary)}
record = {
    "what": "the fast tier (python -m pytest) in a fresh clone",
    "command": "bash scripts/time_fast_tier.sh",
    "commit": commit,
    "cpu_cores": int(cores),
    "wall_seconds": round(float(end) - float(start), 1),
    "counts": counts,
    "pytest_summary": summary,
    "exit_status": int(status),
}
with open(out, "w") as f:
    f.write(json.dumps(record, indent=1) + "\n")
print(json.dumps(record))
EOF
