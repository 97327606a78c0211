#!/usr/bin/env bash
# GPU figures for docs/results.md, on a machine with a CUDA GPU: training speed (standard vs
# modular, AMP off/bf16, full-width VGG16 and ResNet18 at 32x32), the paper's 108-minute figure
# estimated from measured epochs, and module latency on onnxruntime's CUDA provider.
# Usage: bash benchmarks/gpu.sh [--data-dir CIFAR10_FOLDER] [other benchmarks/gpu.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu.sh: no CUDA GPU visible to torch here; nothing to measure" >&2
    exit 2
fi
# onnxruntime-gpu replaces the CPU onnxruntime (both install the same module).
if ! "$python" -c "import onnxruntime as o, sys; sys.exit(0 if 'CUDAExecutionProvider' in o.get_available_providers() else 1)"; then
    "$python" -m pip install -q -e ".[train,bench]"
    "$python" -m pip uninstall -q -y onnxruntime
    "$python" -m pip install -q --force-reinstall --no-deps "onnxruntime-gpu>=1.17"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$python" benchmarks/gpu.py --out results/gpu "$@"
