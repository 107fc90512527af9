#!/usr/bin/env bash
# A separate venv for the DP peer: smartnoise-synth's DP-CTGAN (it pins opacus 0.14, ours is 1.6). torch first and
# pinned: the CPU build. smartnoise-synth 1.0.8 imports `packaging` without declaring it.
set -euo pipefail
VENV=${1:-.benchmarks-venv-smartnoise}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import snsynth" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0
  "$VENV/bin/pip" install -q smartnoise-synth==1.0.8 packaging==26.4 opacus==0.14.0 pandas==2.3.3 numpy==2.4.6
fi
echo "$VENV/bin/python"
