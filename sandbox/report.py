"""The demo's incident report: a timeline and an SVG plot of an indicator against its objective.

Plain SVG written by hand, so the report needs no plotting library; any browser shows it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Mark:
    at: float  # unix time
    label: str


def svg_plot(
    series: list[tuple[float, float]],
    objective: float,
    marks: list[Mark],
    title: str,
    unit: str,
    width: int = 760,
    height: int = 300,
) -> str:
    """A line chart of `series` (unix time, value) with the objective as a dashed line and marks as verticals."""
    left, right, top, bottom = 60, 20, 40, 40
    if not series:
        series = [(marks[0].at if marks else 0.0, 0.0)]
    t0 = min([t for t, _ in series] + [m.at for m in marks])
    t1 = max([t for t, _ in series] + [m.at for m in marks])
    t1 = t1 if t1 > t0 else t0 + 1
    vmax = max([v for _, v in series] + [objective]) * 1.15 or 1.0

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * (width - left - right)

    def y(v: float) -> float:
        return top + (1 - v / vmax) * (height - top - bottom)

    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#444"/>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#444"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = vmax * frac
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}{html.escape(unit)}</text>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        t = t0 + (t1 - t0) * frac
        parts.append(f'<text x="{x(t):.1f}" y="{height - bottom + 16}" text-anchor="middle">+{t - t0:.0f}s</text>')
    parts.append(
        f'<line x1="{left}" y1="{y(objective):.1f}" x2="{width - right}" y2="{y(objective):.1f}" '
        f'stroke="#c00" stroke-dasharray="6,4"/>'
    )
    parts.append(
        f'<text x="{width - right}" y="{y(objective) - 5:.1f}" text-anchor="end" fill="#c00">objective '
        f"{objective:g}{html.escape(unit)}</text>"
    )
    for i, mark in enumerate(marks):
        parts.append(
            f'<line x1="{x(mark.at):.1f}" y1="{top}" x2="{x(mark.at):.1f}" y2="{height - bottom}" stroke="#06c" '
            f'stroke-dasharray="2,3"/>'
        )
        # A label in the right half reads leftwards from its line, so it never runs off the plot.
        right_half = x(mark.at) > (left + width - right) / 2
        anchor, dx = ("end", -4) if right_half else ("start", 4)
        parts.append(
            f'<text x="{x(mark.at) + dx:.1f}" y="{top + 14 + 14 * (i % 3)}" text-anchor="{anchor}" fill="#06c">'
            f"{html.escape(mark.label)}</text>"
        )
    parts.append(f'<polyline fill="none" stroke="#222" stroke-width="2" points="{points}"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_report(
    path: Path,
    title: str,
    timeline: list[tuple[float, str]],
    decision: dict[str, object] | None,
    plot_file: str,
) -> None:
    """A Markdown incident report next to its plot."""
    t0 = timeline[0][0] if timeline else 0.0
    lines = [f"# {title}", "", "## Timeline", ""]
    lines += [f"- +{at - t0:5.1f}s {text}" for at, text in timeline]
    if decision:
        lines += ["", "## Decision", "", f"- action: `{decision.get('action')}` {decision.get('params') or ''}"]
        lines += [f"- {reason}" for reason in decision.get("reasons") or []]  # type: ignore[union-attr]
    lines += ["", "## Indicator", "", f"![indicator against objective]({plot_file})", ""]
    path.write_text("\n".join(lines))
