"""`newsletter report --out report.html`: one static page, charts as inline SVG, no
JavaScript: the audience's growth over time and each issue's delivery and engagement.

Every number a chart draws is written beside it as text (and in a table below), so that
the page reads the same with or without the picture. Dark text on white, bars in colours
of at least 3:1 against white (WCAG's contrast for graphics).
"""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from pathlib import Path

from ..config import Config
from ..delivery.stats import IssueStats, audience_growth, issue_stats
from ..errors import PipelineError, display_path
from ..store import Database

TEXT, MUTED, GRID = "#1f2328", "#4b5563", "#d0d7de"
SERIES = [("sent", "#0f766e"), ("delivered", "#1d4ed8"), ("bounced", "#b91c1c"),
          ("opens", "#7c3aed"), ("clicks", "#b45309")]
WIDTH = 720


def write_report(db: Database, config: Config, out: Path, now: datetime) -> Path:
    growth, issues = audience_growth(db), issue_stats(db)
    page = render_report(config.name, growth, issues, now)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot be written: {exc.strerror or exc}",
                            path=display_path(out)) from None
    return out


def render_report(name: str, growth: list[tuple[date, int]], issues: list[IssueStats],
                  now: datetime) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(name)}: report</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; color: {TEXT}; background: #fff;
       max-width: {WIDTH + 40}px; margin: 0 auto; padding: 20px; }}
h1, h2 {{ line-height: 1.2; }}
svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }}
th, td {{ border-bottom: 1px solid {GRID}; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.muted {{ color: {MUTED}; }}
</style></head><body>
<h1>{escape(name)}</h1>
<p class="muted">Report of {now.date().isoformat()}</p>
<h2>Audience</h2>
{growth_chart(growth)}
<h2>Issues</h2>
{issues_chart(issues)}
{issues_table(issues)}
</body></html>
"""


def growth_chart(growth: list[tuple[date, int]]) -> str:
    if not growth:
        return '<p class="muted">No readers yet.</p>'
    height, left, right, top, bottom = 240, 56, 24, 24, 40
    low, high = growth[0][0].toordinal(), growth[-1][0].toordinal()
    most = max(max(n for _, n in growth), 1)

    def x(day: date) -> float:
        span = max(high - low, 1)
        return left + (day.toordinal() - low) / span * (WIDTH - left - right)

    def y(n: int) -> float:
        return top + (1 - n / most) * (height - top - bottom)

    points = " ".join(f"{x(d):.1f},{y(n):.1f}" for d, n in growth)
    last_day, last = growth[-1]
    return (f'<svg id="growth" role="img" aria-label="Readers over time: {last} on '
            f'{last_day.isoformat()}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'<line x1="{left}" y1="{y(0):.1f}" x2="{WIDTH - right}" y2="{y(0):.1f}" '
            f'stroke="{GRID}"/>'
            f'<text x="{left - 8}" y="{y(most) + 4:.1f}" text-anchor="end" fill="{MUTED}" '
            f'font-size="12">{most}</text>'
            f'<text x="{left - 8}" y="{y(0) + 4:.1f}" text-anchor="end" fill="{MUTED}" '
            f'font-size="12">0</text>'
            f'<polyline points="{points}" fill="none" stroke="{SERIES[0][1]}" stroke-width="2.5"/>'
            + "".join(f'<circle cx="{x(d):.1f}" cy="{y(n):.1f}" r="3" fill="{SERIES[0][1]}">'
                      f"<title>{d.isoformat()}: {n}</title></circle>" for d, n in growth)
            + f'<text class="value" x="{x(last_day):.1f}" y="{y(last) - 8:.1f}" '
            f'text-anchor="end" fill="{TEXT}" font-size="13" font-weight="bold">{last}</text>'
            f'<text x="{left}" y="{height - 12}" fill="{MUTED}" font-size="12">'
            f"{growth[0][0].isoformat()}</text>"
            f'<text x="{WIDTH - right}" y="{height - 12}" text-anchor="end" fill="{MUTED}" '
            f'font-size="12">{last_day.isoformat()}</text></svg>')


def issues_chart(issues: list[IssueStats]) -> str:
    if not issues:
        return '<p class="muted">No issue sent yet.</p>'
    label_width, bar, gap, legend = 170, 14, 3, 28
    group = len(SERIES) * (bar + gap) + 16
    height = legend + group * len(issues)
    most = max(max((getattr(s, key) or 0) for s in issues for key, _ in SERIES), 1)
    scale = (WIDTH - label_width - 60) / most
    parts = [f'<svg id="issues" role="img" aria-label="Each issue: sent, delivered, bounced, '
             f'opens, clicks" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
             f'height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for n, (key, colour) in enumerate(SERIES):
        parts.append(f'<rect x="{label_width + n * 100}" y="4" width="12" height="12" '
                     f'fill="{colour}"/><text x="{label_width + n * 100 + 16}" y="15" '
                     f'fill="{TEXT}" font-size="12">{key}</text>')
    for i, stats in enumerate(issues):
        top = legend + i * group
        parts.append(f'<text x="0" y="{top + 12}" fill="{TEXT}" font-size="13" '
                     f'font-weight="bold">{escape(stats.issue[:24])}</text>')
        for n, (key, colour) in enumerate(SERIES):
            value = getattr(stats, key)
            y = top + n * (bar + gap)
            shown = "not tracked" if value is None else str(value)
            width = (value or 0) * scale
            parts.append(f'<rect x="{label_width}" y="{y}" width="{width:.1f}" height="{bar}" '
                         f'fill="{colour}"><title>{key}: {shown}</title></rect>'
                         f'<text class="value" data-issue="{escape(stats.issue)}" '
                         f'data-series="{key}" x="{label_width + width + 6:.1f}" '
                         f'y="{y + bar - 3}" fill="{TEXT}" font-size="12">{shown}</text>')
    parts.append("</svg>")
    return "".join(parts)


def issues_table(issues: list[IssueStats]) -> str:
    if not issues:
        return ""
    columns = ("sent", "delivered", "bounced", "complaints", "unsubscribes", "opens", "clicks")
    head = "".join(f"<th>{c}</th>" for c in ("issue", *columns))
    rows = "".join(
        f"<tr><td>{escape(s.issue)}</td>" + "".join(
            f"<td>{'–' if getattr(s, c) is None else getattr(s, c)}</td>" for c in columns)
        + "</tr>" for s in issues)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
