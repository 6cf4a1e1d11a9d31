#!/usr/bin/env bash
# Set up everything comfygen needs on a fresh machine; safe to run again (each step is cached).
#  1. .venv with comfygen and its dev tools (reinstalled when pyproject.toml changes)
#  2. the test ComfyUI 0.3.75 on CPU, cached outside the checkout (scripts/install_comfyui.py)
#  3. Debian's chromium, jq and curl for the browser and docs tests (no browser download), as root
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.comfygen-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
  echo "$want" > "$stamp"
fi

.venv/bin/python scripts/install_comfyui.py

# Debian packages the tests drive: chromium (browser tests, the frontend reference), jq and curl
# (the documented shell examples are run as written).
missing=()
for cmd in chromium jq curl; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || echo "warning: could not install ${missing[*]}; tests that need them will fail" >&2
  else
    echo "warning: missing ${missing[*]} (sudo apt-get install ${missing[*]}); tests that need them will fail" >&2
  fi
fi
