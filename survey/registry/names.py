"""The names people read for the registry's codes (agencies, services, provinces, channels),
in Persian and English: staff pages show `سازمان امور مالیاتی کشور`, not `TAX`.

A code the registry does not know (a plan written before an agency was renamed away, a typo in
a plan file) is shown as itself: a page never fails for a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from survey.models import Agency, Channel, Province, Service
from survey.registry import store

__all__ = ["KINDS", "CodeNames", "code_names"]

KINDS = ("agency", "service", "province", "channel")


@dataclass(frozen=True, slots=True)
class CodeNames:
    """Names by kind (agency, service, province, channel) and code, in both languages."""

    by_kind: Mapping[str, Mapping[str, Mapping[str, str]]]

    def name(self, kind: str, code: str, lang: str) -> str:
        """The name of `code` in `lang` (Persian, then English, then the code itself)."""
        entry = self.by_kind.get(kind, {}).get(code) or {}
        return entry.get(lang) or entry.get("fa") or entry.get("en") or code

    def stratum(self, key: str, lang: str, joiner: str = " · ") -> str:
        """A stratum key such as `agency=TAX|service=TAX-01|channel=online` in names."""
        parts = []
        for part in key.split("|"):
            kind, _, code = part.partition("=")
            parts.append(self.name(kind, code, lang) if code else part)
        return joiner.join(parts)


def code_names(session: Session) -> CodeNames:
    """Every registered code's names."""
    return CodeNames(
        {
            "agency": store.code_names(session, Agency),
            "service": store.code_names(session, Service),
            "province": store.code_names(session, Province),
            "channel": store.code_names(session, Channel),
        }
    )
