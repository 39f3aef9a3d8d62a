#!/usr/bin/env bash
# Voice agent developer commands (Linux/macOS). Windows: dev.ps1.
#   ./dev.sh run     install what is missing, start LiveKit + backend + agent + UI, print the URL
#   ./dev.sh test    install what is missing (Chromium too), run lint, the unit and end-to-end tests
#   ./dev.sh converse [name]   play the scripted conversations in Chromium, report each turn
#   ./dev.sh soak [N]  the fault soak: N random cycles (default 50) on the production shape, then a report
#   ./dev.sh setup   only install
#   ./dev.sh lock    re-resolve requirements/*.txt after editing the ranges in pyproject.toml
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV=.venv
LOCK=requirements/dev.txt  # exact versions and hashes (runtime + development)
STAMP="$VENV/.requirements.sha"

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Python 3.11 or newer is needed: set PYTHON=/path/to/python3.11 (found: $("$PYTHON" --version 2>&1))" >&2
    exit 1
  fi
  echo "==> creating Python virtualenv in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
want=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python dependencies from $LOCK (first run: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --progress-bar off --require-hashes -r "$LOCK"
  echo "$want" > "$STAMP"
fi

exec "$VENV/bin/python" -m devtools "$@"
