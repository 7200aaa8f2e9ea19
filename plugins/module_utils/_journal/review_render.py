# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The post-incident review as Markdown, or as one self-contained HTML page; and the plots both draw on.

The HTML page opens in a browser without a network: inline CSS, inline SVG plots, no script, no font, image or
style sheet fetched from anywhere. Plots are drawn by pygal (imported only when a plot is drawn; its absence
raises :class:`MissingLibraryError`), with its script and comments filtered out of the SVG.

Every string that came from the journal (alert names, reasons, service names ...) is escaped: HTML-escaped in the
page, backslash-escaped in Markdown (so ``<script>``, ``[x](javascript:...)`` or a ``|`` in a table cell stay text).
"""

from __future__ import annotations

import html
import re
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import MissingLibraryError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.review import (
    Indicator,
    Review,
    ServiceReview,
    Suggestion,
)

FORMATS = ("html", "markdown")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#+!|<>~&])")
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#1d2330;background:#fff;line-height:1.4}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #dde3ec;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin:1.4rem 0 .4rem;color:#3a4456}
.period{color:#5b6576;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:.6rem 0}
.card{border:1px solid #dde3ec;border-radius:6px;padding:.5rem .8rem;min-width:9rem;background:#f7f9fc}
.card b{display:block;font-size:1.3rem}
.card span{color:#5b6576;font-size:.85rem}
table{border-collapse:collapse;margin:.3rem 0 .8rem;font-size:.92rem}
th,td{border:1px solid #dde3ec;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#eef2f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.suggestions li{margin:.35rem 0}.evidence{color:#5b6576;font-size:.85rem}
.suggestions{background:#fff8e6;border:1px solid #f0d98c;border-radius:6px;padding:.4rem 1.2rem}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots svg{border:1px solid #dde3ec;border-radius:6px;max-width:100%;
height:auto}
.none{color:#5b6576;font-style:italic}
"""


# --- text ----------------------------------------------------------------------------------------------------------


def md_escape(text: object) -> str:
    """Journal text as literal Markdown: punctuation backslash-escaped, newlines folded (safe in table cells)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def duration(seconds: float | None) -> str:
    """``45s``, ``3m 20s``, ``1h 05m``, ``2d 03h``; an em dash when unknown."""
    if seconds is None:
        return "\u2014"
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def percent(rate: float | None) -> str:
    return "\u2014" if rate is None else f"{rate * 100:.0f}%"


def stamp(moment: datetime | None) -> str:
    return "open" if moment is None else moment.strftime("%a %Y-%m-%d %H:%M UTC")


# --- plots ---------------------------------------------------------------------------------------------------------


def _pygal() -> Any:
    try:
        import pygal  # type: ignore[import-untyped]
        import pygal.style  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingLibraryError("pygal", traceback.format_exc()) from exc
    return pygal


def _no_script(root: Any) -> Any:
    """pygal's XML filter: drop its script (a config for tooltips) and its comments (links to its home page)."""
    for parent in list(root.iter()):
        for child in list(parent):
            if callable(child.tag) or str(child.tag).rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def _chart(kind: str, chart_id: str, title: str, **config: Any) -> Any:
    pygal = _pygal()
    style = pygal.style.Style(
        background="white",
        plot_background="white",
        foreground="#1d2330",
        foreground_strong="#1d2330",
        foreground_subtle="#8a93a3",
        font_family="DejaVu Sans, Arial, sans-serif",
        colors=("#1f5fbf", "#c0392b", "#e67e22", "#16a085", "#8e44ad", "#7f8c8d"),
        title_font_size=15,
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=12,
    )
    chart = getattr(pygal, kind)(
        title=title,
        style=style,
        js=[],
        disable_xml_declaration=True,
        width=config.pop("width", 620),
        height=config.pop("height", 300),
        explicit_size=True,
        legend_at_bottom=True,
        truncate_legend=-1,
        **config,
    )
    chart.uuid = chart_id  # a stable id: the same records give the same page
    chart.add_xml_filter(_no_script)
    return chart


def _svg(chart: Any, inline: bool) -> str:
    text = str(chart.render(is_unicode=True))
    if inline:  # inside HTML the SVG namespace is implied; leaving it out leaves no URL in the page
        head, rest = text.split(">", 1)
        text = _XMLNS.sub("", head) + ">" + rest
    return text


