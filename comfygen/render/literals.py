"""Python source literals for JSON-like values. Every string goes through `repr`, never pasted."""

from __future__ import annotations

import math
from typing import Any


def py_literal(value: Any) -> str:
    """Python source that evaluates to `value` (None, bool, int, float, str, list, dict)."""
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no JSON form")
        return repr(value)
    if isinstance(value, list | tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return (
            f"[{inner}]"
            if isinstance(value, list)
            else f"({inner}{',' if len(value) == 1 else ''})"
        )
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"dict key {k!r} is not a string")
            items.append(f"{py_literal(k)}: {py_literal(v)}")
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as a literal")
