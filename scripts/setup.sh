#!/usr/bin/env bash
# Install everything zkml needs into this checkout: a Python venv (.venv) and the pinned
# JavaScript toolchain (node_modules). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

command -v python3 >/dev/null || { echo "python3 (3.10+) is required" >&2; exit 1; }
command -v node >/dev/null || { echo "Node.js (18+) and npm are required" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is required" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  say "creating the Python virtual environment .venv"
  python3 -m venv .venv
fi
PY=.venv/bin/python
stamp=.venv/.zkml-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # torch first and pinned exactly: 2.13.0 is the CPU wheel; a looser pin pulls a CUDA build
  if ! "$PY" -c "import torch" 2>/dev/null; then
    say "installing torch==2.13.0 (CPU)"
    "$PY" -m pip install -q --disable-pip-version-check torch==2.13.0
  fi
  say "installing zkml and its Python dependencies"
  "$PY" -m pip install -q --disable-pip-version-check -e ".[examples,test,ray]"
  touch "$stamp"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the pinned JavaScript toolchain (circom2, circomlib, snarkjs, solc, anvil)"
  npm ci --no-audit --no-fund --loglevel=error
fi
say "setup complete"
