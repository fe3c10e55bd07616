"""Reviewers: a version's responses next to another's, a page of aligned rows at a time, and a vote per row.

Each row is one prompt both versions answered, with each version's first
response and its length. Reward scores are not stored per response, so none is
shown. A vote here knows the versions (it is not blind), but is stored as a
blind vote is (storage.review.add_blind_vote), once per reviewer and row, so
the Leaderboard counts it.
"""

from __future__ import annotations

import html
import random

import gradio as gr

from feedback_app.context import AppContext
from feedback_app.roles import REVIEW
from feedback_app.tabs import TabView
from feedback_app.tabs.blind import default_pair, version_ids
from storage.crud import StoreError
from storage.db import read_scope
from storage.review import AlignedPage, add_blind_vote, aligned_page, first_responses

PAGE_SIZE = 10
NO_REWARD = "Lengths are in characters; reward scores are not stored per response, so none is shown."
_rng = random.SystemRandom()


def _cell(text: str, more: int) -> str:
    extra = f" · {more} more response{'s' if more != 1 else ''}" if more else ""
    return f"<td><div class='response'>{html.escape(text)}</div><small>{len(text)} chars{extra}</small></td>"


def aligned_html(page: AlignedPage, left: str, right: str) -> str:
    """An HTML table, one row per prompt, in which every piece of model or user text is escaped."""
    e = html.escape
    if not page.rows:
        return "<p>No prompt both versions answered matches.</p>"
    head = f"<tr><th>#</th><th>Prompt</th><th>{e(left)}</th><th>{e(right)}</th></tr>"
    body = "".join(
        f"<tr data-prompt='{row.prompt_id}'><td>{page.offset + i + 1}</td><td>{e(row.prompt)}</td>"
        f"{_cell(row.left, row.more_left)}{_cell(row.right, row.more_right)}</tr>"
        for i, row in enumerate(page.rows)
    )
    return f"<table class='side-by-side'>{head}{body}</table>"


def page_text(page: AlignedPage, sampled: bool) -> str:
    if not page.total:
        return "0 prompts match."
    if sampled:
        return f"A random sample of {len(page.rows)} of {page.total} matching prompts. {NO_REWARD}"
    last = page.offset + len(page.rows)
    return f"Rows {page.offset + 1}–{last} of {page.total} matching prompts. {NO_REWARD}"


def build(ctx: AppContext) -> TabView:
    with gr.Tab("Review", id="review", visible=False, elem_id="tab-review") as tab:
        gr.Markdown(
            "### Side by side\nA version's responses next to another's (by default: the live version and its "
            "parent), one prompt per row. Vote for a row below the table."
        )
        with gr.Row():
            left = gr.Dropdown(label="Version", choices=[], allow_custom_value=True, elem_id="review-left")
            right = gr.Dropdown(label="Compared with", choices=[], allow_custom_value=True, elem_id="review-right")
            search = gr.Textbox(label="Search prompts", placeholder="words in the prompt", elem_id="review-search")
        with gr.Row():
            show_button = gr.Button("Show", variant="primary", elem_id="review-show")
            previous = gr.Button("◀ Previous page", elem_id="review-previous")
            following = gr.Button("Next page ▶", elem_id="review-next")
            sample = gr.Button("Random sample", elem_id="review-random")
        info = gr.Markdown(elem_id="review-page")
        table = gr.HTML(elem_id="review-table")
        offset = gr.Number(value=0, precision=0, visible="hidden", elem_id="review-offset")
        with gr.Row():
            row = gr.Dropdown(label="Row", choices=[], allow_custom_value=True, elem_id="review-row")
            vote_left = gr.Button("Left is better", elem_id="review-vote-left")
            vote_right = gr.Button("Right is better", elem_id="review-vote-right")
        voted = gr.Markdown(elem_id="review-voted")

    def fill(user):
        with read_scope(ctx.url) as session:
            names, a, b = default_pair(session)
        return [gr.Dropdown(choices=names, value=a), gr.Dropdown(choices=names, value=b)]

    def pager(move: str):
        def page(a, b, query, start, user):
            if not a or not b:
                raise StoreError("Pick two versions first.")
            start = int(start or 0)
            at = {"show": 0, "next": start + PAGE_SIZE, "previous": max(0, start - PAGE_SIZE)}.get(move, 0)
            with read_scope(ctx.url) as session:
                left_id, right_id = version_ids(session, [a, b])
                found = aligned_page(
                    session,
                    left_version_id=left_id,
                    right_version_id=right_id,
                    offset=at,
                    limit=PAGE_SIZE,
                    search=query or "",
                    rng=_rng if move == "random" else None,
                )
            rows = [(f"Row {found.offset + i + 1}", r.prompt_id) for i, r in enumerate(found.rows)]
            return [
                aligned_html(found, a, b),
                found.offset,
                page_text(found, move == "random"),
                gr.Dropdown(choices=rows, value=rows[0][1] if rows else None),
                "",
            ]

        page.__name__ = f"review_{move}"
        return ctx.guard.requires(REVIEW)(page)

    def voter(side: str):
        def vote(a, b, prompt_id, user, session):
            """Store the reviewer's preference for one row, once per reviewer and row."""
            if not a or not b:
                raise StoreError("Pick two versions first.")
            if isinstance(prompt_id, str) and prompt_id.isdigit():
                prompt_id = int(prompt_id)
            if not isinstance(prompt_id, int) or isinstance(prompt_id, bool):
                raise StoreError("Row: pick a row of the table first (Show).")
            left_id, right_id = version_ids(session, [a, b])
            gen_left, gen_right = first_responses(
                session, prompt_id=prompt_id, left_version_id=left_id, right_version_id=right_id
            )
            _, created = add_blind_vote(
                session,
                user_id=user.id,
                generation_a_id=gen_left.id,
                generation_b_id=gen_right.id,
                shown_order=[gen_left.id, gen_right.id],
                choice="a" if side == "left" else "b",
                client_key=f"side-by-side:{user.id}:{gen_left.id}:{gen_right.id}",
            )
            preferred = a if side == "left" else b
            return f"Recorded: {preferred} preferred." if created else "You already voted on this row."

        vote.__name__ = f"review_vote_{side}"
        return ctx.guard.requires(REVIEW, writes=True)(vote)

    outputs = [table, offset, info, row, voted]
    inputs = [left, right, search, offset]
    for button, move in ((show_button, "show"), (previous, "previous"), (following, "next"), (sample, "random")):
        api = "review_side_by_side" if move == "show" else f"review_{move}"
        button.click(pager(move), inputs, outputs, api_name=api, concurrency_limit=4)
    search.submit(pager("show"), inputs, outputs, api_name="review_search", concurrency_limit=4)
    vote_left.click(voter("left"), [left, right, row], voted, api_name="review_vote_left", queue=False)
    vote_right.click(voter("right"), [left, right, row], voted, api_name="review_vote_right", queue=False)
    tab.select(ctx.guard.requires(REVIEW)(fill), None, [left, right], api_name="review_versions", queue=False)
    return TabView(tab=tab, capability=REVIEW, outputs=[left, right], fill=fill)
