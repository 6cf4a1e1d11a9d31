"""Safe names: endpoint path segments, Python identifiers and module names."""

from __future__ import annotations

import keyword
import re

from pydantic import BaseModel

PATH_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_FIELDS = frozenset(dir(BaseModel))


def path_segment_problem(segment: str) -> str | None:
    """Why `segment` cannot be a workflow model or name folder, or None when it can."""
    if not PATH_SEGMENT.match(segment) or ".." in segment:
        return (
            f"{segment!r} is not a usable endpoint path segment: use letters, digits, '.', '-' "
            "and '_', starting with a letter or digit"
        )
    return None


def module_name(segment: str) -> str:
    """A Python module name for a path segment: `sd3.5-medium` -> `sd3_5_medium`."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", segment).lower()
    if not name or name[0].isdigit():
        name = "w_" + name
    if keyword.iskeyword(name):
        name += "_"
    return name


def field_name_problem(name: str) -> str | None:
    """Why `name` cannot be a public input field, or None when it can."""
    if not IDENTIFIER.match(name):
        return f"{name!r} is not a valid field name: use letters, digits and '_'"
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword; pick another field name"
    if name.startswith("model_") or name in _RESERVED_FIELDS:
        return f"{name!r} clashes with pydantic's own attributes; pick another field name"
    if name.startswith("_"):
        return f"{name!r} starts with '_'; public field names cannot be private"
    return None
