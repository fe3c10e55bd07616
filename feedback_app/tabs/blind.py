"""Reviewers: blind A/B votes between two versions, one key per vote, the next pair dealt at once.

The page never holds the version names: they stay in a sealed token, and which
side is which is randomized per pair. A vote and the next pair are one request,
so a reviewer can vote with the keyboard (feedback_app/keyboard.js) without
waiting for a second round trip.
"""

from __future__ import annotations

import random
from typing import cast

import gradio as gr
from sqlmodel import Session, col, select

from feedback_app.context import AppContext
from feedback_app.roles import REVIEW
from feedback_app.state import BlindView, dump_view, load_view, new_client_key
from feedback_app.tabs import TabView
from rlhf.models.registry import live_version
from storage.crud import StoreError
from storage.db import read_scope
from storage.models import NO_PREFERENCE_LABELS, ModelVersion
from storage.review import add_blind_vote, blind_pair, blind_vote_count, versions_with_responses

VOTES = ["1 is better", "2 is better", *NO_PREFERENCE_LABELS.values()]
BUTTONS = {  # button label (its key hint included) → vote
    "Left is better  [1 / A]": VOTES[0],
    "Right is better  [2 / B]": VOTES[1],
    f"{VOTES[2]}  [T]": VOTES[2],
    f"{VOTES[3]}  [X]": VOTES[3],
}
_NO_PREFERENCE = {label: choice for choice, label in NO_PREFERENCE_LABELS.items()}
_rng = random.SystemRandom()
KEYS_HELP = "Keys: **1** or **A** left is better · **2** or **B** right is better · **T** tie · **X** both bad · **N** skip this pair"


def version_ids(session: Session, names: list[str]) -> list[int]:
    """The ids of the named versions, in order; StoreError naming the first unknown one."""
    query = select(ModelVersion.name, ModelVersion.id).where(col(ModelVersion.name).in_(names))
    versions = {name: cast(int, id_) for name, id_ in session.exec(query)}
    missing = [n for n in names if n not in versions]
    if missing:
        raise StoreError(f"Version: no version named {missing[0]!r}.")
    return [versions[n] for n in names]


def default_pair(session: Session) -> tuple[list[str], str | None, str | None]:
    """Versions with responses, and the ones offered first: the live version and its parent."""
    names = [v.name for v in versions_with_responses(session)]
    live = live_version(session)
    parent = session.get(ModelVersion, live.parent_id) if live and live.parent_id else None
    a = live.name if live and live.name in names else (names[-1] if names else None)
    b = parent.name if parent and parent.name in names else next((n for n in names if n != a), None)
    return names, a, b


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Blind A/B", id="blind", visible=False, elem_id="tab-blind") as tab:
        gr.Markdown(
            "Pick two versions; you see one response from each, in random order, without knowing which is "
            "which. A vote deals the next pair.\n\n" + KEYS_HELP,
            elem_id="blind-help",
        )
        with gr.Row():
            blind_a = gr.Dropdown(label="Version", choices=[], allow_custom_value=True, elem_id="blind-a")
            blind_b = gr.Dropdown(label="Versus", choices=[], allow_custom_value=True, elem_id="blind-b")
            next_pair = gr.Button("Next pair  [N]", elem_id="blind-next")
        prompt = gr.Textbox(label="Prompt", interactive=False, elem_id="blind-prompt")
        with gr.Row():
            first = gr.Textbox(label="Left response", interactive=False, lines=5, elem_id="blind-1")
            second = gr.Textbox(label="Right response", interactive=False, lines=5, elem_id="blind-2")
        with gr.Row():
            buttons = [
                gr.Button(label, variant="primary" if i < 2 else "secondary", elem_id=f"blind-{key}")
                for i, (label, key) in enumerate(zip(BUTTONS, ("left", "right", "tie", "bad")))
            ]
        result = gr.Markdown(elem_id="blind-result")
        count = gr.Markdown(elem_id="blind-count")
        token = gr.Textbox(visible="hidden", elem_id="blind-token")

    def counted(session: Session, user) -> str:
        return f"Votes you have cast: **{blind_vote_count(session, user_id=user.id)}**"

    def dealt(session: Session, a, b, user) -> list[str]:
        """[prompt, left, right, token] of a fresh pair; StoreError when there is none."""
        if not a or not b:
            raise StoreError("Pick two versions first.")
        ids = version_ids(session, [a, b])
        pair = blind_pair(session, version_a_id=ids[0], version_b_id=ids[1], rng=_rng)
        if pair is None:
            raise StoreError(f"{a} and {b} have not answered any prompt in common yet.")
        prompt_row, gen_a, gen_b = pair
        shown = [gen_a, gen_b]
        _rng.shuffle(shown)
        view = BlindView(
            user_id=user.id,
            generation_a_id=cast(int, gen_a.id),
            generation_b_id=cast(int, gen_b.id),
            shown_order=[cast(int, g.id) for g in shown],
            client_key=new_client_key(),
        )
        return [prompt_row.text, shown[0].text, shown[1].text, dump_view(ctx.sealer, view)]

    def fill(user):
        with read_scope(ctx.url) as session:
            names, a, b = default_pair(session)
            try:
                pair = dealt(session, a, b, user)
            except StoreError:
                pair = ["", "", "", ""]
            votes = counted(session, user)
        return [gr.Dropdown(choices=names, value=a), gr.Dropdown(choices=names, value=b), votes, *pair]

    @ctx.guard.requires(REVIEW)
    def deal(a, b, user):
        with read_scope(ctx.url) as session:
            prompt_text, left, right, sealed = dealt(session, a, b, user)
        return prompt_text, left, right, "", sealed

    @ctx.guard.requires(REVIEW, writes=True)
    def vote(token, choice, a, b, user, session):
        """Store the vote (once per pair shown), then deal the next pair of the same two versions."""
        if not token:
            raise StoreError("Deal a pair first (Next pair).")
        choice = BUTTONS.get(choice, choice)
        if choice not in VOTES:
            raise StoreError("Pick left, right, tie or both bad (keys 1, 2, T, X).")
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
        message = "Vote recorded." if created else "Already recorded."
        try:
            pair = dealt(session, a, b, user)
        except StoreError as error:
            return [f"{message} No next pair: {error}", counted(session, user), "", "", "", ""]
        return [f"{message} Next pair:", counted(session, user), *pair]

    next_pair.click(
        deal, [blind_a, blind_b], [prompt, first, second, result, token], api_name="blind_next", queue=False
    )
    outputs = [result, count, prompt, first, second, token]
    for button, api in zip(buttons, ("blind_vote", "blind_vote_right", "blind_vote_tie", "blind_vote_bad")):
        button.click(vote, [token, button, blind_a, blind_b], outputs, api_name=api, queue=False)
    fill_outputs = [blind_a, blind_b, count, prompt, first, second, token]
    tab.select(ctx.guard.requires(REVIEW)(fill), None, fill_outputs, api_name="blind_show", queue=False)
    return TabView(tab=tab, capability=REVIEW, outputs=fill_outputs, fill=fill)
