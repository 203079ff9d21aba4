"""The printed report as a PDF file, so that nobody has to know the browser's print dialog.

Debian's Chromium (the browser the tests drive) prints the report page headless
(`--print-to-pdf`): the page is written to a temporary folder as one self-contained file (its
stylesheets inline, no script, links resolved against the public address), so Chromium fetches
nothing. Page size, margins, the running header with the release's identity and the page
numbers come from the page's own print CSS (`@page` margin boxes, which Chromium prints since
version 131), so the PDF and a print from the browser look the same.

A PDF is made once per release, language and what its pages show (a correction published
later adds a banner) and kept under `<var_dir>/reports/`: published releases never change.
Without Chromium, or when it fails, `PdfUnavailable` says so (the page answers 503).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["FORMAT", "PdfUnavailable", "cached_pdf", "print_pdf"]

log = logging.getLogger("survey.publication.pdf")
TIMEOUT_SECONDS = 120
FORMAT = 1  # the report's layout: raise it when the layout changes, so kept PDFs are redone
_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-pdf-header-footer",  # the page prints its own header and page numbers
)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class PdfUnavailable(Exception):
    """The PDF cannot be made (no Chromium, or it failed); `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _browser(chromium: str) -> str:
    found = shutil.which(chromium)
    if found is None:
        raise PdfUnavailable(
            f"the PDF cannot be made on this server: the browser that prints it ({chromium!r}; "
            "Debian's chromium, or SURVEY_CHROMIUM) is not installed. The report page prints "
            "the same from any browser."
        )
    return found


def print_pdf(chromium: str, html: str, *, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """`html` (a self-contained page) printed to PDF by Chromium headless."""
    browser = _browser(chromium)
    with tempfile.TemporaryDirectory(prefix="survey-pdf-") as folder:
        page = Path(folder) / "report.html"
        out = Path(folder) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        args = [browser, *_FLAGS, f"--user-data-dir={Path(folder) / 'profile'}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
        args += [f"--print-to-pdf={out}", page.as_uri()]
        try:
            done = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PdfUnavailable(
                f"the PDF could not be made: the browser did not finish within {timeout:.0f} s"
            ) from None
        except OSError as exc:
            message = f"the PDF could not be made: the browser did not start ({exc})"
            raise PdfUnavailable(message) from None
        body = out.read_bytes() if out.is_file() else b""
        if done.returncode != 0 or not body.startswith(b"%PDF"):
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            log.warning("chromium failed to print a report (exit %s): %s", done.returncode, tail)
            raise PdfUnavailable(
                f"the PDF could not be made: the browser failed (exit {done.returncode})"
            )
        return body


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def cached_pdf(
    folder: Path, identity: str, chromium: str, html: Callable[[], str]
) -> tuple[bytes, bool]:
    """The PDF kept under `folder` for `identity` (what the report shows), made from `html()`
    once; returns (bytes, whether it was made now). Concurrent requests for one report wait
    for the first instead of starting a browser each."""
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
    path = folder / f"report-{digest}.pdf"
    if path.is_file():
        return path.read_bytes(), False
    with _lock(digest):
        if path.is_file():
            return path.read_bytes(), False
        body = print_pdf(chromium, html())
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        partial.write_bytes(body)
        partial.replace(path)  # atomic: a reader sees the whole file or none
        return body, True
