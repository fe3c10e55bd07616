"""Rate one response on a 1–5 Likert scale, with an optional comment."""

from __future__ import annotations

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.state import ItemView
from feedback_app.tabs import TabView, choices
from feedback_app.tabs.common import panel, wire
from storage.crud import StoreError

SCORES = ["1", "2", "3", "4", "5"]


def judge(view: ItemView, score: str | None, comment: str | None) -> tuple[list[int], dict]:
    if score not in SCORES:
        raise StoreError("Pick a score from 1 to 5 first (keys 1–5).")
    payload: dict[str, object] = {"score": int(score)}
    if comment and comment.strip():
        payload["comment"] = comment.strip()
    return view.generation_ids, payload


def build(ctx: AppContext) -> TabView:
    def body():
        score = choices.bounded(gr.Radio(SCORES, label="Score: 1 very bad … 5 very good", elem_id="rating-choice"))
        comment = gr.Textbox(label="Comment (optional)", lines=1, elem_id="rating-comment")
        return score, comment

    p = panel(
        "rating",
        title="Rate",
        response_labels=["Response"],
        body=body,
        hint="Rate the response. Keys: **1–5** score · **Enter** submit · **S** then **1–5** skip with a reason.",
    )
    score, comment = p.extra
    wire(ctx, p, inputs=[score, comment], judge=judge, outputs=[score, comment], reset=lambda shown: [None, ""])
    assert p.view is not None  # set by wire
    return p.view
