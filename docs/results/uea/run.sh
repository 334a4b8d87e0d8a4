#!/usr/bin/env bash
# The three UEA studies (configs/study_uea.py), one after the other; resumable: rerun it.
#   [PYTHON=.venv/bin/python] bash docs/results/uea/run.sh [SHARED_DATA_DIR]   (default ../shared/data/uea)
set -euo pipefail
cd "$(dirname "$0")/../../.."
data="${1:-../shared/data/uea}"
for name in Epilepsy UWaveGestureLibrary Handwriting; do
  "${PYTHON:-python}" launch/fewshot.py --config configs/study_uea.py --config.dataset "uea:$name" \
    --config.data.manual_dir "$data/$name" --workdir "docs/results/uea/$name"
done
