#!/usr/bin/env bash
# The GPU acceptance run (bench/gpu_check.py): every GPU figure of the project in one go,
# in under 8 minutes on one GPU; at toy size on a machine without CUDA.
#   bash bench/gpu_check.sh [--out DIR] [--demo DIR] [--compile] [--cold-job] [--toy]
#                           [--compile-forward]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PYTHON" bench/gpu_check.py "$@"