def line_plot(
    chart_id: str,
    title: str,
    unit: str,
    series: Mapping[str, Sequence[tuple[datetime, float]]],
    objective: tuple[str, float] | None = None,
    marks: Sequence[tuple[datetime, str]] = (),
    x_label: Callable[[datetime], str] = lambda moment: moment.strftime("%a %H:%M"),
    inline: bool = True,
) -> str:
    """An SVG line chart of time series, the objective as a dashed line, and marks as dotted verticals."""
    times = [t for points in series.values() for t, _v in points] + [t for t, _label in marks]
    values = [v for points in series.values() for _t, v in points] + ([objective[1]] if objective else [])
    chart = _chart(
        "DateTimeLine",
        chart_id,
        title,
        x_value_formatter=x_label,
        value_formatter=lambda value: f"{value:g}{unit}",
        x_label_rotation=25,
        truncate_label=-1,
        show_x_guides=False,
        dots_size=2.5,
        range=(0, max(values + [1.0]) * 1.15) if values else None,
    )
    for name, points in series.items():
        chart.add(name, list(points))
    if objective and times:
        start, end = min(times), max(times)
        chart.add(
            f"{objective[0]} {objective[1]:g}{unit}",
            [(start, objective[1]), (end, objective[1])],
            stroke_style={"width": 2, "dasharray": "7,5"},
            show_dots=False,
        )
    top = max(values + [1.0]) * 1.15 if values else 1.0
    for moment, label in marks:
        chart.add(label, [(moment, 0), (moment, top)], stroke_style={"width": 2, "dasharray": "3,4"}, show_dots=False)
    return _svg(chart, inline)


def bar_plot(
    chart_id: str, title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]], unit: str
) -> str:
    """An SVG bar chart, one group per label."""
    chart = _chart(
        "Bar",
        chart_id,
        title,
        x_label_rotation=0,
        value_formatter=lambda value: f"{value:g}{unit}",
        print_values=False,
    )
    chart.x_labels = list(labels)
    for name, values in series.items():
        chart.add(name, list(values))
    return _svg(chart, True)


def _indicator_plot(svc: ServiceReview, index: int, indicator: Indicator) -> str:
    return line_plot(
        f"{_slug(svc.name)}-{index}",
        f"{svc.name} {indicator.label}",
        indicator.unit.strip(),
        {indicator.label: list(indicator.points)},
        (indicator.objective_name, indicator.objective),
    )


def _recovery_plot(svc: ServiceReview) -> str:
    labels = [f"#{i.id}" for i in svc.incidents]
    return bar_plot(
        f"{_slug(svc.name)}-recovery",
        f"{svc.name} incidents: minutes to action and to recovery",
        labels,
        {
            "time to action": [_minutes(i.time_to_action) for i in svc.incidents],
            "time to recovery": [_minutes(i.time_to_recovery) for i in svc.incidents],
        },
        " min",
    )


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "service"


# --- Markdown ------------------------------------------------------------------------------------------------------


