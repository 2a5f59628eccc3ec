"""Charts as inline SVG, drawn here so the report needs no library and no network.

Every text that reaches the SVG goes through :func:`esc`; the result is marked
safe for the template only after that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


def esc(value: object) -> str:
    return str(escape(str(value)))


def _svg(width: int, height: int, body: list[str], title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{esc(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>{"".join(body)}</svg>'
    )


@dataclass(frozen=True)
class FunnelBar:
    label: str
    value: float
    note: str  # e.g. "70.4% went on"


def funnel(bars: Sequence[FunnelBar], title: str, width: int = 640) -> Markup:
    """A centred funnel: one bar per step, its width proportional to the deals that reached it."""
    row, label_w = 44, 200
    top = max((b.value for b in bars), default=0) or 1
    area = width - label_w - 130
    body = []
    for i, b in enumerate(bars):
        y = i * row + 4
        w = max(2.0, area * b.value / top)
        x = label_w + (area - w) / 2
        count = esc(f"{b.value:,.0f}")
        # The count sits inside a bar wide enough for it, else just beside it.
        count_text = (
            f'<text class="value" x="{label_w + area / 2:.1f}" y="{y + 23}" text-anchor="middle">{count}</text>'
            if w >= 80
            else f'<text class="note" x="{x + w + 6:.1f}" y="{y + 23}">{count}</text>'
        )
        body.append(
            f'<text class="axis" x="{label_w - 10}" y="{y + 23}" text-anchor="end">{esc(_short(b.label, 30))}</text>'
            f'<rect class="bar step{i % 6}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 10}" rx="4"/>'
            f'{count_text}<text class="note" x="{label_w + area + 10}" y="{y + 23}">{esc(b.note)}</text>'
        )
    return _svg(width, len(bars) * row + 8, body, title)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as text
    secondary: float | None = None  # drawn inside the bar (e.g. weighted within total)
    mark: float | None = None  # a tick across the bar (e.g. a target)


def bars(items: Sequence[Bar], title: str, width: int = 640) -> Markup:
    """Horizontal bars, one per item; an optional darker inner bar for a part of each value, and a tick."""
    row, label_w, value_w = 30, 200, 190
    top = max((v for b in items for v in (b.value, b.secondary, b.mark) if v is not None), default=0) or 1
    area = width - label_w - value_w
    body = []
    for i, b in enumerate(items):
        y = i * row + 4
        w = area * max(b.value, 0) / top
        body.append(
            f'<text class="axis" x="{label_w - 10}" y="{y + 17}" text-anchor="end">{esc(_short(b.label, 28))}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{row - 8}" rx="3"/>'
        )
        if b.secondary is not None:
            inner = area * max(b.secondary, 0) / top
            body.append(f'<rect class="bar inner" x="{label_w}" y="{y + 5}" width="{inner:.1f}" height="{row - 18}" rx="2"/>')
        if b.mark is not None:
            x = label_w + area * max(b.mark, 0) / top
            body.append(f'<line class="mark" x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}" y2="{y + row - 6}"/>')
        end = max(w, area * max(b.secondary or 0, 0) / top)  # past an inner bar longer than the bar itself
        body.append(f'<text class="note" x="{label_w + end + 6:.1f}" y="{y + 17}">{esc(b.shown)}</text>')
    return _svg(width, len(items) * row + 8, body, title)


def line(points: Sequence[tuple[str, float | None]], title: str, shown: Callable[[float], str], width: int = 640) -> Markup:
    """A line over labelled points (gaps where a value is missing), each point labelled with its value."""
    height, left, right, top_pad, bottom = 180, 20, 20, 28, 34
    values = [v for _, v in points if v is not None]
    if not values:
        return _svg(width, 40, [f'<text class="note" x="0" y="24">{esc("no figures yet")}</text>'], title)
    lo, hi = min(values + [0.0]), max(values)
    span = (hi - lo) or 1
    step = (width - left - right) / max(len(points) - 1, 1)
    coords = [
        (left + i * step if len(points) > 1 else width / 2, None if v is None else top_pad + (height - top_pad - bottom) * (1 - (v - lo) / span))
        for i, (_, v) in enumerate(points)
    ]
    body = [f'<line class="grid" x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}"/>']
    path = " ".join(f"{'M' if i == 0 or coords[i - 1][1] is None else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords) if y is not None)
    body.append(f'<path class="line" d="{path}"/>')
    for (label, v), (x, y) in zip(points, coords):
        anchor = "start" if x <= left else "end" if x >= width - right else "middle"
        body.append(f'<text class="axis" x="{x:.1f}" y="{height - 12}" text-anchor="{anchor}">{esc(label)}</text>')
        if y is not None and v is not None:
            body.append(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="4"/>')
            body.append(f'<text class="note" x="{x:.1f}" y="{y - 10:.1f}" text-anchor="{anchor}">{esc(shown(v))}</text>')
    return _svg(width, height, body, title)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
