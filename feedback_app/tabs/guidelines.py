"""Engineers: edit each queue kind's task guidelines (Markdown), which annotators see above the task.

The app config's `queue.guidelines` gives the starting text; a save here is kept in the store
(storage.guidelines) and wins from then on. The preview is the annotators' own sanitised rendering.
"""

from __future__ import annotations

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.roles import ENGINEER
from feedback_app.tabs import TabView, choices
from feedback_app.tabs.common import guidelines_html
from storage import guidelines
from storage.db import read_scope
from storage.queue import ITEM_KINDS

LABELS = {"pairwise": "Compare", "rating": "Rate", "ranking": "Rank", "correction": "Correct"}


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Guidelines", id="guidelines", visible=False, elem_id="tab-guidelines") as tab:
        kind = choices.bounded(
            gr.Radio([(LABELS[k], k) for k in ITEM_KINDS], value=ITEM_KINDS[1], label="Task", elem_id="guidelines-kind")
        )
        with gr.Row():
            text = gr.Textbox(label="Guidelines (Markdown)", lines=12, elem_id="guidelines-text")
            preview = gr.HTML(elem_id="guidelines-preview")
        save = gr.Button("Save", variant="primary", elem_id="guidelines-save")
        status = gr.Markdown(elem_id="guidelines-status")

    def current(kind_name: str) -> str:
        with read_scope(ctx.url) as session:
            return guidelines.current(session, kind=kind_name, default=ctx.config.guidelines.get(kind_name, ""))

    def fill(user):
        shown = current(ITEM_KINDS[1])
        return [ITEM_KINDS[1], shown, guidelines_html(shown), ""]

    @ctx.guard.requires(ENGINEER)
    def load(kind_name, user):
        shown = current(kind_name)
        return shown, guidelines_html(shown), ""

    @ctx.guard.requires(ENGINEER, writes=True)
    def store(kind_name, new_text, user, session):
        saved = guidelines.save(session, kind=kind_name, text=new_text, username=user.username)
        return guidelines_html(saved.text), f"Saved the {LABELS[saved.kind]} guidelines; annotators see them next item."

    show = ctx.guard.requires(ENGINEER)(fill)
    tab.select(show, None, [kind, text, preview, status], queue=False, api_name="guidelines_show")
    kind.change(load, kind, [text, preview, status], queue=False, api_name="guidelines_load")
    save.click(store, [kind, text], [preview, status], queue=False, api_name="guidelines_save")
    return TabView(tab=tab, capability=ENGINEER, outputs=[kind, text, preview, status], fill=fill)
