# The two commands of the README. Each sets up what it needs first (scripts/setup.sh).
.PHONY: setup setup-serve serve test check

# Everything `make test` needs: comfygen with its dev tools, the test ComfyUI, chromium/jq/curl.
setup:
	scripts/setup.sh

# Only what `make serve` needs: comfygen without dev tools and the ComfyUI it launches.
# The mode goes in COMFYGEN_SETUP (same as `scripts/setup.sh serve`), so both targets run the
# one command `scripts/setup.sh` that the README and tests/docs name.
setup-serve: export COMFYGEN_SETUP = serve
setup-serve:
	scripts/setup.sh

# The server with the built-in workflows, in front of a CPU ComfyUI it starts as a child process.
serve: setup-serve
	.venv/bin/comfygen serve

# The whole suite, integration tests against a real ComfyUI included; the static checks first
# (generated/ up to date, lint, import layers, dead code, declared = imported dependencies).
# pytest-xdist workers; tests/conftest.py keeps the tests that share a costly fixture on one.
PYTEST_WORKERS ?= 2
test: setup
	.venv/bin/comfygen check
	.venv/bin/ruff check comfygen server tests scripts benchmarks
	.venv/bin/lint-imports --no-cache
	.venv/bin/vulture
	.venv/bin/deptry .
	.venv/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup

check:
	.venv/bin/comfygen check
