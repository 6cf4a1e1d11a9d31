"""comfygen as its users get it: the environment of a process that must not see this checkout.

The `dist` and `installed` fixtures (tests/conftest.py) build the wheel once per session and
install it into a fresh virtualenv; tests/packaging and the getting-started guide use both."""

from __future__ import annotations

import os


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would point Python at the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("COMFYGEN_")}
    return {**env, "COLUMNS": "200", **extra}
