"""Compare two responses: A / B / tie / both bad. Left/right order is random and recorded."""

from __future__ import annotations

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.state import ItemView
from feedback_app.tabs import TabView, choices
from feedback_app.tabs.common import panel, wire
from storage.crud import StoreError
from storage.models import NO_PREFERENCE_LABELS

CHOICES = ["A (left)", "B (right)", *NO_PREFERENCE_LABELS.values()]
_SHOWN = dict(zip(CHOICES, ["left", "right", *NO_PREFERENCE_LABELS]))


def judge(view: ItemView, choice: str | None) -> tuple[list[int], dict]:
    """Turn what was clicked (left/right) into the canonical a/b of the item."""
    if choice not in CHOICES:
        raise StoreError("Pick A, B, tie or both bad first (keys 1–4).")
    shown = _SHOWN[choice]
    canonical = shown
    if shown in ("left", "right"):
        winner = view.shown_order[0 if shown == "left" else 1]
        canonical = "a" if winner == view.generation_ids[0] else "b"
    return view.generation_ids, {"choice": canonical, "shown_choice": shown}


def build(ctx: AppContext) -> TabView:
    def body():
        return choices.bounded(
            gr.Radio(CHOICES, label="Which is better? (1 A · 2 B · 3 tie · 4 both bad)", elem_id="pairwise-choice")
        )

    p = panel(
        "pairwise",
        title="Compare",
        response_labels=["A (left)", "B (right)"],
        body=body,
        hint="Read both responses and pick the better one. Keys: **1** A · **2** B · **3** tie · "
        "**4** both bad · **Enter** submit · **S** then **1–5** skip with a reason.",
    )
    wire(ctx, p, inputs=[p.extra], judge=judge, outputs=[p.extra], reset=lambda shown: [None])
    assert p.view is not None  # set by wire
    return p.view
