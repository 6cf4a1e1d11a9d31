#!/usr/bin/env bash
# Set up what comfygen needs on a fresh machine; safe to run again (each step is cached).
#
#   scripts/setup.sh [serve|test]      (default: $COMFYGEN_SETUP, else test)
#
#  1. .venv with comfygen; in test mode with its dev tools too (pytest, playwright, the linters).
#     Reinstalled when pyproject.toml changes, or when a serve-only .venv is asked for the tests.
#  2. the test ComfyUI 0.3.75 on CPU, cached outside the checkout (scripts/install_comfyui.py);
#     `comfygen serve` launches it, so both modes install it
#  3. test mode only: Debian's chromium, jq and curl for the browser and docs tests (no browser
#     download), as root
#  4. test mode only: Azurite (npm) into .cache/npm for the storage tests
#  5. test mode only: the client generators the client tests drive, pinned, in .cache/client-tools
#     (openapi-python-client in a virtualenv of its own: it caps typer below comfygen's; npm's
#     openapi-typescript and typescript in a project-local node_modules)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

mode="${1:-${COMFYGEN_SETUP:-test}}"
case "$mode" in
  serve) extras="" ;;
  test) extras="[dev,otel]" ;;  # the tests trace with the otel extra too
  *) echo "usage: scripts/setup.sh [serve|test]" >&2; exit 2 ;;
esac

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The stamp names the mode and pyproject.toml's hash. A test install also serves; a serve install
# is upgraded (dev extras added) the first time the tests need it.
stamp=.venv/.comfygen-installed
hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$have" != "test $hash" ] && [ "$have" != "$mode $hash" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -e ".$extras"
  echo "$mode $hash" > "$stamp"
fi

.venv/bin/python scripts/install_comfyui.py

[ "$mode" = test ] || exit 0

# Debian packages the tests drive: chromium (browser tests, the frontend reference), jq and curl
# (the documented shell examples are run as written), npm (the TypeScript client test's tools).
missing=()
for cmd in chromium jq curl npm; do
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

# Azurite, Microsoft's Azure Blob emulator, for tests/storage: from the npm registry into a
# project-local folder (.cache/npm, git-ignored); the tests fail when it is missing.
AZURITE_VERSION=3.35.0
if [ "$(cat .cache/npm/.azurite-version 2>/dev/null || true)" != "$AZURITE_VERSION" ]; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p .cache/npm
    npm install --silent --no-audit --no-fund --prefix .cache/npm "azurite@$AZURITE_VERSION" \
      && echo "$AZURITE_VERSION" > .cache/npm/.azurite-version \
      || echo "warning: could not install azurite; tests/storage will fail" >&2
  else
    echo "warning: npm is missing (apt-get install npm); tests/storage will fail" >&2
  fi
fi

# Client generators (tests/clients): pinned, outside comfygen's .venv, cached by their pins.
tools=.cache/client-tools
pins="openapi-python-client==0.29.1 openapi-typescript@7.13.0 typescript@5.9.3"
if [ "$(cat "$tools/.installed" 2>/dev/null || true)" != "$pins" ]; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p "$tools"
    [ -x "$tools/venv/bin/python" ] || .venv/bin/python -m venv "$tools/venv"
    "$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "openapi-python-client==0.29.1"
    npm install --silent --no-audit --no-fund --prefix "$tools/npm" \
      "openapi-typescript@7.13.0" "typescript@5.9.3"
    echo "$pins" > "$tools/.installed"
  else
    echo "warning: npm is missing (apt-get install npm); the client tests will fail" >&2
  fi
fi
