#!/bin/bash
# Issue 16's three seeds trained on the device tool's GPU (stop 61; not yet run on a GPU): see gpu_runs.py.
# Here, once (from the repository root):
#   mkdir -p .fmnist && cp /usr/share/datasets/fashion-mnist/*.gz .fmnist/
#   echo /.fmnist/ >> .git/info/exclude; echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl typer click shellingham rich markdown-it-py mdurl pygments
# then `run` with carry [".fmnist", ".whl"] (and ".gpu16", a folder of earlier NAME.tar.gz, to go on after a deadline):
#   bash docs/results/reuse-stop61/gpu16.sh [--resume .gpu16] [--deadline 540]
set -euo pipefail
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then  # mwt's command line needs typer, which the device's image may lack
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MWT_DATA="$PWD/.fmnist" OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.cuda.is_available()); sys.exit(0 if torch.cuda.is_available() else 2)"
python3 docs/results/reuse-stop61/gpu_runs.py "${OUT:-/tmp/gpu16-out}" "$@"
