"""Reviewers: a version's responses next to its parent's, and blind A/B votes between any two versions.

In the blind A/B the page never holds the version names: they stay in a sealed
token, and which side is which is randomized per pair.
"""

from __future__ import annotations

import html
import random

import gradio as gr
from sqlmodel import select

from feedback_app.context import AppContext
from feedback_app.roles import REVIEW
from feedback_app.state import BlindView, dump_view, load_view, new_client_key
from feedback_app.tabs import TabView, choices
from rlhf.models.registry import live_version
from storage.crud import StoreError
from storage.db import read_scope
from storage.models import NO_PREFERENCE_LABELS, ModelVersion
from storage.review import add_blind_vote, blind_pair, side_by_side, versions_with_responses

VOTES = ["1 is better", "2 is better", *NO_PREFERENCE_LABELS.values()]
_NO_PREFERENCE = {label: choice for choice, label in NO_PREFERENCE_LABELS.items()}
_rng = random.SystemRandom()


def side_by_side_html(rows, left: str, right: str) -> str:
    """An HTML table in which every piece of model or user text is escaped."""
    e = html.escape
    head = f"<tr><th>Prompt</th><th>{e(left)}</th><th>{e(right)}</th></tr>"
    body = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            e(row.prompt), "<hr>".join(e(t) for t in row.left), "<hr>".join(e(t) for t in row.right)
        )
        for row in rows
    )
    return (
        f"<table class='side-by-side'>{head}{body}</table>"
        if rows
        else "<p>These two versions have no prompt in common yet.</p>"
    )


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Review", id="review", visible=False, elem_id="tab-review") as tab:
        gr.Markdown(
            "### Side by side\nA version's responses next to another's (by default: the live version and its parent)."
        )
        with gr.Row():
            left = gr.Dropdown(label="Version", choices=[], allow_custom_value=True, elem_id="review-left")
            right = gr.Dropdown(label="Compared with", choices=[], allow_custom_value=True, elem_id="review-right")
            show_button = gr.Button("Show", elem_id="review-show")
        table = gr.HTML(elem_id="review-table")
        gr.Markdown(
            "### Blind A/B\nPick two versions; you see one response from each, in random order, "
            "without knowing which is which."
        )
        with gr.Row():
            blind_a = gr.Dropdown(label="Version", choices=[], allow_custom_value=True, elem_id="blind-a")
            blind_b = gr.Dropdown(label="Versus", choices=[], allow_custom_value=True, elem_id="blind-b")
            next_pair = gr.Button("Next pair", elem_id="blind-next")
        prompt = gr.Textbox(label="Prompt", interactive=False, elem_id="blind-prompt")
        with gr.Row():
            first = gr.Textbox(label="Response 1", interactive=False, lines=5, elem_id="blind-1")
            second = gr.Textbox(label="Response 2", interactive=False, lines=5, elem_id="blind-2")
        vote = choices.bounded(gr.Radio(VOTES, label="Your vote", elem_id="blind-vote"))
        submit = gr.Button("Submit vote", variant="primary", elem_id="blind-submit")
        result = gr.Markdown(elem_id="blind-result")
        token = gr.Textbox(visible="hidden", elem_id="blind-token")

    def _ids(session, names):
        versions = dict(
            session.exec(select(ModelVersion.name, ModelVersion.id).where(ModelVersion.name.in_(names))).all()
        )
        missing = [n for n in names if n not in versions]
        if missing:
            raise StoreError(f"Version: no version named {missing[0]!r}.")
        return [versions[n] for n in names]

    def fill(user):
        with read_scope(ctx.url) as session:
            names = [v.name for v in versions_with_responses(session)]
            live = live_version(session)
            parent = session.get(ModelVersion, live.parent_id) if live and live.parent_id else None
        a = live.name if live and live.name in names else (names[-1] if names else None)
        b = parent.name if parent and parent.name in names else next((n for n in names if n != a), None)
        return [gr.Dropdown(choices=names, value=a), gr.Dropdown(choices=names, value=b)] * 2

    @ctx.guard.requires(REVIEW)
    def show(a, b, user):
        if not a or not b:
            raise StoreError("Pick two versions first.")
        with read_scope(ctx.url) as session:
            left_id, right_id = _ids(session, [a, b])
            rows = side_by_side(session, left_version_id=left_id, right_version_id=right_id)
        return side_by_side_html(rows, a, b)

    @ctx.guard.requires(REVIEW)
    def deal(a, b, user):
        if not a or not b:
            raise StoreError("Pick two versions first.")
        with read_scope(ctx.url) as session:
            ids = _ids(session, [a, b])
            pair = blind_pair(session, version_a_id=ids[0], version_b_id=ids[1], rng=_rng)
        if pair is None:
            raise StoreError(f"{a} and {b} have not answered any prompt in common yet.")
        prompt_row, gen_a, gen_b = pair
        shown = [gen_a, gen_b]
        _rng.shuffle(shown)
        view = BlindView(
            user_id=user.id,
            generation_a_id=gen_a.id,
            generation_b_id=gen_b.id,
            shown_order=[g.id for g in shown],
            client_key=new_client_key(),
        )
        return prompt_row.text, shown[0].text, shown[1].text, None, "", dump_view(ctx.sealer, view)

    @ctx.guard.requires(REVIEW, writes=True)
    def cast(token, choice, user, session):
        if not token:
            raise StoreError("Deal a pair first (Next pair).")
        if choice not in VOTES:
            raise StoreError("Pick 1, 2, tie or both bad first.")
        view = load_view(ctx.sealer, token, BlindView, user_id=user.id)
        if choice in VOTES[:2]:
            winner = view.shown_order[VOTES.index(choice)]
            canonical = "a" if winner == view.generation_a_id else "b"
        else:
            canonical = _NO_PREFERENCE[choice]
        _, created = add_blind_vote(
            session,
            user_id=user.id,
            generation_a_id=view.generation_a_id,
            generation_b_id=view.generation_b_id,
            shown_order=view.shown_order,
            choice=canonical,
            client_key=view.client_key,
        )
        return "Vote recorded. Deal the next pair." if created else "Already recorded."

    versions = [left, right, blind_a, blind_b]
    tab.select(ctx.guard.requires(REVIEW)(fill), None, versions, api_name="review_versions", queue=False)
    show_button.click(show, [left, right], table, api_name="review_side_by_side", concurrency_limit=4)
    next_pair.click(
        deal, [blind_a, blind_b], [prompt, first, second, vote, result, token], api_name="blind_next", queue=False
    )
    submit.click(cast, [token, vote], result, api_name="blind_vote", queue=False)
    return TabView(tab=tab, capability=REVIEW, outputs=versions, fill=fill)
