"""Engineers: the version lineage, set the live version, roll back to the live version's parent."""

from __future__ import annotations

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.roles import ENGINEER
from feedback_app.tabs import TabView
from rlhf.models.registry import lineage, live_version, set_live
from storage.crud import StoreError
from storage.db import read_scope, session_scope
from storage.models import ModelVersion

COLUMNS = ["version", "kind", "parent", "status", "live", "adapter", "round", "created", "metrics"]


def _metrics(version: ModelVersion) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in sorted((version.metrics or {}).items())
        if not isinstance(v, (dict, list))
    )


def lineage_rows(url: str) -> tuple[list[list], list[str]]:
    with read_scope(url) as session:
        tree = lineage(session)
    names = {version.id: version.name for _, version in tree}
    indent = "\u00a0\u00a0\u00a0"  # the table collapses ordinary spaces
    rows = [
        [
            indent * (depth - 1) + "└ " + v.name if depth else v.name,
            v.kind,
            names.get(v.parent_id, ""),
            v.status,
            "LIVE" if v.is_live else "",
            "yes" if v.is_adapter else "",
            v.round_id or "",
            v.created_at.strftime("%Y-%m-%d %H:%M"),
            _metrics(v),
        ]
        for depth, v in tree
    ]
    return rows, [v.name for _, v in tree if v.status == "ready"]


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Models", id="models", visible=False, elem_id="tab-models") as tab:
        gr.Markdown(
            "The lineage of versions (parents before children). The live version is what the app "
            "generates new candidates with; the switch takes effect without a restart."
        )
        table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, elem_id="models-table")
        with gr.Row():
            choice = gr.Dropdown(label="Version", choices=[], allow_custom_value=True, elem_id="models-version")
            make_live = gr.Button("Set live", variant="primary", elem_id="models-set-live")
            rollback = gr.Button("Roll back to the live version's parent", elem_id="models-rollback")
        status = gr.Textbox(label="Result", interactive=False, elem_id="models-status")

    def view():
        rows, ready = lineage_rows(ctx.url)
        return gr.Dataframe(value=rows, headers=COLUMNS), gr.Dropdown(choices=ready)

    def fill(user):
        return list(view())

    @ctx.guard.requires(ENGINEER)
    def set_live_version(name, user):
        if not name:
            raise StoreError("Version: pick one first.")
        with session_scope(ctx.url) as session:
            set_live(session, name=name, by=user.username)
        return (*view(), f"{name} is live (set by {user.username}).")

    @ctx.guard.requires(ENGINEER)
    def roll_back(user):
        with session_scope(ctx.url) as session:
            live = live_version(session)
            if live is None or live.parent_id is None:
                raise StoreError("Roll back: the live version has no parent to go back to.")
            parent = session.get(ModelVersion, live.parent_id)
            set_live(session, name=parent.name, by=f"{user.username} (roll back)")
            message = f"rolled back from {live.name} to {parent.name}."
        return (*view(), message)

    tab.select(ctx.guard.requires(ENGINEER)(fill), None, [table, choice], api_name="models_show", queue=False)
    make_live.click(set_live_version, choice, [table, choice, status], api_name="models_set_live", concurrency_limit=1)
    rollback.click(roll_back, None, [table, choice, status], api_name="models_rollback", concurrency_limit=1)
    return TabView(tab=tab, capability=ENGINEER, outputs=[table, choice], fill=fill)
