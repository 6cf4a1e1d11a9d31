"""Base class of every generated input model."""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from pydantic import BaseModel, model_validator
from pydantic.json_schema import JsonSchemaValue

RANDOM_KEY = "x-comfygen-random"
"""JSON Schema key that marks a field whose missing value is drawn at random per request."""

MAX_SEED = 2**53 - 1
"""Random seeds stay below 2**53 so that JavaScript clients read them back exactly."""


def random_seed(upper: int | None = None, lower: int = 0) -> int:
    """A fresh seed in [lower, min(upper, lower + 2**53 - 1)]."""
    top = lower + MAX_SEED if upper is None else min(upper, lower + MAX_SEED)
    return lower + secrets.randbelow(top - lower + 1)


class WorkflowInput(BaseModel):
    """Public inputs of one workflow; subclasses are generated from the mapping spec."""

    random_fields: ClassVar[dict[str, tuple[int, int | None]]] = {}
    """Fields drawn at random when missing or null, with their (lower, upper) bounds."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        found: dict[str, tuple[int, int | None]] = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get(RANDOM_KEY):
                lower, upper = 0, None
                for meta in info.metadata:
                    if getattr(meta, "ge", None) is not None:
                        lower = int(meta.ge)
                    if getattr(meta, "le", None) is not None:
                        upper = int(meta.le)
                found[name] = (lower, upper)
        cls.random_fields = found

    @model_validator(mode="after")
    def _draw_random_values(self) -> WorkflowInput:
        for name, (lower, upper) in self.random_fields.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, random_seed(upper, lower))
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema = handler.resolve_ref_schema(schema)
        for name in cls.random_fields:
            prop = schema.get("properties", {}).get(name)
            if prop is not None:
                _present_random_field(prop)
        return schema


def _present_random_field(prop: dict[str, Any]) -> None:
    """Show a random field as its plain type: `null` is accepted but is not part of the contract."""
    variants = prop.pop("anyOf", None)
    if variants:
        for variant in variants:
            if variant.get("type") != "null":
                prop.update(variant)
                break
    if prop.get("default", ...) is None:
        del prop["default"]
