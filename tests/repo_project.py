"""This repository as a comfygen project: its generated workflows, loaded the way `comfygen
serve` loads them (from the project folder, after the staleness check)."""

from __future__ import annotations

from pathlib import Path

from comfygen.config import load_config
from comfygen.registry import load_workflows

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = load_workflows(load_config(ROOT))
