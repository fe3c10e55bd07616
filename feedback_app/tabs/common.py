"""The parts the four annotation tabs share: prompt and responses as plain text, counter, skip, wiring.

Texts go into read-only Textboxes, so model and user text is shown as data,
never as HTML. Submit and skip are cheap writes and skip Gradio's queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from feedback_app.annotation import Shown, open_next, show_next, skip_and_next, submit_and_next
from feedback_app.context import AppContext
from feedback_app.roles import ANNOTATE
from feedback_app.tabs import TabView, choices

SKIP_REASONS = [
    "Unclear prompt",
    "Needs expertise I lack",
    "Unsafe or offensive content",
    "Broken or empty response",
    "Other",
]


@dataclass
class Panel:
    kind: str
    tab: gr.Tab
    prompt: gr.Textbox
    responses: list[gr.Textbox]
    token: gr.Textbox
    counter: gr.Markdown
    submit: gr.Button
    skip: gr.Button
    reason: gr.Radio  # no default: a skip says why, chosen on purpose
    extra: Any = None  # the kind's own widgets, from `body`
    view: TabView | None = None  # set by `wire`

    @property
    def shown_outputs(self) -> list:
        return [self.prompt, *self.responses, self.token, self.counter]


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
        counter = gr.Markdown(elem_id=f"{kind}-counter")
        gr.Markdown(hint)
        prompt = gr.Textbox(label="Prompt", interactive=False, lines=2, elem_id=f"{kind}-prompt")
        with gr.Row():
            responses = [
                gr.Textbox(label=label, interactive=False, lines=lines, elem_id=f"{kind}-response-{i}")
                for i, label in enumerate(response_labels)
            ]
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
        token = gr.Textbox(visible="hidden", elem_id=f"{kind}-token")
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
        extra=extra,
    )


def shown_values(shown: Shown, slots: int) -> list:
    """Values for prompt, response slots, token and counter; only slots past the second can hide (rankings of 3)."""
    boxes: list[Any] = [shown.responses[i] if i < len(shown.responses) else "" for i in range(slots)]
    boxes[2:] = [gr.update(value=text, visible=bool(text) or not shown.token) for text in boxes[2:]]
    return [shown.prompt, *boxes, shown.token, shown.counter]


def wire(
    ctx: AppContext, p: Panel, *, inputs: list, judge: Callable, outputs: list, reset: Callable[[Shown], list]
) -> None:
    """Register load (tab select), submit and skip; each returns the next item at once.

    `outputs` are the kind's own widgets, set from the next item by `reset`.
    """
    slots = len(p.responses)

    def values(shown: Shown) -> list:
        return [*shown_values(shown, slots), *reset(shown), None]  # None: the next item starts with no skip reason

    def fill(user):
        return values(show_next(ctx.url, sealer=ctx.sealer, user=user, kind=p.kind, extras=ctx.extras))

    @ctx.guard.requires(ANNOTATE, writes=True)
    def next_item(user, session):
        return values(open_next(session, sealer=ctx.sealer, user=user, kind=p.kind, extras=ctx.extras))

    @ctx.guard.requires(ANNOTATE, writes=True)
    def submit(token, *answers, user, session):
        return values(
            submit_and_next(
                session,
                sealer=ctx.sealer,
                user=user,
                kind=p.kind,
                token=token,
                judge=lambda view: judge(view, *answers),
                extras=ctx.extras,
            )
        )

    @ctx.guard.requires(ANNOTATE, writes=True)
    def skip(token, reason, user, session):
        return values(
            skip_and_next(
                session, sealer=ctx.sealer, user=user, kind=p.kind, token=token, reason=reason, extras=ctx.extras
            )
        )

    everything = [*p.shown_outputs, *outputs, p.reason]
    p.view = TabView(tab=p.tab, capability=ANNOTATE, outputs=everything, fill=fill)
    p.tab.select(next_item, None, everything, queue=False, api_name=f"{p.kind}_next")
    p.submit.click(submit, [p.token, *inputs], everything, queue=False, api_name=f"{p.kind}_submit")
    p.skip.click(skip, [p.token, p.reason], everything, queue=False, api_name=f"{p.kind}_skip")
