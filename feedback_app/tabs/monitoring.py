"""Reviewers: how each version fares with humans over time (rlhf.quality.monitoring), its alarms, and the report.

"Write report" runs `rlhf report` into `<artifacts>/reports/` (HTML plus its
plots) and offers copies of those files for download from a fresh temp folder,
so the app never serves the artifacts folder itself.
"""

from __future__ import annotations

import html
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.roles import REVIEW
from feedback_app.tabs import TabView
from rlhf.models.registry import artifacts_root
from rlhf.quality.monitoring import Monitoring, monitor, plot_version_timeline
from rlhf.quality.report import write_report
from storage.db import read_scope

COLUMNS = [
    "version",
    "live",
    "parent",
    "live periods (UTC)",
    "mean rating (n)",
    "human win-rate (n)",
    "reward-model win-rate",
]


def _number(value: float | None, n: int | None = None, fmt: str = ".2f") -> str:
    if value is None:
        return "–"
    return f"{value:{fmt}}" + (f" (n={n})" if n is not None else "")


def signals_html(monitoring: Monitoring) -> str:
    """How many human signals there are of each kind (blind votes are what the Leaderboard is fitted on)."""
    signals = monitoring.signals
    return (
        f"<p id='monitoring-signals'><b>{len(signals.blind_votes)}</b> blind A/B votes · "
        f"<b>{len(signals.judgments)}</b> judgments of versioned responses (ratings and pairwise)</p>"
    )


def versions_html(monitoring: Monitoring) -> str:
    """One row per version; names and alarm messages are escaped."""
    e = html.escape
    if not monitoring.series:
        return signals_html(monitoring) + "<p>No live version and no judged versioned responses yet.</p>"
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(cell)}</td>"
            for cell in [
                row.name,
                "LIVE" if row.is_live else "",
                row.parent_name or "",
                row.live_text(),
                _number(row.rating_mean, len(row.scores)),
                _number(row.win_rate, row.comparisons, ".0%"),
                _number(row.reward_win_rate, fmt=".0%"),
            ]
        )
        + "</tr>"
        for row in monitoring.series
    )
    alarms = (
        (
            "<ul id='monitoring-alarms'>"
            + "".join(
                f"<li><b>{e(alarm.kind)}</b> · {e(alarm.version)}: {e(alarm.message)}</li>"
                for alarm in monitoring.alarms
            )
            + "</ul>"
        )
        if monitoring.alarms
        else "<p id='monitoring-alarms'>No alarms.</p>"
    )
    return f"{signals_html(monitoring)}<table class='side-by-side'><tr>{head}</tr>{rows}</table><h4>Alarms</h4>{alarms}"


def current(url: str) -> tuple[object, str]:
    with read_scope(url) as session:
        monitoring = monitor(session)
    return plot_version_timeline(monitoring), versions_html(monitoring)


def report_files(url: str) -> list[str]:
    """Write the HTML report under the artifacts folder; return download copies of it and its plots."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    out = write_report(artifacts_root(url) / "reports" / f"report-{stamp}.html", url=url)
    offered = Path(tempfile.mkdtemp(prefix="rlhf-report-"))
    copies = []
    for path in [out, *sorted(out.parent.glob(f"{out.stem}-*.png"))]:
        copies.append(str(shutil.copy2(path, offered / path.name)))
    return copies


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Monitoring", id="monitoring", visible=False, elem_id="tab-monitoring") as tab:
        gr.Markdown(
            "Human ratings and win-rates of each version's responses per day, next to the round's "
            "reward-model numbers, and the alarms (reward up while humans see no gain; length growth). The last "
            "panel counts the human signals as they came in: judgments of versioned responses, and blind A/B votes."
        )
        plot = gr.Plot(label="Per version over time", elem_id="monitoring-plot")
        table = gr.HTML(elem_id="monitoring-table")
        with gr.Row():
            refresh = gr.Button("Refresh", elem_id="monitoring-refresh")
            write = gr.Button("Write report (HTML)", elem_id="monitoring-report")
        files = gr.File(label="Report", file_count="multiple", interactive=False, elem_id="monitoring-files")

    def fill(user):
        return list(current(ctx.url))

    @ctx.guard.requires(REVIEW)
    def make_report(user):
        return report_files(ctx.url)

    show = ctx.guard.requires(REVIEW)(fill)
    tab.select(show, None, [plot, table], api_name="monitoring_show", concurrency_limit=2)
    refresh.click(show, None, [plot, table], api_name="monitoring_refresh", concurrency_limit=2)
    write.click(make_report, None, files, api_name="monitoring_report", concurrency_limit=1)
    return TabView(tab=tab, capability=REVIEW, outputs=[plot, table], fill=fill)
