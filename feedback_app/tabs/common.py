"""The parts the four annotation tabs share: prompt and responses, progress, guidelines, history, skip, wiring.

Prompt and responses are shown as sanitised Markdown (feedback_app.safe_markdown), as a chat,
or as raw text in read-only Textboxes; the page switches between the three without a request
(the mode is a data attribute that the CSS below reads). Progress bars are built from numbers
only, and every text in the history is escaped. Submit, skip, undo and edit are cheap writes
and skip Gradio's queue.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from feedback_app import safe_markdown
from feedback_app.annotation import Shown, open_edit, open_next, skip_and_next, submit_and_next, undo_and_show
from feedback_app.context import AppContext
from feedback_app.roles import ANNOTATE
from feedback_app.tabs import TabView, choices, flagging
from storage import guidelines
from storage.crud import StoreError
from storage.db import session_scope
from storage.markup import escape_markdown

SKIP_REASONS = [
    "Unclear prompt",
    "Needs expertise I lack",
    "Unsafe or offensive content",
    "Broken or empty response",
    "Other",
]
VIEW_MODES = ["Markdown", "Chat", "Raw text"]
CSS = """
.annot-body:not([data-mode="Chat"]) .as-chat, .annot-body[data-mode="Chat"] .as-markdown { display: none; }
.annot-body:not([data-mode="Raw text"]) .raw-text, .annot-body[data-mode="Raw text"] .rendered { display: none; }
.rendered { border: 1px solid #ddd; border-radius: 6px; padding: 4px 10px; overflow-wrap: anywhere; }
.resp-label { font-weight: 600; font-size: 0.9em; color: #555; }
.chat-turn { margin: 6px 0; padding: 4px 10px; border-radius: 10px; }
.chat-user, .chat-system, .chat-other { background: #eef2ff; margin-right: 15%; }
.chat-assistant { background: #f0fdf4; margin-left: 15%; }
.chat-role { font-size: 0.8em; color: #555; }
.md-image { color: #92400e; font-family: ui-monospace, monospace; }
.progress-bars label { display: flex; gap: 8px; align-items: center; }
.progress-bars progress { width: 16em; height: 12px; }
.history td, .history th { padding: 3px 8px; border-top: 1px solid #ddd; text-align: left; vertical-align: top; }
"""


@dataclass
class Panel:
    kind: str
    tab: gr.Tab
    prompt: gr.Textbox
    responses: list[gr.Textbox]
    token: gr.Textbox
    counter: gr.HTML  # progress bars, mine and the team's
    submit: gr.Button
    skip: gr.Button
    reason: gr.Radio  # no default: a skip says why, chosen on purpose
    prompt_view: gr.HTML
    response_views: list[gr.HTML]
    meta: gr.Markdown  # the prompt's source and tags; "editing" during an edit
    guidelines: gr.HTML
    history: gr.HTML
    pick: gr.Number  # the history entry Edit and Undo act on
    edit: gr.Button
    undo: gr.Button
    response_labels: list[str]
    extra: Any = None  # the kind's own widgets, from `body`
    flag: Any = None  # feedback_app.tabs.flagging.FlagBox
    view: TabView | None = None  # set by `wire`

    @property
    def shown_outputs(self) -> list:
        return [self.prompt, *self.responses, self.token, self.counter]

    @property
    def view_outputs(self) -> list:
        """After the kind's own widgets and the skip reason, so API callers find the token where it always was."""
        return [self.prompt_view, *self.response_views, self.meta, self.guidelines, self.history, self.pick]


def panel(
    kind: str,
    *,
    title: str,
    response_labels: list[str],
    hint: str,
    lines: int = 5,
    body: Callable[[], Any] | None = None,
    submit_keys: str = "Enter",
) -> Panel:
    """Build the tab's skeleton; `body` adds the kind's own choice widgets between responses and buttons."""
    with gr.Tab(title, id=kind, visible=False, elem_id=f"tab-{kind}") as tab:
        counter = gr.HTML(elem_id=f"{kind}-counter")
        with gr.Accordion("Guidelines", open=False, elem_id=f"{kind}-guidelines-box"):
            guide = gr.HTML(elem_id=f"{kind}-guidelines")
        gr.Markdown(hint, elem_id=f"{kind}-hint")
        with gr.Row():
            mode = gr.Radio(VIEW_MODES, value=VIEW_MODES[0], label="Show as", elem_id=f"{kind}-mode", scale=1)
            meta = gr.Markdown(elem_id=f"{kind}-meta")
        with gr.Column(elem_id=f"{kind}-body", elem_classes=["annot-body"]):
            prompt_view = gr.HTML(elem_id=f"{kind}-prompt-view", elem_classes=["rendered"])
            prompt = gr.Textbox(
                label="Prompt", interactive=False, lines=2, elem_id=f"{kind}-prompt", elem_classes=["raw-text"]
            )
            responses, response_views = [], []
            with gr.Row():
                for i, label in enumerate(response_labels):
                    with gr.Column():
                        response_views.append(gr.HTML(elem_id=f"{kind}-response-view-{i}", elem_classes=["rendered"]))
                        responses.append(
                            gr.Textbox(
                                label=label,
                                interactive=False,
                                lines=lines,
                                elem_id=f"{kind}-response-{i}",
                                elem_classes=["raw-text"],
                            )
                        )
        extra = body() if body else None
        with gr.Row():
            submit = gr.Button(f"Submit ({submit_keys})", variant="primary", elem_id=f"{kind}-submit")
            reason = choices.bounded(
                gr.Radio(
                    SKIP_REASONS,
                    value=None,
                    label=f"Skip reason (S, then 1–{len(SKIP_REASONS)}; Esc cancels)",
                    elem_id=f"{kind}-reason",
                )
            )
            skip = gr.Button("Skip (S)", elem_id=f"{kind}-skip")
        with gr.Accordion("My history", open=False, elem_id=f"{kind}-history-box"):
            history = gr.HTML(elem_id=f"{kind}-history")
            with gr.Row():
                pick = gr.Number(label="Judgment #", precision=0, minimum=0, elem_id=f"{kind}-history-pick")
                edit = gr.Button("Edit: answer it again", elem_id=f"{kind}-history-edit")
                undo = gr.Button("Undo: take it back", elem_id=f"{kind}-history-undo")
        flag = flagging.box(kind, response_labels)
        token = gr.Textbox(visible="hidden", elem_id=f"{kind}-token")
    mode.change(
        None,
        [mode],
        None,
        js=f"(mode) => {{ const body = document.getElementById('{kind}-body'); if (body) body.dataset.mode = mode; }}",
    )
    return Panel(
        kind=kind,
        tab=tab,
        prompt=prompt,
        responses=responses,
        token=token,
        counter=counter,
        submit=submit,
        skip=skip,
        reason=reason,
        prompt_view=prompt_view,
        response_views=response_views,
        meta=meta,
        guidelines=guide,
        history=history,
        pick=pick,
        edit=edit,
        undo=undo,
        response_labels=response_labels,
        extra=extra,
        flag=flag,
    )


def _bar(label: str, value: int, total: int, text: str, elem: str) -> str:
    percent = round(100 * value / total) if total else 0
    return (
        f'<label>{label} <progress id="{elem}" value="{int(value)}" max="{max(int(total), 1)}"></progress>'
        f" {percent}% · {text}</label>"
    )


def progress_html(shown: Shown, kind: str) -> str:
    """Two bars from numbers alone: this annotator's items of the kind, and the team's judgment slots."""
    mine, team = shown.progress, shown.team
    text = f"Done {mine.done} · skipped {mine.skipped} · remaining {mine.remaining}"
    if not shown.token:
        text += " — the queue is empty for now"
    return (
        '<div class="progress-bars">'
        + _bar("Mine", mine.done + mine.skipped, mine.done + mine.skipped + mine.remaining, text, f"{kind}-mine")
        + _bar("Team", team.filled, team.slots, f"{team.filled} of {team.slots} judgments", f"{kind}-team")
        + "</div>"
    )


def history_html(shown: Shown) -> str:
    if not shown.history:
        return "<p>No judgments yet.</p>"
    rows = "".join(
        f"<tr><td>{entry.judgment_id}</td><td>{entry.created_at:%H:%M} UTC</td>"
        f"<td>{html.escape(entry.prompt)}</td><td>{html.escape(entry.answer)}</td></tr>"
        for entry in shown.history
    )
    return (
        '<table class="history"><tr><th>#</th><th>When</th><th>Prompt</th><th>Your answer</th></tr>'
        f"{rows}</table><p>Put a # in the box, then Edit (answer again; the new answer replaces the old) "
        "or Undo (take it back; the item comes back to you).</p>"
    )


def meta_markdown(shown: Shown) -> str:
    parts = []
    if shown.editing is not None:
        parts.append(f"**Editing your judgment #{shown.editing}**: your submit replaces it")
    if shown.source:
        parts.append(f"Source: {escape_markdown(shown.source)}")
    if shown.tags:
        parts.append("Tags: " + ", ".join(escape_markdown(tag) for tag in shown.tags))
    return " · ".join(parts)


def guidelines_html(text: str) -> str:
    return safe_markdown.render(text) if text.strip() else "<p>No guidelines for this task yet.</p>"


def shown_values(shown: Shown, slots: int, *, kind: str, labels: list[str], guide: str) -> tuple[list, list]:
    """Values for `Panel.shown_outputs` and `Panel.view_outputs`; only slots past the second can hide (rankings of 3)."""
    texts = [shown.responses[i] if i < len(shown.responses) else "" for i in range(slots)]
    keep = [i < 2 or bool(texts[i]) or not shown.token for i in range(slots)]
    boxes: list[Any] = [gr.update(value=t, visible=k) if i >= 2 else t for i, (t, k) in enumerate(zip(texts, keep))]
    prompt_turns = [(turn["role"], turn["content"]) for turn in shown.turns]
    prompt_view = safe_markdown.both_views(shown.prompt, prompt_turns) if shown.token else "<p>Nothing to show.</p>"
    views: list[Any] = []
    for i, (text, label) in enumerate(zip(texts, labels)):
        rendered = f'<div class="resp-label">{html.escape(label)}</div>' + safe_markdown.both_views(
            text, [("assistant", text)] if text else []
        )
        views.append(gr.update(value=rendered, visible=keep[i]) if i >= 2 else rendered)
    latest = shown.history[0].judgment_id if shown.history else None
    return (
        [shown.prompt, *boxes, shown.token, progress_html(shown, kind)],
        [prompt_view, *views, meta_markdown(shown), guidelines_html(guide), history_html(shown), latest],
    )


def wire(
    ctx: AppContext, p: Panel, *, inputs: list, judge: Callable, outputs: list, reset: Callable[[Shown], list]
) -> None:
    """Register load (tab select), submit, skip, edit and undo; each returns the item to show at once.

    `outputs` are the kind's own widgets, set from the next item by `reset`.
    """
    slots = len(p.responses)

    def values(shown: Shown, session) -> list:
        guide = guidelines.current(session, kind=p.kind, default=ctx.config.guidelines.get(p.kind, ""))
        shown_part, view_part = shown_values(shown, slots, kind=p.kind, labels=p.response_labels, guide=guide)
        return [*shown_part, *reset(shown), None, *view_part]  # None: the next item starts with no skip reason

    def fill(user):
        with session_scope(ctx.url) as session:
            return values(open_next(session, sealer=ctx.sealer, user=user, kind=p.kind, extras=ctx.extras), session)

    @ctx.guard.requires(ANNOTATE, writes=True)
    def next_item(user, session):
        return values(open_next(session, sealer=ctx.sealer, user=user, kind=p.kind, extras=ctx.extras), session)

    @ctx.guard.requires(ANNOTATE, writes=True)
    def submit(token, *answers, user, session):
        shown = submit_and_next(
            session,
            sealer=ctx.sealer,
            user=user,
            kind=p.kind,
            token=token,
            judge=lambda view: judge(view, *answers),
            extras=ctx.extras,
        )
        return values(shown, session)

    @ctx.guard.requires(ANNOTATE, writes=True)
    def skip(token, reason, user, session):
        shown = skip_and_next(
            session, sealer=ctx.sealer, user=user, kind=p.kind, token=token, reason=reason, extras=ctx.extras
        )
        return values(shown, session)

    def _picked(pick) -> int:
        if pick is None or not float(pick).is_integer() or pick < 1:
            raise StoreError("Put the # of one of your judgments (from the table) in the box first.")
        return int(pick)

    @ctx.guard.requires(ANNOTATE, writes=True)
    def edit(pick, user, session):
        shown = open_edit(session, sealer=ctx.sealer, user=user, kind=p.kind, judgment_id=_picked(pick))
        return values(shown, session)

    @ctx.guard.requires(ANNOTATE, writes=True)
    def undo(pick, user, session):
        shown = undo_and_show(session, sealer=ctx.sealer, user=user, kind=p.kind, judgment_id=_picked(pick))
        return values(shown, session)

    everything = [*p.shown_outputs, *outputs, p.reason, *p.view_outputs]
    p.view = TabView(tab=p.tab, capability=ANNOTATE, outputs=everything, fill=fill)
    p.tab.select(next_item, None, everything, queue=False, api_name=f"{p.kind}_next")
    p.submit.click(submit, [p.token, *inputs], everything, queue=False, api_name=f"{p.kind}_submit")
    p.skip.click(skip, [p.token, p.reason], everything, queue=False, api_name=f"{p.kind}_skip")
    p.edit.click(edit, [p.pick], everything, queue=False, api_name=f"{p.kind}_edit")
    p.undo.click(undo, [p.pick], everything, queue=False, api_name=f"{p.kind}_undo")
    flagging.wire(ctx, p.kind, p.flag, p.token)
