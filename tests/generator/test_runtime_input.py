"""Random fields of generated input models stay inside their declared bounds."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from comfygen.runtime import WorkflowInput, random_seed

RANDOM = {"x-comfygen-random": True}


class Narrow(WorkflowInput):
    model_config = ConfigDict(extra="forbid")
    seed: Annotated[int | None, Field(ge=10, le=12, json_schema_extra=RANDOM)] = None
    noise: Annotated[int | None, Field(ge=0, json_schema_extra=RANDOM)] = None


def test_random_values_respect_ge_and_le() -> None:
    seeds = {Narrow().seed for _ in range(200)}
    assert seeds == {10, 11, 12}
    assert all(0 <= Narrow().noise < 2**53 for _ in range(50))
    assert Narrow(seed=11).seed == 11


def test_schema_shows_the_plain_type_without_a_default() -> None:
    prop = Narrow.model_json_schema()["properties"]["seed"]
    assert prop["type"] == "integer" and "anyOf" not in prop and "default" not in prop
    assert (prop["minimum"], prop["maximum"]) == (10, 12)


def test_random_seed_bounds() -> None:
    assert {random_seed(3, 2) for _ in range(100)} == {2, 3}
    assert random_seed(0) == 0
