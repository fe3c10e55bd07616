"""Flag a failure from an annotation tab: which response shown, and what went wrong (storage.redteam).

The item's sealed view says which stored response sat in each place, so a flag names the response
the annotator saw, never one the page could swap in.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.roles import ANNOTATE
from feedback_app.state import ItemView, load_view
from feedback_app.tabs import choices
from feedback_app.tabs.redteam import CATEGORY_LABELS
from storage import redteam
from storage.crud import StoreError


@dataclass
class FlagBox:
    which: gr.Radio
    category: gr.Radio
    note: gr.Textbox
    button: gr.Button
    status: gr.Markdown


def box(kind: str, response_labels: list[str]) -> FlagBox:
    with gr.Accordion("Flag a failure (unsafe, wrong, refusal)", open=False, elem_id=f"{kind}-flag-box"):
        with gr.Row():
            which = choices.bounded(
                gr.Radio(
                    [(label, i) for i, label in enumerate(response_labels)],
                    value=0 if len(response_labels) == 1 else None,
                    label="Which response",
                    elem_id=f"{kind}-flag-which",
                )
            )
            category = choices.bounded(
                gr.Radio(
                    [(label, name) for name, label in CATEGORY_LABELS.items()],
                    value=None,
                    label="What went wrong",
                    elem_id=f"{kind}-flag-category",
                )
            )
        note = gr.Textbox(label="Note (optional)", lines=1, elem_id=f"{kind}-flag-note")
        with gr.Row():
            button = gr.Button("Flag it", variant="stop", elem_id=f"{kind}-flag")
            status = gr.Markdown(elem_id=f"{kind}-flag-status")
    return FlagBox(which, category, note, button, status)


def wire(ctx: AppContext, kind: str, flag: FlagBox, token: gr.Textbox) -> None:
    @ctx.guard.requires(ANNOTATE, writes=True)
    def flagged(sealed, which, category, note, user, session):
        if not sealed:
            raise StoreError("No item on screen to flag.")
        view = load_view(ctx.sealer, sealed, ItemView, user_id=user.id)
        if which is None or not 0 <= int(which) < len(view.shown_order):
            raise StoreError("Pick the response that failed first.")
        redteam.flag_generation(
            session,
            user_id=user.id,
            username=user.username,
            generation_id=view.shown_order[int(which)],
            category=category,
            note=note,
        )
        return (
            f"Flagged as {CATEGORY_LABELS[category].lower()}: the prompt joins the adversarial set. Now judge it.",
            "",
        )

    flag.button.click(
        flagged,
        [token, flag.which, flag.category, flag.note],
        [flag.status, flag.note],
        queue=False,
        api_name=f"{kind}_flag",
    )
