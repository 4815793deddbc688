"""The frame of a self-contained HTML page (inline CSS, no script, nothing fetched) and its tables.

Every value is escaped here or in `svg`: customer ids, event types, reasons and errors are user data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from html import escape
from typing import Any

_STYLE = """
body{font-family:sans-serif;margin:2em;color:#222;max-width:70em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2a7a2a}.bad{color:#b00020;font-weight:bold}
.note{color:#555;font-size:.9em}
"""


def page(title: str, sections: Iterable[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body><h1>{escape(title)}</h1>{''.join(sections)}</body></html>\n")


def section(heading: str, *parts: str) -> str:
    return f"<section><h2>{escape(heading)}</h2>{''.join(parts)}</section>"


def paragraph(text: str, css: str = "") -> str:
    return f'<p class="{css}">{escape(text)}</p>' if css else f"<p>{escape(text)}</p>"


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{escape('' if value is None else str(value))}</td>"
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, Decimal):
        return f'<td class="n">{value:,f}</td>'
    if isinstance(value, float):
        return f'<td class="n">{value:,.1f}</td>'
    return f"<td>{escape(str(value))}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Numbers right-aligned with thousands separators; everything else escaped text."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(_cell(v) for v in row)}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
