#!/usr/bin/env bash
# Create .venv and install car-select with the given extras (default: none). Idempotent.
# torch is installed first, pinned to the CPU build this machine provides locally (an unpinned torch
# would pull several GB of CUDA packages); on a machine with a GPU, install the torch you want first.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
if [ -n "$extras" ]; then
    python -m pip install -q -e ".[$extras]"
else
    python -m pip install -q -e .
fi
