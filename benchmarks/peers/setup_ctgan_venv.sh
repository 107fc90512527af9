#!/usr/bin/env bash
# A separate venv for the ctgan peer (its pins differ from ours). torch first and pinned: CPU build from disk.
set -euo pipefail
VENV=${1:-.benchmarks-venv-ctgan}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import ctgan" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0
  "$VENV/bin/pip" install -q ctgan==0.12.1
fi
echo "$VENV/bin/python"
