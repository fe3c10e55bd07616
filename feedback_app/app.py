"""The annotation and review app: builds the Blocks, logs users in, shows each role its tabs.

Roles are checked inside every handler (feedback_app.roles); the tabs a role
may not use are also hidden, per user, when the page loads, and the first tab
the role may use is filled in the same request.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from feedback_app.config import AppConfig, load_app_config
from feedback_app.context import AppContext
from feedback_app.filler import QueueFiller
from feedback_app.roles import ANYONE, Guard, allowed
from feedback_app.sessions import expire_logins
from feedback_app.tabs import annotators, compare, correct, leaderboard, models, monitoring, rank, rate, review, rounds
from rlhf.quality.selection import Prioritizer
from storage.db import database_url
from storage.queue import Extras

KEYBOARD_JS = (Path(__file__).parent / "keyboard.js").read_text()
CSS = """
.gradio-container textarea { font-family: ui-monospace, monospace; }
.side-by-side td { vertical-align: top; white-space: pre-wrap; padding: 6px; border-top: 1px solid #ddd; }
"""
TABS = (compare, rate, rank, correct, rounds, models, review, leaderboard, annotators, monitoring)


def build_app(
    url: str | None = None, config: AppConfig | None = None, *, pool=None, generate: bool = True
) -> tuple[gr.Blocks, AppContext]:
    """The Blocks and their shared context; `generate=False` leaves out candidate generation (no model loaded)."""
    url = database_url(url)
    config = config or load_app_config()
    ctx = AppContext(
        url=url,
        config=config,
        guard=Guard(url),
        extras=Extras(gold_rate=config.gold_rate, swap_rate=config.swap_rate),
        prioritizer=Prioritizer(url, config.selection, config.selection_scorer),
    )
    if generate:
        ctx.filler = QueueFiller(url, config, pool=pool, prioritizer=ctx.prioritizer)
    with gr.Blocks(title="RLHF feedback") as demo:
        whoami = gr.Markdown(elem_id="whoami")
        with gr.Tabs(elem_id="tabs") as tabs:
            views = [module.build(ctx) for module in TABS]

        @ctx.guard.requires(ANYONE)
        def on_load(user):
            usable = [allowed(user.role, view.capability) for view in views]
            opening = next((view for view, ok in zip(views, usable) if ok), None)
            values = []
            for view in views:
                values += view.fill(user) if view is opening else [gr.skip()] * len(view.outputs)
            hello = f"Logged in as **{user.username}** ({user.role}) · [Log out](/logout)"
            return [
                hello,
                gr.Tabs(selected=opening.tab.id if opening else None),
                *[gr.Tab(visible=ok) for ok in usable],
                *values,
            ]

        outputs = [whoami, tabs, *[view.tab for view in views], *[o for view in views for o in view.outputs]]
        demo.load(on_load, None, outputs, api_name="on_load", concurrency_limit=8)
    demo.queue(default_concurrency_limit=4)
    return demo, ctx


def launch(
    url: str | None = None,
    config: AppConfig | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    block: bool = True,
    pool=None,
    generate: bool = True,
    background_fill: bool = False,
    **kwargs,
):
    """Build and start the app on the configured host and port; returns (demo, ctx)."""
    demo, ctx = build_app(url, config, pool=pool, generate=generate)
    if background_fill and ctx.filler is not None:
        ctx.filler.start()
    demo.launch(
        server_name=host or ctx.config.host,
        server_port=port or ctx.config.port,
        auth=ctx.guard.authenticate,
        auth_message="Log in with your feedback account.",
        prevent_thread_lock=True,
        js=KEYBOARD_JS,
        css=CSS,
        show_error=True,
        quiet=not block,
        **kwargs,
    )
    expire_logins(demo, ctx.config.session_hours)
    if block:
        demo.block_thread()
    return demo, ctx
