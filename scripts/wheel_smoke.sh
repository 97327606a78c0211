#!/usr/bin/env bash
# The installed product, not the source tree: build the wheel, install it with its extras into a
# fresh virtual environment, and walk the main path from an empty folder outside the repository
# (train 1 epoch on a small sample, modularize, export, compose, predict, serve until /health
# answers). A package left out of the wheel, or a top-level name that should not be there, fails here.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t mwt-wheel-XXXXXX)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "wheel smoke: building the wheel" >&2
"$repo/.venv/bin/python" -m pip wheel -q --no-deps -w "$work/dist" "$repo" 2>&1 | grep -v "^WARNING: Location" || true
wheel=$(ls "$work"/dist/mwt-*.whl)
tops=$(python3 -c "import sys, zipfile; print(' '.join(sorted({n.split('/')[0] for n in zipfile.ZipFile(sys.argv[1]).namelist() if not n.split('/')[0].endswith('.dist-info')})))" "$wheel")
if [ "$tops" != "exporter mwt runtime" ]; then
    echo "wheel smoke: the wheel's top-level names are '$tops', not 'exporter mwt runtime'" >&2; exit 1
fi

echo "wheel smoke: installing $(basename "$wheel")[train,serve] into a fresh venv" >&2
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "${wheel}[train,serve]" 2>&1 | grep -v "^WARNING: Location" || true
mwt="$work/venv/bin/mwt"
mkdir "$work/empty" && cd "$work/empty"
"$work/venv/bin/python" -c "import mwt, os; assert 'site-packages' in mwt.__file__, mwt.__file__"

echo "wheel smoke: train, modularize, export, compose, predict, serve" >&2
"$mwt" train --model vgg11 --width 0.125 --epochs 1 --limit 512 --quiet -o model.pt
"$mwt" modularize model.pt --limit 512 --quiet > /dev/null
"$mwt" export --classes sneaker,bag model.pt -o sneaker-bag.onnx > /dev/null
"$work/venv/bin/mwt-export" --classes sneaker model.pt -o sneaker.onnx > /dev/null
"$mwt" export --classes bag model.pt -o bag.onnx > /dev/null
"$mwt" compose sneaker.onnx bag.onnx -o composed.onnx > /dev/null
"$work/venv/bin/python" -c "from PIL import Image; Image.new('L', (28, 28), 128).save('shoe.png')"
"$mwt" predict composed.onnx shoe.png | grep -q "shoe.png"
port=$("$work/venv/bin/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$mwt" serve sneaker-bag.onnx --port "$port" > serve.log 2>&1 &
server=$!
for _ in $(seq 1 120); do
    if "$work/venv/bin/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
        "http://127.0.0.1:$port/health" 2>/dev/null; then
        echo "wheel smoke: passed (the installed wheel trains, exports, composes, predicts and serves)" >&2
        exit 0
    fi
    kill -0 "$server" 2>/dev/null || { cat serve.log >&2; exit 1; }
    sleep 0.5
done
echo "wheel smoke: the server never answered /health" >&2; cat serve.log >&2; exit 1
