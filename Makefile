# The two commands of the README. Each sets up what it needs first (scripts/setup.sh).
.PHONY: setup serve test check lint

setup:
	scripts/setup.sh

# The server with the built-in workflows, in front of a CPU ComfyUI it starts as a child process.
serve: setup
	.venv/bin/comfygen serve

# The whole suite, integration tests against a real ComfyUI included.
test: setup
	.venv/bin/comfygen check
	.venv/bin/ruff check comfygen server tests scripts benchmarks
	.venv/bin/pytest

check:
	.venv/bin/comfygen check
