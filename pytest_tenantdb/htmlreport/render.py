"""A :class:`ReportData` as one self-contained HTML file: inline CSS, CSS bars, no script, no
request to anything (a Content-Security-Policy says so to the browser too).

Every text in the data (tenant ids, SQL, error messages, diff lines) is escaped: a tenant named
``<script>`` shows as that text.
"""

from __future__ import annotations

import errno
import os
import tempfile
from html import escape
from pathlib import Path

from pytest_tenantdb.htmlreport.model import Breakdown, Group, Histogram, ReportData, Section

#: Colours of the statuses the project's sources use; others take the palette in turn.
STATUS_COLOURS = {
    "migrated": "#2e7d32",
    "current": "#1565c0",
    "ok": "#2e7d32",
    "failed": "#c62828",
    "drift": "#ef6c00",
    "drifted": "#ef6c00",
    "unknown": "#6a1b9a",
    "corrupt": "#4e342e",
    "locked": "#00838f",
}
PALETTE = ("#5d4037", "#00838f", "#9e9d24", "#ad1457", "#283593", "#757575")
#: Groups of failures / drift shown unfolded; the others are one click away.
OPEN_GROUPS = 5

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "DejaVu Sans", sans-serif; color: #1f2328; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 4px; }
h3 { font-size: 14px; margin: 16px 0 6px; color: #57606a; text-transform: uppercase; letter-spacing: .04em; }
.subtitle, .source { color: #57606a; margin: 0 0 12px; }
.empty { padding: 16px; border: 1px dashed #d0d7de; border-radius: 6px; color: #57606a; }
section.report-section { border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px; margin: 20px 0; }
.headline { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; margin: 4px 0 8px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px;
  font-weight: 600; vertical-align: middle; margin-left: 6px; }
table { border-collapse: collapse; margin: 4px 0 8px; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eaeef2; }
th:first-child, td:first-child { text-align: left; }
th { font-weight: 600; color: #57606a; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 40px; }
figure.histogram { margin: 0; min-width: 320px; flex: 1 1 320px; max-width: 560px; }
figcaption { font-weight: 600; margin-bottom: 6px; }
.hbar { display: grid; grid-template-columns: 72px 1fr 64px; align-items: center; gap: 8px; margin: 2px 0; }
.hbar .label { text-align: right; font-family: ui-monospace, "DejaVu Sans Mono", monospace; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
.track { display: block; height: 16px; background: #f3f4f6; border-radius: 3px; overflow: hidden; }
.fill { display: block; height: 100%; min-width: 2px; background: #3b6ea8; }
.hbar .count { font-variant-numeric: tabular-nums; }
td.stack { width: 320px; }
.stackbar { display: flex; height: 14px; width: 300px; background: #f3f4f6; border-radius: 3px; overflow: hidden; }
.seg { display: block; height: 100%; }
.legend { display: flex; gap: 14px; font-size: 12px; color: #57606a; margin: 4px 0; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
details.group { border: 1px solid #d0d7de; border-left-width: 4px; border-radius: 6px; margin: 8px 0; padding: 6px 12px; }
details.failure { border-left-color: #c62828; }
details.drift { border-left-color: #ef6c00; }
summary { cursor: pointer; }
summary .count { font-weight: 700; }
summary .where { color: #57606a; }
summary .title { font-family: ui-monospace, "DejaVu Sans Mono", monospace; display: block; margin: 2px 0 0 16px;
  white-space: pre-wrap; word-break: break-word; }
pre.evidence { background: #f6f8fa; padding: 8px 10px; border-radius: 4px; overflow-x: auto; margin: 6px 0;
  font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; word-break: break-word; }
p.tenants { margin: 4px 0; font-size: 13px; }
p.tenants code { background: #f6f8fa; padding: 0 4px; border-radius: 3px; margin-right: 2px; }
ul.notes { color: #57606a; }
table.timings td { text-align: left; }
a { color: #0969da; text-decoration: none; }
"""


def _e(value: object) -> str:
    """``value`` as text that HTML shows as it is, in content and in quoted attributes."""
    return escape(str(value), quote=True)


def status_colour(status: str, index: int = 0) -> str:
    return STATUS_COLOURS.get(status, PALETTE[index % len(PALETTE)])


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole > 0 else "0%"


def _histogram(histogram: Histogram) -> str:
    top = max((bar.count for bar in histogram.bars), default=0)
    rows = [
        f'<div class="hbar" data-label="{_e(bar.label)}" data-count="{bar.count}">'
        f'<span class="label" title="{_e(bar.label)}">{_e(bar.label)}</span>'
        f'<span class="track"><span class="fill" style="width:{_percent(bar.count, top)}"></span></span>'
        f'<span class="count">{bar.count:,}</span></div>'
        for bar in histogram.bars
    ]
    body = "".join(rows) or '<p class="empty">no tenants</p>'
    return f'<figure class="histogram"><figcaption>{_e(histogram.title)}</figcaption>{body}</figure>'


def _breakdown(breakdown: Breakdown) -> str:
    colours = [status_colour(s, i) for i, s in enumerate(breakdown.statuses)]
    legend = "".join(
        f'<span><span class="swatch" style="background:{c}"></span>{_e(s)}</span>'
        for s, c in zip(breakdown.statuses, colours, strict=True)
    )
    head = "".join(f"<th>{_e(s)}</th>" for s in breakdown.statuses)
    rows = []
    for label, counts in breakdown.rows:
        total = sum(counts)
        segments = "".join(
            f'<span class="seg" data-status="{_e(s)}" style="width:{_percent(n, total)};background:{c}" '
            f'title="{_e(s)}: {n}"></span>'
            for s, n, c in zip(breakdown.statuses, counts, colours, strict=True)
            if n
        )
        cells = "".join(f"<td>{n:,}</td>" for n in counts)
        rows.append(
            f'<tr data-label="{_e(label)}"><td>{_e(label)}</td><td>{total:,}</td>{cells}'
            f'<td class="stack"><span class="stackbar">{segments}</span></td></tr>'
        )
    return (
        f'<div class="breakdown"><h3>{_e(breakdown.title)}</h3><div class="legend">{legend}</div>'
        f'<table class="breakdown"><thead><tr><th></th><th>tenants</th>{head}<th></th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _group(group: Group, kind: str, unfolded: bool) -> str:
    shown = "".join(f"<code>{_e(t)}</code> " for t in group.tenants)
    more = group.count - len(group.tenants)
    if more > 0:
        shown += f"... and {more:,} more"
    where = f' <span class="where">{_e(group.where)}</span>' if group.where else ""
    evidence = f'<pre class="evidence">{_e(chr(10).join(group.lines))}</pre>' if group.lines else ""
    tenants = f'<p class="tenants">{shown}</p>' if shown else ""
    noun = "tenant" if group.count == 1 else "tenants"
    return (
        f'<details class="group {kind}" data-count="{group.count}"{" open" if unfolded else ""}>'
        f'<summary><span class="count">{group.count:,} {noun}</span>{where}'
        f'<span class="title">{_e(group.title)}</span></summary>{evidence}{tenants}</details>'
    )


def _groups(title: str, groups: tuple[Group, ...], kind: str) -> str:
    if not groups:
        return ""
    body = "".join(_group(g, kind, i < OPEN_GROUPS) for i, g in enumerate(groups))
    return f'<div class="groups {kind}"><h3>{_e(title)}</h3>{body}</div>'


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{status_colour(status)}">{_e(status)}</span>'


def _section(section: Section, anchor: str) -> str:
    parts = [
        f'<section class="report-section" id="{anchor}" data-status="{_e(section.status)}">',
        f"<h2>{_e(section.title)}{_badge(section.status)}</h2>",
    ]
    if section.source:
        parts.append(f'<p class="source">{_e(section.source)}</p>')
    if section.headline:
        parts.append(f'<p class="headline">{_e(section.headline)}</p>')
    if section.histograms:
        parts.append(f'<div class="charts">{"".join(_histogram(h) for h in section.histograms)}</div>')
    parts += [_breakdown(b) for b in section.breakdowns]
    parts.append(_groups("failures, grouped by step and error", section.failures, "failure"))
    parts.append(_groups("drift, grouped by identical diff", section.drift, "drift"))
    if section.timings:
        rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in section.timings)
        parts.append(f'<h3>timings</h3><table class="timings">{rows}</table>')
    if section.notes:
        parts.append(f'<ul class="notes">{"".join(f"<li>{_e(n)}</li>" for n in section.notes)}</ul>')
    parts.append("</section>")
    return "".join(parts)


def _overview(sections: tuple[Section, ...]) -> str:
    """One row per section: its link, status and totals (when there is more than one)."""
    if len(sections) < 2:
        return ""
    statuses: list[str] = []
    for section in sections:
        statuses += [s for s, _ in section.totals if s not in statuses]
    head = "".join(f"<th>{_e(s)}</th>" for s in statuses)
    rows = []
    for index, section in enumerate(sections, 1):
        counts = dict(section.totals)
        cells = "".join(f"<td>{counts.get(s, 0):,}</td>" for s in statuses)
        rows.append(
            f'<tr><td><a href="#s{index}">{_e(section.title)}</a></td><td>{_badge(section.status)}</td>{cells}</tr>'
        )
    return (
        f'<table class="overview"><thead><tr><th></th><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_html(data: ReportData) -> str:
    """The report as one HTML document (a string)."""
    sections = "".join(_section(s, f"s{i}") for i, s in enumerate(data.sections, 1))
    if not data.sections:
        sections = f'<p class="empty">{_e(data.empty)}</p>'
    subtitle = f'<p class="subtitle">{_e(data.subtitle)}</p>' if data.subtitle else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(data.title)}</title><style>{CSS}</style></head>"
        f"<body><header><h1>{_e(data.title)}</h1>{subtitle}</header>"
        f"{_overview(data.sections)}<main>{sections}</main></body></html>\n"
    )


def write_html(path: Path | str, data: ReportData) -> Path:
    """Write ``data`` as an HTML file at ``path`` (its folder made if missing), whole or not at
    all (a temporary file renamed over it). Returns the path written."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; name a file for the report", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(data)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
