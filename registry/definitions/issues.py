"""Validation issues, collected and raised only at the boundary (as dbt-semantic-interfaces does)."""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from tally.errors import DefinitionError


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Issue:
    """One problem with a definition, located as precisely as the source allows."""

    file: str
    line: int
    code: str
    message: str
    hint: str | None = None
    object: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def cli_lines(self) -> list[str]:
        """``file:line: error[code]: message`` and an indented hint, as the CLI prints them."""
        lines = [f"{self.location}: {self.severity.value}[{self.code}]: {self.message}"]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return lines

    # builtins.: inside the class body `object` is the field above.
    def as_dict(self) -> dict[str, builtins.object]:
        return {
            "file": self.file,
            "line": self.line,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "object": self.object,
            "severity": self.severity.value,
        }


@dataclass
class IssueSet:
    """Errors and warnings found in one pass over a set of definitions."""

    issues: list[Issue] = field(default_factory=list)

    def add(
        self,
        code: str,
        message: str,
        *,
        file: str,
        line: int = 0,
        hint: str | None = None,
        object: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.issues.append(Issue(file, line, code, message, hint, object, severity))

    def extend(self, other: Iterable[Issue]) -> None:
        self.issues.extend(other)

    @property
    def errors(self) -> list[Issue]:
        return sorted({i for i in self.issues if i.severity is Severity.ERROR})

    @property
    def warnings(self) -> list[Issue]:
        return sorted({i for i in self.issues if i.severity is Severity.WARNING})

    @property
    def has_errors(self) -> bool:
        return any(i.severity is Severity.ERROR for i in self.issues)

    def checked(self) -> None:
        """Raises DefinitionError carrying every error when there is at least one."""
        errors = self.errors
        if not errors:
            return
        first = errors[0]
        noun = "error" if len(errors) == 1 else "errors"
        raise DefinitionError(
            f"{len(errors)} {noun} in definitions; first: {first.message}",
            code="invalid_definitions",
            hint=first.hint,
            location=first.location,
            details=[i.as_dict() for i in errors],
        )


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest known names, or None when nothing is close.

    Example:
        >>> did_you_mean("revnue", ["revenue", "mrr"])
        "did you mean 'revenue'?"
    """
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"
