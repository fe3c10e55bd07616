"""Red team: write prompts meant to break the model, try them on the live version, flag the failures.

Every written or flagged prompt joins the adversarial set (storage.redteam): the next fill answers
it first and its items are served first, rounds up-weight it (`data.adversarial_weight`), and a
round's evaluation reports the win-rate on it apart from the general one.
"""

from __future__ import annotations

import html

import gradio as gr

from feedback_app import safe_markdown
from feedback_app.context import AppContext
from feedback_app.roles import ANNOTATE
from feedback_app.state import TriedResponse, dump_view, load_view
from feedback_app.tabs import TabView, choices
from storage import redteam
from storage.crud import StoreError
from storage.db import read_scope

CATEGORY_LABELS = {"unsafe": "Unsafe or harmful", "wrong": "Wrong answer", "refusal": "Refusal or apology"}


def set_html(rows: list[redteam.AdversarialRow], total: int) -> str:
    if not rows:
        return "<p>The adversarial set is empty: write a prompt above, or flag a failure in an annotation tab.</p>"
    body = "".join(
        f"<tr><td>{row.prompt_id}</td><td>{html.escape(row.text[:300])}</td><td>{html.escape(row.origin)}</td>"
        f"<td>{html.escape(row.added_by or '')}</td><td>{row.flags}</td><td>{html.escape(row.categories)}</td></tr>"
        for row in rows
    )
    return (
        f"<p>{total} prompt{'s' if total != 1 else ''} in the adversarial set"
        f"{f' (the newest {len(rows)} shown)' if len(rows) < total else ''}.</p>"
        '<table class="history"><tr><th>#</th><th>Prompt</th><th>How</th><th>By</th><th>Flags</th>'
        f"<th>Failures</th></tr>{body}</table>"
    )


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Red team", id="redteam", visible=False, elem_id="tab-redteam") as tab:
        gr.Markdown(
            "Write a prompt meant to make the model fail (say something unsafe, get a fact wrong, refuse for no "
            "reason). **Try it** shows the live model's answer; **Flag** keeps that answer as a failure. Both, and "
            "**Add to the set**, put the prompt in the adversarial set: the next fill asks it first and rounds "
            "weight it up.",
            elem_id="redteam-hint",
        )
        prompt = gr.Textbox(label="Your prompt", lines=4, elem_id="redteam-prompt")
        with gr.Row():
            try_it = gr.Button("Try it on the live model", variant="primary", elem_id="redteam-try")
            add = gr.Button("Add to the set (without trying)", elem_id="redteam-add")
        response = gr.HTML(elem_id="redteam-response", elem_classes=["rendered"])
        with gr.Row():
            category = choices.bounded(
                gr.Radio(
                    [(label, name) for name, label in CATEGORY_LABELS.items()],
                    value=None,
                    label="What went wrong",
                    elem_id="redteam-category",
                )
            )
            note = gr.Textbox(label="Note (optional)", lines=1, elem_id="redteam-note")
        flag = gr.Button("Flag this answer as a failure", variant="stop", elem_id="redteam-flag")
        status = gr.Markdown(elem_id="redteam-status")
        table = gr.HTML(elem_id="redteam-set")
        token = gr.Textbox(visible="hidden", elem_id="redteam-token")

    def current_set() -> str:
        with read_scope(ctx.url) as session:
            return set_html(redteam.adversarial_set(session), redteam.set_size(session))

    def fill(user):
        return [current_set(), ""]

    @ctx.guard.requires(ANNOTATE)
    def tried(text, user):
        text = (text or "").strip()
        if not text:
            raise StoreError("Write a prompt first.")
        if ctx.filler is None:
            raise StoreError("This app does not generate answers (started without a model); use Add to the set.")
        live, answer = ctx.filler.try_prompt(text)
        assert live.id is not None  # a registered version
        sealed = dump_view(ctx.sealer, TriedResponse(user_id=user.id, prompt=text, response=answer, version_id=live.id))
        shown = safe_markdown.render(answer) if answer.strip() else "<p><em>(an empty answer)</em></p>"
        return (
            f'<p class="resp-label">{html.escape(live.name)} answered:</p>{shown}',
            sealed,
            "If this answer fails, say how and flag it.",
        )

    @ctx.guard.requires(ANNOTATE, writes=True)
    def added(text, user, session):
        written, new = redteam.write_prompt(session, user_id=user.id, username=user.username, text=text or "")
        said = f"Added prompt #{written.id} to the adversarial set." if new else f"Prompt #{written.id} is in the set."
        return set_html(redteam.adversarial_set(session), redteam.set_size(session)), said

    @ctx.guard.requires(ANNOTATE, writes=True)
    def flagged(sealed, kind_of_failure, why, user, session):
        if not sealed:
            raise StoreError("Try the prompt first: a flag keeps the answer the model gave.")
        seen = load_view(ctx.sealer, sealed, TriedResponse, user_id=user.id)
        written, _ = redteam.write_prompt(session, user_id=user.id, username=user.username, text=seen.prompt)
        assert written.id is not None  # flushed
        redteam.flag_tried_response(
            session,
            user_id=user.id,
            username=user.username,
            prompt_id=written.id,
            response=seen.response,
            version_id=seen.version_id,
            category=kind_of_failure,
            note=why,
        )
        table_now = set_html(redteam.adversarial_set(session), redteam.set_size(session))
        return (
            table_now,
            f"Flagged as {CATEGORY_LABELS[kind_of_failure].lower()}; prompt #{written.id} is in the set.",
            "",
        )

    show = ctx.guard.requires(ANNOTATE)(fill)
    tab.select(show, None, [table, status], queue=False, api_name="redteam_show")
    try_it.click(tried, prompt, [response, token, status], concurrency_limit=1, api_name="redteam_try")
    add.click(added, prompt, [table, status], queue=False, api_name="redteam_add")
    flag.click(flagged, [token, category, note], [table, status, note], queue=False, api_name="redteam_flag")
    return TabView(tab=tab, capability=ANNOTATE, outputs=[table, status], fill=fill)
