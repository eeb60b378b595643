"""How the client writes a CSV cell: numbers to a stated number of significant figures, and
formula-like text made inert for spreadsheets.

Formula-like cells follow OWASP's CSV-injection rule: a cell that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is run as a formula by Excel, LibreOffice and Google Sheets; a
leading single quote makes it text (the quote is visible in the cell, which is the point). A cell
that is a plain number (``-0.5``, ``+1e3``) is not a formula and is left as it is.
https://owasp.org/www-community/attacks/CSV_Injection
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def inert(cell: str) -> str:
    """``cell``, with a leading single quote when a spreadsheet would run it as a formula."""
    if cell.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def significant(cell: str, digits: int) -> str:
    """A number's text rounded to ``digits`` significant figures (``digits`` 0: as it came); an
    empty or non-numeric cell as it came."""
    if digits <= 0 or not cell:
        return cell
    try:
        value = float(cell)
    except ValueError:
        return cell
    return f"{value:.{digits}g}"
