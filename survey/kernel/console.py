"""What the administration commands share: who the console user is, tables, input files."""

from __future__ import annotations

import getpass
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from survey.errors import InvalidInput
from survey.kernel.principal import Principal


def cli_principal() -> Principal:
    """The console user, as the audit log names them (`cli:<login name>`)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "console"
    return Principal(kind="cli", name=name or "console", role="admin")


def read_text_file(path: str) -> str:
    """A UTF-8 text file's content; InvalidInput naming the file when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from None


def _width(text: str) -> int:
    # Combining marks (Persian diacritics) take no column of their own.
    return sum(0 if unicodedata.combining(c) else 1 for c in text)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows as aligned columns under a header line; None shows as '-'."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [_width(h) for h in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], _width(value))
    lines = []
    for row in [list(headers), *cells]:
        padded = [v + " " * (widths[i] - _width(v)) for i, v in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def print_key_notice(prefix: str, use: str) -> None:
    print(
        f"Key {prefix}... is shown only this once (only its hash is stored); "
        f"keep it safe and use it for {use}:"
    )
