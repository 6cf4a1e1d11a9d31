"""Problems found while reading sources: values with a severity, reported all at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong (or worth a warning) with a source file, located as precisely as known."""

    file: str
    message: str
    node: str | None = None
    input: str | None = None
    field: str | None = None
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = [self.file]
        if self.field:
            where.append(f"field {self.field!r}")
        if self.node is not None:
            where.append(f"node {self.node}")
        if self.input:
            where.append(f"input {self.input!r}")
        return f"{self.severity}: {', '.join(where)}: {self.message}"


class GenerationError(Exception):
    """Raised with every problem found when at least one of them is an error."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.severity != Severity.ERROR))
        super().__init__("\n".join(str(p) for p in self.problems))


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.severity == Severity.ERROR for p in problems)
