"""The methodology pages of a release: the short note in the reader's language (a phone screen
or two, written by `analysis.methodology` from the release's own rules) and, one link away,
the technical note the release stored (the written methods and every computation fact, in
English: it is for statisticians).

A release computed before the short note was stored gets it written from its other notes (the
same text function, the facts read back), so every release's page is in the page's language.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from survey.publication.view import Fmt, Release, release_header

__all__ = ["methodology_page", "summary_html", "technical_page"]


def _markdown(text: str) -> Markup:
    """Markdown as HTML; raw HTML in it is escaped (the notes are data, never markup)."""
    from markdown_it import MarkdownIt

    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text or ""))


def summary_text(release: Release, lang: str) -> str:
    """The release's short note in `lang` (stored, or written from its notes)."""
    notes = release.tables.notes or {}
    stored = notes.get(f"summary_{lang}")
    if stored:
        return stored
    from analysis.methodology import facts_from_notes, summary

    return summary(facts_from_notes(notes), lang)


def summary_html(release: Release, lang: str) -> Markup:
    return _markdown(summary_text(release, lang))


def _technical_address(release: Release, base: str, lang: str) -> str:
    query = "?lang=en" if lang == "en" else ""
    return f"{base or f'/releases/{release.id}'}/methodology/technical{query}"


def methodology_page(release: Release, lang: str, base: str = "") -> dict[str, Any]:
    """The short note, the link to the technical detail and the release's facts."""
    fmt = Fmt(lang)
    return {
        "release": release_header(release, fmt, base),
        "summary": summary_html(release, lang),
        "technical": _technical_address(release, base, lang),
        "plan_versions": [fmt.integer(v) for v in release.plan_versions],
        "questionnaire_versions": list(release.questionnaire_versions),
    }


def technical_page(release: Release, lang: str, base: str = "") -> dict[str, Any]:
    """The technical note the release stored (English), under the page's own headings."""
    fmt = Fmt(lang)
    query = "?lang=en" if lang == "en" else ""
    return {
        "release": release_header(release, fmt, base),
        "note": _markdown(release.methodology),
        "summary_address": f"{base}/methodology{query}",
    }
