#!/usr/bin/env bash
# A separate venv for the ctgan peer (its pins differ from ours). torch first and pinned: CPU build from disk.
set -euo pipefail
VENV=${1:-.benchmarks-venv-ctgan}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import ctgan" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.13.0
  # ctgan's own dependencies pinned too (the versions of 2026-12-08): after an unpinned rebuild of this venv on
  # 2026-12-08, ctgan's Adult utility ratio was 0.837 where the earlier venv (versions not recorded) gave 0.924 at
  # the same seeds (benchmarks/RESULTS.md)
  "$VENV/bin/pip" install -q ctgan==0.12.1 rdt==2.0.0 scikit-learn==1.9.1 pandas==2.3.3 numpy==2.4.6 scipy==1.17.1
fi
echo "$VENV/bin/python"
