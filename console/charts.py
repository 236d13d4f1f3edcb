"""Charts as server-rendered SVG: stacked bars whose series differ by pattern as well as colour,
with a legend and the numbers as a table beside them, so no reader depends on colour alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    colour: str
    pattern: str  # solid, hatch, cross, dots, lines


@dataclass(frozen=True, slots=True)
class Bar:
    label: str  # shown under the bar when ``labelled``
    values: dict[str, int]
    labelled: bool = True

    @property
    def total(self) -> int:
        return sum(self.values.values())


_PATTERNS = {
    "hatch": '<path d="M0,6 L6,0" stroke="#fff" stroke-width="1.6"/>',
    "cross": '<path d="M0,6 L6,0 M0,0 L6,6" stroke="#fff" stroke-width="1.2"/>',
    "dots": '<circle cx="3" cy="3" r="1.3" fill="#fff"/>',
    "lines": '<path d="M0,3 L6,3" stroke="#fff" stroke-width="1.4"/>',
}


def _defs(chart_id: str, series: Sequence[Series]) -> str:
    parts = []
    for n, s in enumerate(series):
        if s.pattern == "solid":
            continue
        parts.append(f'<pattern id="{chart_id}-p{n}" width="6" height="6" patternUnits="userSpaceOnUse">'
                     f'<rect width="6" height="6" fill="{s.colour}"/>{_PATTERNS[s.pattern]}</pattern>')
    return f"<defs>{''.join(parts)}</defs>"


def _fill(chart_id: str, n: int, s: Series) -> str:
    return s.colour if s.pattern == "solid" else f"url(#{chart_id}-p{n})"


def stacked_bars(chart_id: str, title: str, bars: Sequence[Bar], series: Sequence[Series], *,
                 width: int = 900, height: int = 220) -> Markup:
    """A stacked bar chart as an accessible SVG (role img, a title naming what it shows and its total)."""
    left, bottom, top = 40, 28, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max((b.total for b in bars), default=0)
    scale = _nice(peak)
    step = plot_w / max(len(bars), 1)
    total = sum(b.total for b in bars)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{chart_id}-t">',
           f'<title id="{chart_id}-t">{escape(title)}: {total} in all, at most {peak} in one bar</title>',
           _defs(chart_id, series)]
    for tick in (0, scale // 2, scale):
        y = top + plot_h - (tick / scale * plot_h if scale else 0)
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for i, bar in enumerate(bars):
        x = left + i * step
        y = top + plot_h
        for n, s in enumerate(series):
            value = bar.values.get(s.name, 0)
            if not value or not scale:
                continue
            h = value / scale * plot_h
            y -= h
            out.append(f'<rect x="{x + step * 0.1:.1f}" y="{y:.1f}" width="{max(step * 0.8, 1):.1f}" '
                       f'height="{h:.1f}" fill="{_fill(chart_id, n, s)}" stroke="#1b1f24" stroke-width="0.3">'
                       f'<title>{escape(bar.label)}: {escape(s.name)} {value}</title></rect>')
        if bar.labelled:
            at = x + step / 2 if step > 20 else x
            anchor = "middle" if step > 20 else "end" if at > width - 60 else "start"
            base = top + plot_h
            out.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{base}" y2="{base + 4}" stroke="#57606a"/>'
                       f'<text x="{at:.1f}" y="{height - 10}" text-anchor="{anchor}">{escape(bar.label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def legend(chart_id: str, series: Sequence[Series]) -> Markup:
    """The series with their swatches (pattern and colour) as a list."""
    items = []
    for n, s in enumerate(series):
        swatch = (f'<svg width="14" height="14" aria-hidden="true">{_defs(chart_id + "-l", series)}'
                  f'<rect width="14" height="14" fill="{_fill(chart_id + "-l", n, s)}" stroke="#1b1f24"/></svg>')
        items.append(f"<li>{swatch} {escape(s.name)}</li>")
    return Markup(f'<ul class="legend">{"".join(items)}</ul>')


def _nice(peak: int) -> int:
    """A round axis maximum at or above ``peak`` (1, 2 or 5 times a power of ten)."""
    if peak <= 0:
        return 0
    magnitude = 1
    while True:
        for m in (1, 2, 5):
            if m * magnitude >= peak:
                return m * magnitude
        magnitude *= 10
