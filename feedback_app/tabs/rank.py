"""Rank 3–4 responses best to worst by typing their numbers (keys 1–4 add to the order)."""

from __future__ import annotations

import re

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.state import ItemView
from feedback_app.tabs import TabView
from feedback_app.tabs.common import panel, wire
from storage.crud import StoreError


def judge(view: ItemView, order: str | None) -> tuple[list[int], dict]:
    """`order` lists the shown numbers best first, e.g. "3 1 2"; it must use each number once."""
    n = len(view.shown_order)
    picked = [int(d) for d in re.findall(r"\d", order or "")]
    if sorted(picked) != list(range(1, n + 1)):
        raise StoreError(f"Order: give each of the numbers 1–{n} once, best first (got {order!r}).")
    ranked = [view.shown_order[i - 1] for i in picked]
    return ranked, {"order_shown": picked}


def build(ctx: AppContext) -> TabView:
    def body():
        return gr.Textbox(
            label="Order, best first (keys 1–4; Backspace to fix)", elem_id="ranking-order", placeholder="e.g. 2 1 4 3"
        )

    p = panel(
        "ranking",
        title="Rank",
        response_labels=["1", "2", "3", "4"],
        lines=6,
        body=body,
        hint="Order the responses from best to worst by their numbers. Keys: **1–4** add to the order · "
        "**Enter** submit · **S** then **1–5** skip with a reason.",
    )
    wire(ctx, p, inputs=[p.extra], judge=judge, outputs=[p.extra], reset=lambda shown: [""])
    assert p.view is not None  # set by wire
    return p.view
