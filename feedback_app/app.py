"""The annotation and review app: builds the Blocks, logs users in, shows each role its tabs.

Roles are checked inside every handler (feedback_app.roles); the tabs a role
may not use are also hidden, per user, when the page loads, and the first tab
the role may use is filled in the same request. Every request passes
feedback_app.security first (origins, logins, session hashes, uploads). Uploads
and report copies older than six hours are deleted.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from feedback_app.config import AppConfig, load_app_config
from feedback_app.context import AppContext
from feedback_app.filler import QueueFiller
from feedback_app.roles import ANYONE, Guard, allowed
from feedback_app.security import Policy, Security
from feedback_app.tabs import (
    annotation_review,
    annotators,
    blind,
    common,
    compare,
    correct,
    guidelines,
    leaderboard,
    models,
    monitoring,
    rank,
    rate,
    redteam,
    review,
    rounds,
)
from rlhf.quality.selection import Prioritizer
from storage.db import database_url
from storage.markup import escape_markdown
from storage.queue import Extras

KEYBOARD_JS = (Path(__file__).parent / "keyboard.js").read_text()
CSS = (
    """
.gradio-container textarea { font-family: ui-monospace, monospace; }
#app-notice { display: none; position: fixed; top: 16px; left: 50%; transform: translateX(-50%); z-index: 1000;
  max-width: 40em; padding: 10px 16px; border-radius: 8px; background: #7f1d1d; color: #fff; cursor: pointer;
  white-space: pre-wrap; box-shadow: 0 2px 10px rgba(0,0,0,.3); }
.skip-armed { outline: 3px solid #f59e0b; border-radius: 6px; }
.side-by-side td { vertical-align: top; white-space: pre-wrap; padding: 6px; border-top: 1px solid #ddd; }
.side-by-side small { color: #666; }
"""
    + common.CSS
)
TABS = (
    compare,
    rate,
    rank,
    correct,
    rounds,
    models,
    review,
    blind,
    leaderboard,
    annotators,
    annotation_review,
    monitoring,
    guidelines,
    redteam,
)


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
    with gr.Blocks(title="RLHF feedback", delete_cache=(3600, 6 * 3600)) as demo:
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
            hello = f"Logged in as **{escape_markdown(user.username)}** ({user.role}) · [Log out](/logout)"
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
    c = ctx.config
    policy = Policy(
        session_hours=c.session_hours,
        trusted_origins=c.trusted_origins,
        max_request_bytes=int(c.max_request_mb * (1 << 20)),
        login_failures_per_user=c.login_failures_per_user,
        login_failures_per_address=c.login_failures_per_address,
        login_window_s=c.login_window_minutes * 60,
    )
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
        max_file_size=int(c.max_upload_mb * (1 << 20)),
        app_kwargs={"middleware": [Middleware(Security, guard=ctx.guard, policy=policy)]},
        **kwargs,
    )
    if block:
        demo.block_thread()
    return demo, ctx
