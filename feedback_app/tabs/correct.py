"""Correct a response by editing it; the edit becomes SFT data and a corrected ≻ original pair."""

from __future__ import annotations

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.state import ItemView
from feedback_app.tabs import TabView
from feedback_app.tabs.common import panel, wire
from storage.crud import StoreError


def judge(view: ItemView, corrected: str | None, original: str | None) -> tuple[list[int], dict]:
    if not corrected or not corrected.strip():
        raise StoreError("Corrected response: must not be empty (or skip the item).")
    if original is not None and corrected.strip() == original.strip():
        raise StoreError("Corrected response: edit the response before submitting (or skip the item).")
    return view.generation_ids, {"corrected": corrected.strip()}


def build(ctx: AppContext) -> TabView:
    def body():
        return gr.Textbox(label="Your corrected response (Ctrl+Enter submits)", lines=6, elem_id="correction-edit")

    p = panel(
        "correction",
        title="Correct",
        response_labels=["Original response"],
        body=body,
        hint="Rewrite the response so it is correct and helpful. Keys: **Ctrl+Enter** submit · "
        "**S** then **1–5** skip with a reason (outside the text box).",
        submit_keys="Ctrl+Enter",
    )
    edit = p.extra
    wire(
        ctx,
        p,
        inputs=[edit, p.responses[0]],
        judge=judge,
        outputs=[edit],
        reset=lambda shown: [shown.responses[0] if shown.responses else ""],
    )
    assert p.view is not None  # set by wire
    return p.view
