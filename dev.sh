#!/usr/bin/env bash
# Voice agent developer commands (Linux/macOS). Windows: dev.ps1.
#   ./dev.sh run     install what is missing, start LiveKit + backend + agent + UI, print the URL
#   ./dev.sh test    install what is missing (Chromium too), run the unit and end-to-end tests
#   ./dev.sh setup   only install
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.requirements.sha"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating Python virtualenv in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python dependencies (first run: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --progress-bar off -r requirements.txt
  echo "$want" > "$STAMP"
fi

exec "$VENV/bin/python" -m devtools "$@"
