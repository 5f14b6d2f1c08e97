"""The report's histograms as small SVG documents, written directly.

Every evaluation run executes its report notebook; drawing two bar charts with matplotlib cost the run
more than half a second (import, layout, PNG encoding), longer than reading the whole report. A
histogram is a few rectangles: SVG text is built in microseconds, stays sharp at any zoom and keeps
in the saved notebook as text. The chart carries its own white background so it reads the same in
JupyterLab's light and dark themes, as a PNG would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 40
BAR, AXIS, TEXT, MARK = "#1f77b4", "#555555", "#222222", "#d62728"


@dataclass(frozen=True)
class Chart:
    """An SVG document that displays itself in a notebook (``_repr_svg_``)."""

    svg: str

    def _repr_svg_(self) -> str:
        return self.svg


def histogram(
    counts: Sequence[int], low: float, high: float, *, title: str, x_label: str,
    markers: Sequence[tuple[str, float]] = (),
) -> Chart:  # fmt: skip
    """Bars for ``counts`` over equal buckets from ``low`` to ``high``; ``markers`` are labelled dashed lines."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = (high - low) or 1.0
    tallest = max(counts, default=0) or 1
    bar_w = plot_w / max(len(counts), 1)

    def x_at(value: float) -> float:
        return LEFT + (value - low) / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{WIDTH / 2:.0f}" y="17" text-anchor="middle" font-size="13" fill="{TEXT}">{escape(title)}</text>',
    ]
    for i, count in enumerate(counts):
        h = count / tallest * plot_h
        parts.append(
            f'<rect x="{LEFT + i * bar_w + 0.5:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{BAR}"><title>{count:,}</title></rect>'
        )
    axis_y = TOP + plot_h
    parts += [
        f'<line x1="{LEFT}" y1="{axis_y}" x2="{LEFT + plot_w}" y2="{axis_y}" stroke="{AXIS}"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{axis_y}" stroke="{AXIS}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" fill="{TEXT}">{tallest:,}</text>',
        f'<text x="{LEFT - 4}" y="{axis_y}" text-anchor="end" fill="{TEXT}">0</text>',
        f'<text x="{LEFT}" y="{axis_y + 14}" text-anchor="middle" fill="{TEXT}">{_tick(low)}</text>',
        f'<text x="{LEFT + plot_w}" y="{axis_y + 14}" text-anchor="middle" fill="{TEXT}">{_tick(high)}</text>',
        f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle" fill="{TEXT}">{escape(x_label)}</text>',
        f'<text x="12" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" fill="{TEXT}" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">items</text>',
    ]
    for label, value in markers:
        if low <= value <= high:
            x = x_at(value)
            parts += [
                f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{axis_y}" stroke="{MARK}" stroke-dasharray="4 3"/>',
                f'<text x="{x + 3:.1f}" y="{TOP + 10}" fill="{MARK}">{escape(label)}</text>',
            ]
    parts.append("</svg>")
    return Chart("".join(parts))


def side_by_side(charts: Sequence[Chart]) -> Chart:
    """Several charts in one row (one per evaluator), as one document."""
    inner = "".join(chart.svg.replace("<svg ", f'<svg x="{i * WIDTH}" y="0" ', 1) for i, chart in enumerate(charts))
    width = WIDTH * max(len(charts), 1)
    return Chart(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
        f'viewBox="0 0 {width} {HEIGHT}">{inner}</svg>'
    )


def _tick(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:g}"
