"""Reviewers: accept or reject annotators' recent judgments; rejected ones leave every training export.

Each judgment is listed with its item (prompt, responses) and its answer, all
escaped here as data. The decision goes through storage.annotation_review in
the transaction the reviewer's role was checked in.
"""

from __future__ import annotations

import html

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.roles import REVIEW
from feedback_app.tabs import TabView
from storage.annotation_review import (
    Decision,
    ReviewRow,
    annotators_with_judgments,
    recent_judgments,
    record_decisions,
    review_totals,
)
from storage.crud import StoreError
from storage.db import read_scope
from storage.markup import escape_html

EVERYONE = "All annotators"
SHOWN = 20
TEXT_LIMIT = 2000


def _text(text: str) -> str:
    return f"<pre style='white-space: pre-wrap'>{escape_html(text, TEXT_LIMIT)}</pre>"


def _status(row: ReviewRow) -> str:
    if row.decision is None:
        return "unreviewed"
    note = f": {row.note}" if row.note else ""
    return f"{row.decision} by {row.reviewer}{note}"


def _labels(row: ReviewRow) -> list[str]:
    if row.kind == "pairwise":
        return ["A", "B"]
    if len(row.responses) == 1:
        return ["Response"]
    return [f"#{i + 1}" for i in range(len(row.responses))]


def judgments_html(rows: list[ReviewRow]) -> str:
    """One block per judgment; every text (usernames, prompt, responses, answers, notes) is escaped."""
    if not rows:
        return "<p>No judgments to review.</p>"
    e = escape_html
    blocks = []
    for row in rows:
        responses = "".join(
            f"<div><b>{label}</b>{_text(text)}</div>" for label, text in zip(_labels(row), row.responses)
        )
        blocks.append(
            f"<div class='review-judgment' id='review-judgment-{row.judgment_id}' data-decision="
            f"'{html.escape(row.decision or 'unreviewed')}' style='border-top: 1px solid #ddd; padding: 6px'>"
            f"<p><b>Judgment {row.judgment_id}</b> · {e(row.annotator)} · {e(row.kind)} · "
            f"{row.created_at:%Y-%m-%d %H:%M} UTC · <i>{e(_status(row))}</i></p>"
            f"<div><b>Prompt</b>{_text(row.prompt)}</div>{responses}"
            f"<div><b>Answer</b>{_text(row.answer)}</div></div>"
        )
    return "".join(blocks)


def _listing(session, annotator: str | None, unreviewed: bool) -> tuple[str, str]:
    who = None if not annotator or annotator == EVERYONE else annotator
    rows = recent_judgments(session, annotator=who, unreviewed_only=bool(unreviewed), limit=SHOWN)
    totals = review_totals(session)
    summary = (
        f"{totals['accepted']} accepted · {totals['rejected']} rejected (left out of training exports) · "
        f"{totals['unreviewed']} unreviewed. Listed: {len(rows)}, newest first."
    )
    return judgments_html(rows), summary


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Annotation QA", id="annotation_review", visible=False, elem_id="tab-annotation-review") as tab:
        summary = gr.Markdown(elem_id="annotation-review-summary")
        with gr.Row():
            annotator = gr.Dropdown(
                [EVERYONE],
                value=EVERYONE,
                label="Annotator",
                allow_custom_value=True,
                elem_id="annotation-review-annotator",
            )
            unreviewed = gr.Checkbox(value=True, label="Unreviewed only", elem_id="annotation-review-unreviewed")
            refresh = gr.Button("Refresh", elem_id="annotation-review-refresh")
        listing = gr.HTML(elem_id="annotation-review-list")
        with gr.Row():
            judgment = gr.Number(label="Judgment", precision=0, elem_id="annotation-review-judgment")
            note = gr.Textbox(label="Note (optional)", elem_id="annotation-review-note")
            accept = gr.Button("Accept", variant="primary", elem_id="annotation-review-accept")
            reject = gr.Button("Reject", variant="stop", elem_id="annotation-review-reject")
        status = gr.Markdown(elem_id="annotation-review-status")

    def fill(user, who=EVERYONE, only_unreviewed=True):
        with read_scope(ctx.url) as session:
            names = annotators_with_judgments(session)
            html_, totals = _listing(session, who, only_unreviewed)
        return [gr.Dropdown(choices=[EVERYONE, *names], value=who if who in names else EVERYONE), html_, totals]

    @ctx.guard.requires(REVIEW)
    def show(who, only_unreviewed, user):
        return fill(user, who, only_unreviewed)

    def decide(decision: str):
        @ctx.guard.requires(REVIEW, writes=True)
        def handler(judgment_id, text, who, only_unreviewed, user, session):
            if judgment_id is None:
                raise StoreError("Judgment: enter the number of the judgment to review first.")
            record_decisions(session, reviewer_id=user.id, decisions=[Decision(int(judgment_id), decision, text)])
            html_, totals = _listing(session, who, only_unreviewed)
            return html_, totals, f"Judgment {int(judgment_id)} {decision}.", None, ""

        handler.__name__ = f"annotation_review_{decision}"
        return handler

    outputs = [annotator, listing, summary]
    tab.select(show, [annotator, unreviewed], outputs, api_name="annotation_review_show", concurrency_limit=4)
    refresh.click(show, [annotator, unreviewed], outputs, api_name="annotation_review_refresh", concurrency_limit=4)
    decided = [listing, summary, status, judgment, note]
    inputs = [judgment, note, annotator, unreviewed]
    accept.click(decide("accepted"), inputs, decided, api_name="annotation_review_accept", concurrency_limit=4)
    reject.click(decide("rejected"), inputs, decided, api_name="annotation_review_reject", concurrency_limit=4)
    return TabView(tab=tab, capability=REVIEW, outputs=outputs, fill=fill)
