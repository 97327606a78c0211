#!/usr/bin/env bash
# Sets up everything mwt needs on a fresh Debian machine: the Fashion-MNIST package and a virtual
# environment in .venv with mwt installed (editable) with its training, export and test extras.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -z "${MWT_DATA:-}" ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing the Fashion-MNIST dataset package" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    python3 -m venv .venv
fi
# torch and torchvision are installed together from the registry so that their builds match (a lone
# CPU torch wheel on the machine cannot load torchvision's compiled ops). The install is redone
# whenever pyproject.toml changes, so an older .venv picks up new dependencies.
stamp=.venv/.mwt-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c "import torch, torchvision, mwt" >/dev/null 2>&1; then
    echo "setup: installing mwt and its dependencies into .venv (a few minutes the first time)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[all,dev]"
    echo "$want" > "$stamp"
fi
