"""Engineers: the version lineage, a selected version's metrics card, set the live version, roll back.

Set live and Roll back take two clicks: the first says what would change and arms the action for this
page (a gr.State, so over HTTP too), the second within `CONFIRM_S` does it. A refusal is the Result
message, never a raised error: Gradio would cover the table with Error badges.
"""

from __future__ import annotations

import time

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.roles import ENGINEER
from feedback_app.tabs import TabView
from feedback_app.tabs.round_metrics import metrics_card
from rlhf.models.registry import get_version, lineage, live_version, set_live
from storage.crud import StoreError
from storage.db import read_scope, session_scope
from storage.markup import clip, escape_markdown
from storage.models import ModelVersion

COLUMNS = ["version", "kind", "parent", "status", "live", "adapter", "round", "created", "gate"]
CONFIRM_S = 60.0
"""How long a first click on Set live / Roll back stays armed."""


def _gate(version: ModelVersion) -> str:
    gate = (version.metrics or {}).get("gate")
    if not isinstance(gate, dict):
        return ""
    return "passed" if gate.get("passed") else "refused"


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
            _gate(v),
        ]
        for depth, v in tree
    ]
    return rows, [v.name for _, v in tree if v.status == "ready"]


def version_card(url: str, name: str | None) -> str:
    """The metrics card (escaped Markdown) of the version called `name`."""
    if not name:
        return "Pick a version to see its evaluation."
    with read_scope(url) as session:
        version = get_version(session, name=name)
        if version is None:
            return f"No version named {escape_markdown(name)}."
        return f"### {escape_markdown(version.name)}\n\n" + metrics_card(version.metrics)


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Models", id="models", visible=False, elem_id="tab-models") as tab:
        gr.Markdown(
            "The lineage of versions (parents before children). The live version is what the app "
            "generates new candidates with; the switch takes effect without a restart. Set live and "
            "Roll back ask for a second click to confirm."
        )
        table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, elem_id="models-table")
        with gr.Row():
            choice = gr.Dropdown(label="Version", choices=[], allow_custom_value=True, elem_id="models-version")
            make_live = gr.Button("Set live", variant="primary", elem_id="models-set-live")
            rollback = gr.Button("Roll back to the live version's parent", elem_id="models-rollback")
        status = gr.Textbox(label="Result", interactive=False, elem_id="models-status")
        card = gr.Markdown("Pick a version to see its evaluation.", elem_id="models-card")
        armed = gr.State(None)  # [action, version name, monotonic time] of a first click awaiting its confirm

    def view():
        rows, ready = lineage_rows(ctx.url)
        return gr.Dataframe(value=rows, headers=COLUMNS), gr.Dropdown(choices=ready)

    def fill(user):
        return list(view())

    def confirmed(pending, action: str, name: str) -> bool:
        return (
            isinstance(pending, list)
            and pending[:2] == [action, name]
            and time.monotonic() - float(pending[2]) <= CONFIRM_S
        )

    def refused(text: str):
        return gr.skip(), gr.skip(), text, None

    def switch_after_confirm(
        pending, armed_for: tuple[str, str], ask: str, action: str, target: str, by: str, done: str
    ):
        """Set live and Roll back both make `target` live only on a second click within CONFIRM_S; the first
        click arms `armed_for` (action, version) and asks."""
        if not confirmed(pending, *armed_for):
            return gr.skip(), gr.skip(), ask, [*armed_for, time.monotonic()]
        try:
            with session_scope(ctx.url) as session:
                set_live(session, name=target, by=by)
        except StoreError as error:
            return refused(f"{action}: {error}")
        return (*view(), done, None)

    @ctx.guard.requires(ENGINEER)
    def set_live_version(name, pending, user):
        if not name:
            return refused("Version: pick one first.")
        with read_scope(ctx.url) as session:
            version, live = get_version(session, name=name), live_version(session)
            if version is None:
                return refused(f"Set live: no version named {clip(str(name), 200)!r}.")
            if version.status != "ready":
                return refused(f"Set live: {name} is {version.status}, not ready.")
            if version.is_live:
                return refused(f"{name} is already live.")
            current = live.name if live else "none"
        return switch_after_confirm(
            pending,
            ("set_live", name),
            f"Click Set live again to confirm: {name} becomes the live version (now: {current}).",
            "Set live",
            name,
            user.username,
            f"{name} is live (set by {user.username}).",
        )

    @ctx.guard.requires(ENGINEER)
    def roll_back(pending, user):
        with read_scope(ctx.url) as session:
            live = live_version(session)
            if live is None or live.parent_id is None:
                return refused("Roll back: the live version has no parent to go back to.")
            parent = session.get_one(ModelVersion, live.parent_id)
            live_name, parent_name = live.name, parent.name
        return switch_after_confirm(
            pending,
            ("roll_back", live_name),
            f"Click Roll back again to confirm: {parent_name} becomes live in place of {live_name}.",
            "Roll back",
            parent_name,
            f"{user.username} (roll back)",
            f"rolled back from {live_name} to {parent_name}.",
        )

    @ctx.guard.requires(ENGINEER)
    def show_card(name, user):
        return version_card(ctx.url, name)

    tab.select(ctx.guard.requires(ENGINEER)(fill), None, [table, choice], api_name="models_show", queue=False)
    outputs = [table, choice, status, armed]
    make_live.click(set_live_version, [choice, armed], outputs, api_name="models_set_live", concurrency_limit=1)
    rollback.click(roll_back, armed, outputs, api_name="models_rollback", concurrency_limit=1)
    choice.change(show_card, choice, card, api_name="models_card", concurrency_limit=2)
    return TabView(tab=tab, capability=ENGINEER, outputs=[table, choice], fill=fill)