def _md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_escape(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _md_suggestion(item: Suggestion) -> str:
    return f"- {md_escape(item.text)} (evidence: {md_escape(', '.join(item.evidence))})"


def render_markdown(review: Review) -> str:
    """The review as GitHub-flavoured Markdown (tables; no plots, the HTML page has them)."""
    lines = [
        "# Post-incident review",
        "",
        md_escape(f"{stamp(review.since)} to {stamp(review.until)}: {_overview(review)}"),
        "",
    ]
    if review.truncated:
        lines += [md_escape("Only the newest decisions were read: raise limit to review them all."), ""]
    lines += ["## Suggestions", ""]
    lines += [_md_suggestion(s) for s in review.all_suggestions] or ["Nothing to suggest: no pattern in the record."]
    lines.append("")
    for svc in review.services:
        lines += [f"## {md_escape(svc.name)}", ""]
        lines += [md_escape(line) for line in _facts(svc)] + [""]
        lines += ["### Incidents", ""]
        lines += _md_table(_INCIDENT_HEADER, _incident_rows(svc)) if svc.incidents else ["None.", ""]
        lines += ["### Actions", ""]
        lines += _md_table(_ACTION_HEADER, _action_rows(svc)) if svc.actions else ["None.", ""]
        lines += ["### Escalations and approvals", ""]
        rows = _escalation_rows(svc)
        lines += _md_table(_ESCALATION_HEADER, rows) if rows else ["None.", ""]
        if svc.denied_changes:
            lines += ["### Changes the gate denied", ""] + _md_table(_DENIED_HEADER, _denied_rows(svc))
        lines += ["### Indicators against objectives", ""]
        lines += _md_table(_INDICATOR_HEADER, _indicator_rows(svc)) if svc.indicators else ["No objective.", ""]
        if svc.suggestions:
            lines += ["### Suggestions", ""] + [_md_suggestion(s) for s in svc.suggestions] + [""]
    return "\n".join(lines)


# --- shared tables -------------------------------------------------------------------------------------------------

_INCIDENT_HEADER = ("incident", "alert", "opened", "closed", "actions", "time to action", "time to recovery")
_ACTION_HEADER = (
    "action",
    "attempts",
    "recovered",
    "not recovered",
    "failed",
    "pending",
    "success rate",
    "median to objectives met",
)
_ESCALATION_HEADER = ("when", "kind", "decision", "what")
_INDICATOR_HEADER = ("indicator", "objective", "samples", "worst", "last")
_DENIED_HEADER = ("when", "change", "rule", "requested by", "change id", "gate answer")


def _denied_rows(svc: ServiceReview) -> list[list[object]]:
    return [
        [stamp(d.at), d.change, d.rule, d.requested_by or "", d.change_id or "", d.gate_id] for d in svc.denied_changes
    ]


def _overview(review: Review) -> str:
    incidents = sum(len(s.incidents) for s in review.services)
    return f"{len(review.services)} service(s), {incidents} incident(s), {len(review.all_suggestions)} suggestion(s)"


def _facts(svc: ServiceReview) -> list[str]:
    attempts = sum(a.attempts for a in svc.actions)
    recovered = sum(a.recovered for a in svc.actions)
    verified = sum(a.verified for a in svc.actions)
    return [
        f"{len(svc.incidents)} incident(s), {duration(svc.breach_seconds)} in breach, {svc.decisions} decision(s), "
        f"{attempts} action(s) ({recovered} of {verified} verified recovered), {len(svc.escalations)} "
        f"escalation(s), {len(svc.approvals)} approval request(s); median time to action "
        f"{duration(svc.median_time_to_action)}, median time to recovery {duration(svc.median_time_to_recovery)}."
    ]


def _incident_rows(svc: ServiceReview) -> list[list[object]]:
    return [
        [
            f"#{i.id}",
            i.alert or i.fingerprint,
            stamp(i.opened),
            stamp(i.closed),
            ", ".join(i.actions) or "none",
            duration(i.time_to_action),
            duration(i.time_to_recovery),
        ]
        for i in svc.incidents
    ]


def _action_rows(svc: ServiceReview) -> list[list[object]]:
    return [
        [
            a.action,
            a.attempts,
            a.recovered,
            a.not_recovered,
            a.failed,
            a.pending,
            percent(a.success_rate),
            duration(a.median_seconds_to_met),
        ]
        for a in svc.actions
    ]


def _escalation_rows(svc: ServiceReview) -> list[list[object]]:
    rows: list[tuple[datetime, list[object]]] = [
        (e.at, [stamp(e.at), "escalation", e.decision_id, e.why]) for e in svc.escalations
    ]
    for a in svc.approvals:
        answer = f"then run by hand (decision {a.followed_by})" if a.followed_by else "not run by hand"
        params = ", ".join(f"{k}={v}" for k, v in sorted(a.params.items()))
        rows.append((a.at, [stamp(a.at), "approval", a.decision_id, f"{a.proposed} {params}".strip() + f": {answer}"]))
    return [row for _at, row in sorted(rows, key=lambda item: item[0])]


def _indicator_rows(svc: ServiceReview) -> list[list[object]]:
    rows = []
    for ind in svc.indicators:
        values = [v for _t, v in ind.points]
        worst = (min(values) if ind.objective_name == "availability" else max(values)) if values else None
        rows.append(
            [
                ind.label,
                f"{ind.objective_name} {ind.objective:g}{ind.unit}",
                len(values),
                "\u2014" if worst is None else f"{worst:g}{ind.unit}",
                f"{values[-1]:g}{ind.unit}" if values else "\u2014",
            ]
        )
    return rows


# --- HTML ----------------------------------------------------------------------------------------------------------


def _html_table(header: Sequence[str], rows: Sequence[Sequence[object]], css: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{esc(c)}</td>' if isinstance(c, int | float) else f"<td>{esc(c)}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _html_suggestions(items: Sequence[Suggestion]) -> str:
    if not items:
        return '<p class="none">Nothing to suggest: no pattern in the record.</p>'
    lis = "".join(
        f'<li data-rule="{esc(s.rule)}">{esc(s.text)} <span class="evidence">evidence: '
        f"{esc(', '.join(s.evidence))}</span></li>"
        for s in items
    )
    return f'<ul class="suggestions">{lis}</ul>'


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{esc(value)}</b><span>{esc(label)}</span></div>'


def _html_service(svc: ServiceReview) -> str:
    attempts = sum(a.attempts for a in svc.actions)
    verified = sum(a.verified for a in svc.actions)
    recovered = sum(a.recovered for a in svc.actions)
    cards = "".join(
        [
            _card(str(len(svc.incidents)), "incidents"),
            _card(duration(svc.breach_seconds), "in breach"),
            _card(duration(svc.median_time_to_action), "median time to action"),
            _card(duration(svc.median_time_to_recovery), "median time to recovery"),
            _card(f"{attempts}", "actions"),
            _card(percent(recovered / verified if verified else None), "of verified actions recovered"),
            _card(str(len(svc.escalations)), "escalations"),
            _card(str(len(svc.approvals)), "approval requests"),
        ]
    )
    parts = [
        f'<section class="service" id="{esc(_slug(svc.name))}"><h2>{esc(svc.name)}</h2>',
        f'<div class="cards">{cards}</div>',
    ]
    if svc.suggestions:
        parts += ["<h3>Suggestions</h3>", _html_suggestions(svc.suggestions)]
    parts.append("<h3>Incidents</h3>")
    parts.append(
        _html_table(_INCIDENT_HEADER, _incident_rows(svc), "incidents")
        if svc.incidents
        else '<p class="none">None.</p>'
    )
    parts.append("<h3>Actions</h3>")
    parts.append(
        _html_table(_ACTION_HEADER, _action_rows(svc), "actions") if svc.actions else '<p class="none">None.</p>'
    )
    parts.append("<h3>Escalations and approvals</h3>")
    rows = _escalation_rows(svc)
    parts.append(_html_table(_ESCALATION_HEADER, rows, "escalations") if rows else '<p class="none">None.</p>')
    if svc.denied_changes:
        parts += ["<h3>Changes the gate denied</h3>", _html_table(_DENIED_HEADER, _denied_rows(svc), "denied")]
    plots = [_indicator_plot(svc, n, ind) for n, ind in enumerate(svc.indicators) if ind.points]
    if svc.incidents:
        plots.append(_recovery_plot(svc))
    if plots:
        parts += ["<h3>Against the objectives</h3>", f'<div class="plots">{"".join(plots)}</div>']
    parts.append("</section>")
    return "\n".join(parts)


def html_page(title: str, body: str) -> str:
    """A complete page: inline CSS, nothing fetched."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def render_html(review: Review) -> str:
    """The review as one self-contained HTML page with inline SVG plots."""
    body = [
        "<h1>Post-incident review</h1>",
        f'<p class="period">{esc(stamp(review.since))} to {esc(stamp(review.until))}: {esc(_overview(review))}</p>',
    ]
    if review.truncated:
        body.append('<p class="none">Only the newest decisions were read: raise limit to review them all.</p>')
    body += ["<h2>Suggestions</h2>", _html_suggestions(review.all_suggestions)]
    body += [_html_service(svc) for svc in review.services]
    if not review.services:
        body.append('<p class="none">The journal holds nothing for this period.</p>')
    return html_page("Post-incident review", "\n".join(body))


def render(review: Review, fmt: str) -> str:
    if fmt == "html":
        return render_html(review)
    return render_markdown(review)
