"""The one exception tree of the service's domain layer.

    SurveyError
    ├── ConfigurationError      settings that cannot work (raised at start-up, never per request)
    ├── InvalidInput            bad input from a person or a file; carries per-field problems
    │   └── PlanError           a sampling-plan file that cannot be activated
    ├── NotAuthenticated        no or unknown credentials                      -> 401
    ├── Forbidden               known caller, not allowed to do this            -> 403
    ├── NotFound                the thing named does not exist                  -> 404
    └── Conflict                the request contradicts stored state            -> 409

Domain services raise these; `survey.app` maps them to HTTP in one table and the CLI prints
their message. No domain module knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (field or row) and what."""

    message: str
    field: str | None = None
    row: int | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(self.field)
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.row is not None:
            out["row"] = self.row
        return out


class SurveyError(Exception):
    """Base of every error the domain layer raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(SurveyError):
    """Settings that cannot work."""


class InvalidInput(SurveyError):
    """Input that breaks a rule; `problems` lists every problem found, not just the first."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class PlanError(InvalidInput):
    """A sampling plan that fails validation."""


class NotAuthenticated(SurveyError):
    """Missing or unknown credentials."""


class Forbidden(SurveyError):
    """The caller is known but may not do this."""


class NotFound(SurveyError):
    """The named object does not exist."""


class Conflict(SurveyError):
    """The request contradicts what is stored (for example a code that already exists)."""
