"""CSV without spreadsheet formulas: the service writes every CSV through `csv_text`, the
same function the analysis package's own command uses (analysis.spreadsheet)."""

from __future__ import annotations

from analysis.spreadsheet import FORMULA_STARTS, csv_text, neutralise

__all__ = ["FORMULA_STARTS", "csv_text", "neutralise"]
