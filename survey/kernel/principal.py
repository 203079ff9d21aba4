"""Who a caller is: the value every domain passes to its services and the audit log.

`survey.access` resolves it from a bearer key or a session cookie; everything else only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from survey.errors import Forbidden

STAFF_ROLES = ("admin", "statistician", "agency", "viewer")
SESSION_LABEL = "web session"  # the `ApiKey.label` of a browser session (survey.access.sessions)
SESSION_LIFETIME = timedelta(hours=8)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: an agency's system (ingestion key) or a member of staff."""

    kind: str  # "agency" | "staff" | "cli"
    name: str
    role: str | None = None
    agency_id: int | None = None
    agency_code: str | None = None
    user_id: int | None = None
    key_id: int | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.kind}:{self.name}"

    def require_roles(self, *roles: str) -> None:
        if self.kind == "cli":
            return
        if self.kind != "staff" or self.role not in roles:
            raise Forbidden(f"this needs one of the roles {', '.join(roles)}")

    def require_agency(self) -> int:
        if self.kind != "agency" or self.agency_id is None:
            raise Forbidden("this needs an agency's API key")
        return self.agency_id


CLI_PRINCIPAL = Principal(kind="cli", name="console", role="admin")
