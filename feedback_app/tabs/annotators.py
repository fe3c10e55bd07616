"""Engineers: each annotator's quality (rlhf.quality.analytics) and the dataset's agreement, on demand.

The table is HTML built here with every username escaped. "Re-score queue" runs
the configured active selection (rlhf.quality.selection) now instead of waiting for the
filler's timer. "Import gold items" takes the same file `rlhf gold import` does
(storage.gold): all or nothing, with errors that name the line and field.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.roles import ENGINEER
from feedback_app.tabs import TabView
from rlhf.quality.analytics import AnnotatorStats, annotator_report, dataset_agreement
from storage.crud import StoreError
from storage.db import read_scope
from storage.gold import import_gold

COLUMNS = [
    "annotator",
    "judgments",
    "median time",
    "agreement with consensus",
    "gold accuracy",
    "left-pick rate (p)",
    "swap inconsistency",
    "weight",
    "flags",
]


def _share(value: float | None, n: int) -> str:
    return "–" if value is None else f"{value:.0%} (n={n})"


def _row(stats: AnnotatorStats) -> list[str]:
    bias = (
        "–"
        if stats.position_bias_rate is None
        else f"{stats.position_bias_rate:.0%} (p={stats.position_bias_p:.3g}, n={stats.decisive_choices})"
    )
    return [
        stats.username,
        str(stats.judgments),
        "–" if stats.median_ms is None else f"{stats.median_ms / 1000:.1f} s",
        _share(stats.agreement_with_consensus, stats.consensus_votes),
        _share(stats.gold_accuracy, stats.gold_judgments),
        bias,
        _share(stats.swap_inconsistency, stats.swapped_pairs),
        f"{stats.weight:.2f}",
        ", ".join(stats.flags),
    ]


def annotators_html(report: list[AnnotatorStats]) -> str:
    """The per-annotator table; every cell is escaped, flagged rows are marked."""
    if not report:
        return "<p>No judgments yet.</p>"
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    body = "".join(
        f"<tr class='{'flagged' if stats.flags else ''}'>"
        + "".join(f"<td>{e(cell)}</td>" for cell in _row(stats))
        + "</tr>"
        for stats in report
    )
    return f"<table class='side-by-side' id='annotators-stats'><tr>{head}</tr>{body}</table>"


def _alpha(entry: dict) -> str:
    alpha = entry["alpha"]
    value = "undefined" if math.isnan(alpha) else f"{alpha:.3f}"
    return f"{value} ({entry['level']}, {entry['units']} units judged by 2+, {entry['judgments']} judgments)"


def overview(url: str) -> tuple[str, str]:
    with read_scope(url) as session:
        report = annotator_report(session)
        agreement = dataset_agreement(session)
    flagged = sum(bool(stats.flags) for stats in report)
    summary = (
        f"**Krippendorff's α** — pairwise: {_alpha(agreement['pairwise'])} · "
        f"ratings: {_alpha(agreement['rating'])}  \n"
        f"{len(report)} annotators, {flagged} flagged."
    )
    return annotators_html(report), summary


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Annotators", id="annotators", visible=False, elem_id="tab-annotators") as tab:
        summary = gr.Markdown(elem_id="annotators-summary")
        table = gr.HTML(elem_id="annotators-table")
        with gr.Row():
            refresh = gr.Button("Refresh", elem_id="annotators-refresh")
            rescore = gr.Button("Re-score queue", elem_id="annotators-rescore")
        status = gr.Textbox(label="Queue selection", interactive=False, elem_id="annotators-status")
        with gr.Row():
            gold_file = gr.File(
                label="Gold items: JSONL, CSV or parquet (see `rlhf gold import`)",
                type="filepath",
                file_types=[".jsonl", ".csv", ".parquet"],
                elem_id="annotators-gold-file",
            )
            gold_import = gr.Button("Import gold items", elem_id="annotators-gold-import")
        gold_status = gr.Textbox(label="Gold import", interactive=False, lines=3, elem_id="annotators-gold-status")

    def fill(user):
        return list(overview(ctx.url))

    @ctx.guard.requires(ENGINEER)
    def rescore_queue(user):
        return f"{ctx.config.selection} selection — {ctx.prioritizer.refresh()}"

    @ctx.guard.requires(ENGINEER)
    def import_gold_file(path, user):
        if not path:
            raise StoreError("Gold items: choose a file first.")
        try:
            return import_gold(path, url=ctx.url).summary()
        finally:
            Path(path).unlink(missing_ok=True)

    show = ctx.guard.requires(ENGINEER)(fill)
    tab.select(show, None, [table, summary], api_name="annotators_show", concurrency_limit=2)
    refresh.click(show, None, [table, summary], api_name="annotators_refresh", concurrency_limit=2)
    rescore.click(rescore_queue, None, status, api_name="annotators_rescore", concurrency_limit=1)
    gold_import.click(import_gold_file, gold_file, gold_status, api_name="annotators_gold_import", concurrency_limit=1)
    return TabView(tab=tab, capability=ENGINEER, outputs=[table, summary], fill=fill)
