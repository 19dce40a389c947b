#!/usr/bin/env bash
# Set up and run the main job on the bundled demo dataset: select, annotate, report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "report"
. .venv/bin/activate
mkdir -p out
car-select run examples/demo_alpaca.json -o out/demo_selected.json --n1 20 --n2 1 \
    --annotated out/demo_annotated.jsonl --report out/demo_report.html --overwrite "$@"
