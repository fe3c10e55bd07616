"""Reviewers: versions ranked by a Bradley–Terry fit of blind A/B votes, with win rates and 95% CIs."""

from __future__ import annotations

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.roles import REVIEW
from feedback_app.tabs import TabView
from rlhf.quality.analytics import bradley_terry
from storage.db import read_scope
from storage.review import blind_outcomes

COLUMNS = ["rank", "version", "strength", "95% CI", "win rate", "decisive votes"]


def standings(url: str) -> tuple[list[list], str]:
    with read_scope(url) as session:
        outcomes = blind_outcomes(session)
    if not outcomes:
        return [], "No blind votes yet: cast some in the Review tab."
    fit = bradley_terry(outcomes, n_bootstrap=200, seed=0)
    votes = {name: sum(name in pair for pair in outcomes) for name in fit}
    ranked = sorted(fit.items(), key=lambda item: -item[1]["strength"])
    rows = [
        [
            i + 1,
            name,
            round(s["strength"], 3),
            f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]",
            f"{s['win_rate']:.1%}",
            votes[name],
        ]
        for i, (name, s) in enumerate(ranked)
    ]
    return rows, f"{len(outcomes)} decisive blind votes (ties and both-bad are left out of the fit)."


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Leaderboard", id="leaderboard", visible=False, elem_id="tab-leaderboard") as tab:
        note = gr.Markdown(elem_id="leaderboard-note")
        table = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="leaderboard-table")
        refresh = gr.Button("Refresh", elem_id="leaderboard-refresh")

    def fill(user):
        rows, message = standings(ctx.url)
        return [gr.Dataframe(value=rows, headers=COLUMNS), message]

    show = ctx.guard.requires(REVIEW)(fill)
    tab.select(show, None, [table, note], api_name="leaderboard_show", concurrency_limit=2)
    refresh.click(show, None, [table, note], api_name="leaderboard_refresh", concurrency_limit=2)
    return TabView(tab=tab, capability=REVIEW, outputs=[table, note], fill=fill)
