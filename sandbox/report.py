"""The demo's incident report: a timeline and a plot of an indicator against its objective.

Drawn with the collection's review rendering (``_journal.review_render``): the same plots (pygal, inline SVG)
and the same escaping as the post-incident review. Writes ``incident.md`` next to the plot's ``.svg`` and one
self-contained ``incident.html`` page (inline CSS and SVG, nothing fetched).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import review_render


@dataclass
class Mark:
    at: float  # unix time
    label: str


def _moment(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def svg_plot(
    series: list[tuple[float, float]],
    objective: float,
    marks: list[Mark],
    title: str,
    unit: str,
    inline: bool = False,
) -> str:
    """A line chart of `series` (unix time, value), the objective dashed and the marks as verticals."""
    times = [t for t, _v in series] + [m.at for m in marks]
    t0 = min(times) if times else 0.0
    return review_render.line_plot(
        "incident",
        title,
        unit,
        {title: [(_moment(t), v) for t, v in series]},
        ("objective", objective),
        [(_moment(m.at), m.label) for m in marks],
        x_label=lambda moment: f"+{moment.timestamp() - t0:.0f}s",
        inline=inline,
    )


def write_report(
    path: Path,
    title: str,
    timeline: list[tuple[float, str]],
    decision: dict[str, object] | None,
    plot_file: str,
    plot_svg: str | None = None,
) -> None:
    """A Markdown incident report next to its plot, and (given the inline plot) the same as one HTML page."""
    t0 = timeline[0][0] if timeline else 0.0
    esc, md = review_render.esc, review_render.md_escape
    reasons = [str(r) for r in (decision or {}).get("reasons") or []]  # type: ignore[attr-defined]
    action = f"{(decision or {}).get('action')} {(decision or {}).get('params') or ''}".strip()
    lines = [f"# {md(title)}", "", "## Timeline", ""]
    lines += [f"- +{at - t0:5.1f}s {md(text)}" for at, text in timeline]
    if decision:
        lines += ["", "## Decision", "", f"- action: {md(action)}"]
        lines += [f"- {md(reason)}" for reason in reasons]
    lines += ["", "## Indicator", "", f"![indicator against objective]({plot_file})", ""]
    path.write_text("\n".join(lines))
    if plot_svg is None:
        return
    body = [f"<h1>{esc(title)}</h1>", "<h2>Timeline</h2>", "<table><tbody>"]
    body += [f'<tr><td class="num">+{at - t0:.1f}s</td><td>{esc(text)}</td></tr>' for at, text in timeline]
    body.append("</tbody></table>")
    if decision:
        body += ["<h2>Decision</h2>", f"<p><b>{esc(action)}</b></p>", "<ul>"]
        body += [f"<li>{esc(reason)}</li>" for reason in reasons] + ["</ul>"]
    body += ["<h2>Indicator</h2>", f'<div class="plots">{plot_svg}</div>']
    path.with_suffix(".html").write_text(review_render.html_page(title, "\n".join(body)))
