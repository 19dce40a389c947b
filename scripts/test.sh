#!/usr/bin/env bash
# Set up (venv, package with test extras, Debian chromium for the report's browser test) and run
# every test. Tests on ../shared/data skip with a reason where that folder is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "test,report,hf,ray"
.ci/install-browser
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -m pytest -q "$@"
