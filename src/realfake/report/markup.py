"""The pieces of the report's HTML page (:mod:`realfake.report.page`): numbers, intervals, tables, figures and
notes, each escaped where it holds text."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path


def note(text: str) -> str:
    """A note paragraph of HTML ``text`` (not escaped)."""
    return f'<p class="note">{text}</p>'


def ordinal(number: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 99 -> "99th"."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def number(value, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, or "n/a" for None and non-finite values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def interval(record: dict, key: str, digits: int = 3) -> str:
    """``record[key]`` and its interval (``key_low``, ``key_high``): "0.512 [0.430, 0.590]"."""
    low, high = number(record.get(key + "_low"), digits), number(record.get(key + "_high"), digits)
    return f"{number(record.get(key), digits)} [{low}, {high}]"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] | None = None) -> str:
    """An HTML table (cells escaped; the first column left-aligned), ``row_classes`` the rows' CSS classes."""
    text_columns = {0}
    head = "".join(
        f'<th class="text">{html.escape(h)}</th>' if i in text_columns else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            (
                f'<td class="text">{html.escape(str(cell))}</td>'
                if i in text_columns
                else f"<td>{html.escape(str(cell))}</td>"
            )
            for i, cell in enumerate(row)
        )
        css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image(path: Path, alt: str, caption: str = "") -> str:
    """A figure of the image ``path`` by file name (it sits next to ``index.html``), with its caption."""
    caption_html = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{html.escape(Path(path).name)}" alt="{html.escape(alt)}">{caption_html}</figure>'


def to_float(value) -> float:
    """``value`` as a float; NaN when it is none."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
