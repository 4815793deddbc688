"""Small inline SVG charts, drawn here so a report needs no network, script or plotting library.

Every label and tooltip goes through `html.escape`: customer ids and event types are user data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "diverging_bars", "horizontal_bars", "share_bar", "stacked_columns"]

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
_FONT = 'font-family="sans-serif" font-size="11"'


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>{"".join(body)}</svg>')


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {_FONT}>{escape(text)}</text>'


def _rect(x: float, y: float, w: float, h: float, colour: str, tip: str) -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{colour}">'
            f'<title>{escape(tip)}</title></rect>')


def _cut(label: str, size: int = 28) -> str:
    return label if len(label) <= size else label[:size - 1] + "…"


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    items = []
    for i, name in enumerate(names):
        items.append(_rect(x, y + i * 16, 10, 10, PALETTE[i % len(PALETTE)], name))
        items.append(_text(x + 14, y + i * 16 + 9, _cut(name)))
    return items


def stacked_columns(title: str, categories: Sequence[str], series: Mapping[str, Sequence[int]]) -> str:
    """One column per category (a day), stacked by series (event types), with a legend."""
    width, height, left, top, bottom = 760, 260, 50, 20, 40
    plot_w, plot_h = width - left - 200, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(categories))]
    peak = max(totals, default=0) or 1
    step = plot_w / max(len(categories), 1)
    body = [_text(left - 6, top + 4, f"{peak:,}", "end"), _text(left - 6, top + plot_h, "0", "end"),
            f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>']
    for i, category in enumerate(categories):
        y = float(top + plot_h)
        for s, (name, values) in enumerate(series.items()):
            h = values[i] / peak * plot_h
            y -= h
            body.append(_rect(left + i * step + step * 0.1, y, step * 0.8, h, PALETTE[s % len(PALETTE)],
                              f"{category} {name}: {values[i]:,}"))
        if len(categories) <= 16 or i % max(len(categories) // 8, 1) == 0:
            body.append(_text(left + i * step + step / 2, top + plot_h + 14, category[5:], "middle"))
    body += _legend(list(series), left + plot_w + 20, top)
    return _svg(width, max(height, top + 16 * len(series) + 10), title, body)


def horizontal_bars(title: str, bars: Sequence[tuple[str, int]]) -> str:
    """One bar per label, longest first as given."""
    left, bar_h, width = 200, 18, 760
    plot_w = width - left - 90
    peak = max((v for _, v in bars), default=0) or 1
    body = []
    for i, (label, value) in enumerate(bars):
        y = 10 + i * (bar_h + 4)
        body.append(_text(left - 6, y + 13, _cut(label), "end"))
        body.append(_rect(left, y, value / peak * plot_w, bar_h, PALETTE[0], f"{label}: {value:,}"))
        body.append(_text(left + value / peak * plot_w + 4, y + 13, f"{value:,}"))
    return _svg(width, 20 + len(bars) * (bar_h + 4), title, body)


def diverging_bars(title: str, bars: Sequence[tuple[str, int]]) -> str:
    """Signed bars around a middle axis: growth to the right, loss to the left."""
    left, bar_h, width = 220, 18, 760
    half = (width - left - 40) / 2
    middle = left + half
    peak = max((abs(v) for _, v in bars), default=0) or 1
    body = [f'<line x1="{middle}" y1="0" x2="{middle}" y2="{20 + len(bars) * (bar_h + 4)}" stroke="#888"/>']
    for i, (label, value) in enumerate(bars):
        y = 10 + i * (bar_h + 4)
        w = abs(value) / peak * half
        body.append(_text(left - 6, y + 13, _cut(label, 34), "end"))
        body.append(_rect(middle if value >= 0 else middle - w, y, w, bar_h,
                          PALETTE[2] if value >= 0 else PALETTE[3], f"{label}: {value:+,}"))
    return _svg(width, 20 + len(bars) * (bar_h + 4), title, body)


def share_bar(title: str, parts: Sequence[tuple[str, int]]) -> str:
    """One 100% bar split into the parts' shares, with a legend giving count and percent."""
    width, bar_h = 760, 28
    total = sum(v for _, v in parts) or 1
    body, x = [], 10.0
    for i, (name, value) in enumerate(parts):
        w = value / total * (width - 20)
        body.append(_rect(x, 10, w, bar_h, PALETTE[i % len(PALETTE)], f"{name}: {value:,} ({value / total:.1%})"))
        x += w
    for i, (name, value) in enumerate(parts):
        body.append(_rect(10 + i * 150, 50, 10, 10, PALETTE[i % len(PALETTE)], name))
        body.append(_text(24 + i * 150, 59, f"{name} {value:,} ({value / total:.1%})"))
    return _svg(width, 70, title, body)
