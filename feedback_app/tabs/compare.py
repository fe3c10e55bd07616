"""Compare two responses: A / B / tie / both bad, overall and per configured criterion (`queue.questions`).
Left/right order is random and recorded."""

from __future__ import annotations

from functools import partial

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.state import ItemView
from feedback_app.tabs import TabView, choices
from feedback_app.tabs.common import panel, wire
from storage.crud import StoreError
from storage.models import NO_PREFERENCE_LABELS

CHOICES = ["A (left)", "B (right)", *NO_PREFERENCE_LABELS.values()]
_SHOWN = dict(zip(CHOICES, ["left", "right", *NO_PREFERENCE_LABELS]))


def _canonical(view: ItemView, shown: str) -> str:
    """What was clicked (left/right) as the item's own a/b; tie and both bad stay."""
    if shown not in ("left", "right"):
        return shown
    winner = view.shown_order[0 if shown == "left" else 1]
    return "a" if winner == view.generation_ids[0] else "b"


def judge(view: ItemView, choice: str | None, *answers: str | None, questions: tuple[str, ...] = ()) -> tuple:
    """The overall choice and, when the app asks about criteria, one answer per criterion (each required)."""
    if choice not in CHOICES:
        raise StoreError("Pick A, B, tie or both bad first (keys 1–4).")
    payload: dict = {"choice": _canonical(view, _SHOWN[choice]), "shown_choice": _SHOWN[choice]}
    if questions:
        missing = [name for name, answer in zip(questions, answers, strict=True) if answer not in CHOICES]
        if missing:
            raise StoreError(f"Answer {', '.join(missing)} too (A, B, tie or both bad).")
        payload["criteria"] = {
            name: _canonical(view, _SHOWN[str(answer)]) for name, answer in zip(questions, answers, strict=True)
        }
    return view.generation_ids, payload


def build(ctx: AppContext) -> TabView:
    questions = ctx.config.questions

    def body():
        overall = choices.bounded(
            gr.Radio(CHOICES, label="Which is better? (1 A · 2 B · 3 tie · 4 both bad)", elem_id="pairwise-choice")
        )
        criteria = [
            choices.bounded(gr.Radio(CHOICES, label=f"{name}: which is better?", elem_id=f"pairwise-criterion-{name}"))
            for name in questions
        ]
        return [overall, *criteria]

    p = panel(
        "pairwise",
        title="Compare",
        response_labels=["A (left)", "B (right)"],
        body=body,
        hint=f"Read both responses and pick the better one{', then answer each criterion below' if questions else ''}. "
        "Keys: **1** A · **2** B · **3** tie · **4** both bad · **Enter** submit · **S** then **1–5** skip with a reason.",
    )
    wire(
        ctx,
        p,
        inputs=p.extra,
        judge=partial(judge, questions=questions),
        outputs=p.extra,
        reset=lambda shown: [None] * len(p.extra),
    )
    assert p.view is not None  # set by wire
    return p.view
