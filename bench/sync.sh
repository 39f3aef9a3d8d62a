#!/bin/sh
# Dev helper: run the bench against a clean worktree of HEAD, so that local changes in the
# working tree do not reach the results. Usage: bench/sync.sh [python -m bench args]
set -e
WT=${BENCH_WORKTREE:-/tmp/bench-wt}
MAIN=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$WT" ]; then
  git -C "$MAIN" worktree add --detach "$WT" HEAD >/dev/null
  ln -sfn "$MAIN/.tools" "$WT/.tools"; ln -sfn "$MAIN/.venv" "$WT/.venv"
fi
rm -rf "$WT/bench"
git -C "$WT" checkout -q --detach "$(git -C "$MAIN" rev-parse HEAD)"  # follow HEAD
rm -rf "$WT/bench"; cp -r "$MAIN/bench" "$WT/bench"
cd "$WT" && "$MAIN/.venv/bin/python" -m bench "$@"
status=$?
mkdir -p "$MAIN/bench/results" && cp -r "$WT/bench/results/." "$MAIN/bench/results/" 2>/dev/null || true
exit $status
