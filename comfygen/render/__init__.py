"""Print the IR: JSON Schema, pydantic model (datamodel-code-generator), jinja templates, ruff."""
