"""Fixtures for the workflow tests: node definitions from the checked-in /object_info snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from comfygen.nodedefs import NodeDefs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def nodedefs() -> NodeDefs:
    return NodeDefs.load(ROOT / "workflow_templates" / "object_info.json")
