"""The bureau report as files: one HTML page (numbers, bar charts drawn as inline SVG: no script, no font or
library fetched, it opens offline and prints) and one CSV per table for the bureau's own spreadsheets."""

from __future__ import annotations

import csv
from html import escape
from pathlib import Path

from streetwatch.cases.report import Column, Report, Row

HEADINGS = {Column.NEW: "新增", Column.CONFIRMED: "确认", Column.CLOSED: "结案", Column.REJECTED: "驳回",
            Column.RECURRING: "复发"}
COLUMNS = tuple((c.value, f"{HEADINGS[c]} {c.value}") for c in Column)


def bar_chart(title: str, bars: list[tuple[str, list[int]]], series: tuple[str, ...], width: int = 640) -> str:
    """Horizontal bars, one row per label, one colour per series (stacked); an SVG string."""
    colours = ("#1f6fb2", "#d9822b", "#3a9c4a")
    row_h, label_w, top = 18, 170, 28
    most = float(max((sum(v) for _, v in bars), default=0) or 1)
    scale = (width - label_w - 50) / most
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + row_h * len(bars) + 24}" '
             f'role="img" aria-label="{escape(title)}"><text x="0" y="16" font-weight="bold">{escape(title)}</text>']
    for i, (label, values) in enumerate(bars):
        y, x = top + i * row_h, float(label_w)
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="12">{escape(label)}</text>')
        for k, v in enumerate(values):
            parts.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{v * scale:.1f}" height="{row_h - 4}" '
                         f'fill="{colours[k % len(colours)]}"><title>{escape(series[k])}: {v}</title></rect>')
            x += v * scale
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 13}" font-size="12">{sum(values)}</text>')
    legend_y = top + row_h * len(bars) + 16
    for k, name in enumerate(series):
        parts.append(f'<rect x="{label_w + k * 150}" y="{legend_y - 10}" width="10" height="10" '
                     f'fill="{colours[k % len(colours)]}"/><text x="{label_w + k * 150 + 14}" y="{legend_y}" '
                     f'font-size="12">{escape(name)}</text>')
    return "".join(parts) + "</svg>"


def _table(head: list[str], rows: list[list[object]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _row_cells(r: Row) -> list[object]:
    return [r.label, *(getattr(r, c) for c, _ in COLUMNS)]


def _share(v: float | None) -> str:
    return "no log" if v is None else f"{v:.0%}"


def tables(report: Report) -> dict[str, tuple[list[str], list[list[object]]]]:
    """Every table of the report: file stem -> (header, rows); the CSVs and the page show the same."""
    counts = [h for _, h in COLUMNS]
    return {
        "summary": (["period", "time zone", *counts], [[report.period.label, report.period.zone,
                                                         *(getattr(report.totals, c) for c, _ in COLUMNS)]]),
        "by_type": (["类型 type", *counts], [_row_cells(r) for r in report.by_type]),
        "by_grid": (["网格 grid", *counts], [_row_cells(r) for r in report.by_grid]),
        "by_hour": (["时 hour", "新增 new", "复发 recurring"], [list(h) for h in report.by_hour]),
        "hot_spots": (["案件 case", "类型 type", "网格 grid", "camera", "where", "returns (period)", "returns (ever)",
                       "hours"], [[h.case_id, h.label, h.grid, h.camera_id, h.where, h.returns_in_period,
                                   h.returns_ever, " ".join(f"{x:02d}h" for x in h.hours)] for h in report.hot_spots]),
        "cameras": (["camera", "新增 new", "在线 up", "watched"],
                    [[c.camera_id, c.new, _share(c.up_share), _share(c.watched_share)] for c in report.cameras]),
    }


def write_report(report: Report, out: Path) -> list[Path]:
    """report.html and one CSV per table (UTF-8 with BOM: spreadsheet programs then read Chinese right)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (head, rows) in tables(report).items():
        path = out / f"{stem}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            csv.writer(f).writerows([head, *rows])
        written.append(path)
    page = out / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    return [page, *written]


def render_html(report: Report) -> str:
    p = report.period
    parts = [f"<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>streetwatch {escape(p.label)}"
             "</title><style>body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;"
             "margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style></head><body>",
             f"<h1>streetwatch 城市管理问题报告 report {escape(p.label)}</h1>",
             f"<p>{escape(p.start.isoformat())} – {escape(p.end.isoformat())} ({escape(p.zone)})</p>"]
    parts += [f"<p class='note'>{escape(n)}</p>" for n in report.notes]
    charts = [
        bar_chart("按类型 by type", [(r.label, [r.new, r.recurring]) for r in report.by_type],
                  ("新增 new", "复发 recurring")),
        bar_chart("按时段 by hour of day", [(f"{h:02d}:00", [n, b]) for h, n, b in report.by_hour],
                  ("新增 new", "复发 recurring")),
        bar_chart("按网格 by grid", [(r.label, [r.new, r.recurring]) for r in report.by_grid],
                  ("新增 new", "复发 recurring")),
    ]
    titles = {"summary": "总计 totals", "by_type": "按类型 by type", "by_grid": "按网格 by grid",
              "hot_spots": "复发热点 recurrence hot spots", "cameras": "摄像头 cameras", "by_hour": "按时段 by hour"}
    all_tables = tables(report)
    for stem in ("summary", "by_type"):
        parts.append(f"<h2>{titles[stem]}</h2>" + _table(*all_tables[stem]))
    parts += charts
    for stem in ("by_grid", "hot_spots", "cameras", "by_hour"):
        head, rows = all_tables[stem]
        parts.append(f"<h2>{titles[stem]}</h2>" + (_table(head, rows) if rows else "<p>—</p>"))
    return "".join(parts) + "</body></html>"
