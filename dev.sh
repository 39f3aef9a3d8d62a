#!/usr/bin/env bash
# Voice agent developer commands (Linux/macOS). Windows: dev.ps1.
#   ./dev.sh run     install what is missing, start LiveKit + backend + agent + UI, print the URL
#   ./dev.sh test    install what is missing (Chromium too), run lint, the unit and end-to-end tests
#   ./dev.sh converse [name]   play the scripted conversations in Chromium, report each turn
#   ./dev.sh soak [N]  the fault soak: N random cycles (default 50) on the production shape, then a report
#   ./dev.sh setup   only install
#   ./dev.sh lock    re-resolve uv.lock (and export requirements/*.txt) after editing the ranges in pyproject.toml
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV=.venv

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Python 3.11 or newer is needed: set PYTHON=/path/to/python3.11 (found: $("$PYTHON" --version 2>&1))" >&2
    exit 1
  fi
  echo "==> creating Python virtualenv in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -x "$VENV/bin/uv" ]; then
  echo "==> installing uv into $VENV (requirements/uv.txt: uv.lock's version, hash-checked)"
  "$VENV/bin/python" -m pip install --quiet --require-hashes --no-deps -r requirements/uv.txt
fi
# Install what uv.lock has and the virtualenv lacks (exact versions, every file hash-checked;
# nothing when they agree). --locked refuses a uv.lock that pyproject.toml's ranges no longer
# match, except for `lock`, which re-resolves it. --compile-bytecode, as pip does: without the
# .pyc files (and where PYTHONDONTWRITEBYTECODE is set) every process would compile its imports
# again, ~2 s more to start each backend, worker and job process.
locked=--locked
if [ "${1:-}" = lock ]; then locked=--frozen; fi
"$VENV/bin/uv" sync "$locked" --compile-bytecode

exec "$VENV/bin/python" -m devtools "$@"
