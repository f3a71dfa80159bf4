#!/usr/bin/env bash
# nin-search GPU check (< 8 minutes on one GPU): nin_cifar10 training img/s at batch 128/512 with
# AMP and torch.compile on/off, a 10-trial search on CIFAR-sized data, GPU memory peak.
#
#   bash benchmarks/gpu_check.sh                              # on a machine with CUDA
#   NIN_SEARCH_GPU_CHECK_CPU=1 bash benchmarks/gpu_check.sh   # CPU smoke test (tiny sizes)
#
# Exit status: 0 passed, 1 a check failed, 2 no GPU, 124 over the time limit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [[ ! -x "$PYTHON" ]]; then
    PYTHON="$(command -v python3)"
fi
LIMIT_S="${NIN_SEARCH_GPU_CHECK_LIMIT:-470}"   # hard limit; the script stops starting runs at 420 s

if [[ "${NIN_SEARCH_GPU_CHECK_CPU:-0}" != "1" ]] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
fi
"$PYTHON" -c 'import torch, nin_search; print("torch", torch.__version__, "cuda", torch.version.cuda)'

status=0
timeout --kill-after=15 "$LIMIT_S" "$PYTHON" benchmarks/gpu_check.py || status=$?
if [[ $status -eq 124 ]]; then
    echo "GPU CHECK FAILED: over ${LIMIT_S} s"
fi
exit "$status"
