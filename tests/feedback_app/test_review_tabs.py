"""Reviewers over HTTP and in Chromium: Monitoring counts blind votes, Blind A/B by keyboard, Side by side paging."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from storage.db import session_scope
from storage.models import BlindVote, Generation, Prompt, User
from tests.feedback_app.test_browser import browser, log_in  # noqa: F401  # fixtures, reused
from tests.helpers import PASSWORD, XSS, running_app_with_two_versions

USERS = {"rev": "reviewer", "ann": "annotator", "keys": "reviewer"}
PROMPTS = 14  # more than a page of side-by-side rows


@pytest.fixture(scope="module")
def server(module_store):
    with running_app_with_two_versions(module_store, USERS, prompts=PROMPTS) as running:
        yield running


def client(server, username="rev"):
    from gradio_client import Client

    return Client(server.base, auth=(username, PASSWORD), verbose=False)


def votes_by(server, username):
    with session_scope(server.url) as session:
        user = session.exec(select(User).where(User.username == username)).one()
        return session.exec(select(BlindVote).where(BlindVote.user_id == user.id).order_by(BlindVote.id)).all()


def test_monitoring_counts_blind_votes_and_plots_them_when_they_were_cast(server):
    from matplotlib.dates import date2num

    from rlhf.quality.monitoring import monitor, plot_version_timeline

    _, table = client(server).predict(api_name="/monitoring_refresh")
    with session_scope(server.url) as session:
        times = [v.created_at for v in session.exec(select(BlindVote).order_by(BlindVote.created_at))]
        figure = plot_version_timeline(monitor(session))
    assert len(times) >= PROMPTS
    assert re.search(rf"<b>{len(times)}</b> blind A/B votes · <b>0</b> judgments of versioned responses", table)
    counts = figure.axes[2]
    (line,) = counts.get_lines()
    assert line.get_label() == f"blind A/B votes ({len(times)})"
    assert list(line.get_xdata(orig=False)) == pytest.approx(list(date2num(times)))  # real times, not days
    assert list(line.get_ydata()) == list(range(1, len(times) + 1))
    assert "blind votes" in figure.axes[0].texts[0].get_text()  # not "no human judgments" any more


def test_blind_ab_deals_the_next_pair_with_each_vote_and_counts_mine(server):
    reviewer = client(server)
    a, b, count, prompt, first, second, token = reviewer.predict(api_name="/blind_show")
    a, b = a["value"], b["value"]  # dropdown updates
    assert (a, b) == ("v1", "v0") and prompt and first and second and token  # a first pair is dealt on opening
    assert count == "Votes you have cast: **0**"
    result, count, prompt, first, second, next_token = reviewer.predict(token, "Tie", a, b, api_name="/blind_vote")
    assert result == "Vote recorded. Next pair:" and count == "Votes you have cast: **1**"
    assert prompt and first and second and next_token != token
    assert reviewer.predict(token, "Tie", a, b, api_name="/blind_vote")[1] == "Votes you have cast: **1**"  # once
    assert [v.choice for v in votes_by(server, "rev")] == ["tie"]
    with pytest.raises(Exception, match="Pick left, right, tie or both bad"):
        reviewer.predict(next_token, "maybe", a, b, api_name="/blind_vote")


def test_side_by_side_pages_searches_samples_and_escapes(server):
    reviewer = client(server)
    html, offset, info, row, _ = reviewer.predict("v1", "v0", "", 0, api_name="/review_side_by_side")
    assert offset == 0 and info.startswith(f"Rows 1–10 of {PROMPTS} matching prompts")
    assert "reward scores are not stored" in info
    assert html.count("<tr data-prompt=") == 10
    assert XSS not in html and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert f"<small>{len(XSS)} chars</small>" in html  # v1's answer to the first prompt, its only one
    assert f"<small>{len(XSS)} chars · 3 more responses</small>" in html  # v0's first of four

    html, offset, info, *_ = reviewer.predict("v1", "v0", "", offset, api_name="/review_next")
    assert offset == 10 and info.startswith(f"Rows 11–{PROMPTS} of {PROMPTS}") and html.count("<tr data-prompt=") == 4
    assert reviewer.predict("v1", "v0", "", offset, api_name="/review_next")[1] == 10  # the last page stays
    assert reviewer.predict("v1", "v0", "", offset, api_name="/review_previous")[1] == 0

    html, _, info, *_ = reviewer.predict("v1", "v0", "Question 13:", 0, api_name="/review_side_by_side")
    assert info.startswith("Rows 1–1 of 1 ") and "Question 13: what is 13 + 13?" in html
    assert reviewer.predict("v1", "v0", "no such words", 0, api_name="/review_side_by_side")[2] == "0 prompts match."
    html, _, info, *_ = reviewer.predict("v1", "v0", "", 0, api_name="/review_random")
    assert info.startswith(f"A random sample of 10 of {PROMPTS}") and html.count("<tr data-prompt=") == 10


def test_a_side_by_side_vote_is_stored_once_as_a_blind_vote(server):
    reviewer = client(server)
    _, _, _, row, _ = reviewer.predict("v1", "v0", "Question 2:", 0, api_name="/review_side_by_side")
    assert row["choices"] == [["Row 1", row["value"]]]
    prompt_id = row["value"]
    assert reviewer.predict("v1", "v0", prompt_id, api_name="/review_vote_right") == "Recorded: v0 preferred."
    assert reviewer.predict("v1", "v0", prompt_id, api_name="/review_vote_right") == "You already voted on this row."
    (vote,) = [v for v in votes_by(server, "rev") if v.client_key.startswith("side-by-side:")]
    with session_scope(server.url) as session:
        prompt = session.get_one(Prompt, vote.prompt_id)
        left = session.get_one(Generation, vote.generation_a_id)
        first_v0 = session.exec(
            select(Generation).where(
                Generation.prompt_id == prompt.id, Generation.model_version_id == vote.version_b_id
            )
        ).first()
    assert prompt.text.startswith("Question 2:") and vote.choice == "b" and left.text.startswith("Improved answer")
    assert vote.generation_b_id == first_v0.id and vote.shown_order == [vote.generation_a_id, vote.generation_b_id]
    with pytest.raises(Exception, match="annotator cannot do this"):
        client(server, "ann").predict("v1", "v0", prompt_id, api_name="/review_vote_left")
    with pytest.raises(Exception, match="pick a row"):
        reviewer.predict("v1", "v0", None, api_name="/review_vote_left")


@pytest.mark.slow  # a real browser (Chromium)
def test_blind_ab_votes_by_key_and_shows_the_next_pair(browser, server):  # noqa: F811  # the imported fixture
    page = log_in(browser, server, "keys")
    page.get_by_role("tab", name="Blind A/B").click()
    count = page.locator("#blind-count")
    expect(count).to_have_text("Votes you have cast: 0", timeout=10_000)
    expect(page.locator("#blind-help")).to_contain_text("1 or A left is better")
    expect(page.locator("#blind-left")).to_contain_text("[1 / A]")
    token = page.locator("#blind-token textarea, #blind-token input").first
    prompt = page.locator("#blind-prompt textarea")
    expect(prompt).not_to_have_value("", timeout=10_000)
    for n, key in enumerate(("1", "b", "t"), start=1):
        shown = token.input_value()
        left_text = page.locator("#blind-1 textarea").input_value()
        page.locator("#blind-prompt").click()  # focus outside any editable box
        page.keyboard.press(key)
        expect(count).to_have_text(f"Votes you have cast: {n}", timeout=10_000)
        expect(token).not_to_have_value(shown)  # the next pair is on screen
        vote = votes_by(server, "keys")[-1]
        with session_scope(server.url) as session:
            assert session.get_one(Generation, vote.shown_order[0]).text == left_text  # the pair voted on
        winner = {"1": vote.shown_order[0], "b": vote.shown_order[1]}.get(key)
        assert vote.choice == ("tie" if key == "t" else "a" if winner == vote.generation_a_id else "b")
    assert len(votes_by(server, "keys")) == 3
