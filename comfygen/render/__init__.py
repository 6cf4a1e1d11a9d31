"""Owns printing the IR as files: JSON Schema, pydantic models, jinja templates, ruff formatting."""
