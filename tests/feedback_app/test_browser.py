"""The app in headless Chromium: log in, compare with the keyboard, escaped text, a screenshot per tab."""

from __future__ import annotations

import base64
import re

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlmodel import select

from storage.db import session_scope
from storage.models import BlindVote, Generation, Judgment, ModelVersion, User
from tests.helpers import PASSWORD, XSS, running_app_with_two_versions

USERS = {"ann": "annotator", "boss": "admin", "late": "annotator"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
]


@pytest.fixture(scope="module")
def server(module_store):
    with running_app_with_two_versions(module_store, USERS) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def log_in(browser, server, username):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(server.base)
    page.get_by_label("username").fill(username)
    page.get_by_label("password").fill(PASSWORD)
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#whoami")).to_contain_text(f"Logged in as {username}", timeout=15_000)
    return page


@pytest.mark.slow  # a real browser (Chromium)
def test_annotator_compares_with_the_keyboard_and_sees_text_not_html(browser, server, tmp_path):
    page = log_in(browser, server, "ann")
    expect(page.get_by_role("tab", name="Rounds")).to_have_count(0)
    expect(page.get_by_role("tab", name="Models")).to_have_count(0)
    counter = page.locator("#pairwise-counter")
    expect(counter).to_contain_text("Done 0")

    responses = [page.locator(f"#pairwise-response-{i} textarea") for i in (0, 1)]
    expect(responses[0]).not_to_have_value("")
    assert XSS in [box.input_value() for box in responses]  # shown verbatim, as text
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0

    page.locator("#pairwise-hint").click()  # focus the page, outside any editable box
    page.keyboard.press("1")
    expect(page.locator("#pairwise-choice input[type=radio]").first).to_be_checked()
    page.keyboard.press("Enter")
    expect(counter).to_contain_text("Done 1", timeout=10_000)
    expect(page.locator("#pairwise-choice input:checked")).to_have_count(0)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(counter).to_contain_text("Done 2", timeout=10_000)
    page.keyboard.press("s")  # a skip waits for its reason
    expect(page.locator("#pairwise-reason")).to_have_class(re.compile("skip-armed"))
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    page.keyboard.press("2")
    expect(counter).to_contain_text("skipped 1", timeout=10_000)
    expect(page.locator("#pairwise-reason input:checked")).to_have_count(0)  # the next item has no reason yet
    with session_scope(server.url) as session:
        skip = session.exec(select(Judgment).where(Judgment.kind == "skip")).all()[-1]
    assert skip.payload == {"reason": "Needs expertise I lack"}
    page.screenshot(path=tmp_path / "compare.png", full_page=True)

    for name in ("Rate", "Rank", "Correct"):
        page.get_by_role("tab", name=name).click()
        kind = {"Rate": "rating", "Rank": "ranking", "Correct": "correction"}[name]
        expect(page.locator(f"#{kind}-prompt textarea")).not_to_have_value("", timeout=10_000)
        page.screenshot(path=tmp_path / f"{name.lower()}.png", full_page=True)
    assert page.evaluate("window.__pwned") is None


@pytest.mark.slow  # a real browser (Chromium)
def test_rank_keys_take_each_response_once_and_log_out_stays_in_the_tab(browser, server):
    page = log_in(browser, server, "ann")
    page.get_by_role("tab", name="Rank").click()
    order = page.locator("#ranking-order textarea, #ranking-order input").first
    expect(page.locator("#ranking-prompt textarea")).not_to_have_value("", timeout=10_000)
    page.locator("#ranking-hint").click()
    for key in ("2", "2", "9", "1", "1"):
        page.keyboard.press(key)
    expect(order).to_have_value("2 1")
    page.keyboard.press("Backspace")
    expect(order).to_have_value("2")

    pages = len(page.context.pages)
    page.get_by_role("link", name="Log out").click()
    expect(page.get_by_label("username")).to_be_visible(timeout=10_000)  # the login form, in this tab
    assert len(page.context.pages) == pages
    assert page.request.get(f"{server.base}/config").status == 401


@pytest.mark.slow  # a real browser (Chromium)
def test_a_refused_submit_is_a_notice_and_the_item_stays_on_screen(browser, server, tmp_path):
    page = log_in(browser, server, "late")
    prompt = page.locator("#pairwise-prompt textarea")
    expect(prompt).not_to_have_value("", timeout=10_000)
    shown = prompt.input_value()
    page.locator("#pairwise-submit").click()  # no choice made
    expect(page.locator("#app-notice")).to_have_text("Pick A, B, tie or both bad first (keys 1–4).", timeout=10_000)
    expect(prompt).to_have_value(shown)
    assert page.get_by_text("Error", exact=True).count() == 0
    page.screenshot(path=tmp_path / "refused.png", full_page=True)

    server.demo.server_app.tokens.revoke_user("late")  # as when the login expires
    page.locator("#pairwise-hint").click()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#app-notice")).to_contain_text("log in again", timeout=10_000)
    expect(prompt).to_have_value(shown)
    with session_scope(server.url) as session:
        late = session.exec(select(User).where(User.username == "late")).one()
        assert session.exec(select(Judgment).where(Judgment.user_id == late.id)).all() == []


@pytest.mark.slow  # a real browser (Chromium)
def test_admin_sees_every_tab_and_escaped_review(browser, server, tmp_path):
    page = log_in(browser, server, "boss")
    for name in ("Rounds", "Models", "Review", "Blind A/B", "Leaderboard"):
        page.get_by_role("tab", name=name).click()
        if name == "Rounds":
            expect(page.locator("#rounds-data")).to_contain_text("by_kind", timeout=10_000)
        if name == "Models":
            expect(page.locator("#models-table")).to_contain_text("v1", timeout=10_000)
        if name == "Review":
            expect(page.locator("#review-left input")).to_have_value("v1", timeout=10_000)
            page.locator("#review-show").click()
            table = page.locator("#review-table table")
            expect(table).to_contain_text("<script>window.__pwned = 1</script>", timeout=10_000)
        if name == "Blind A/B":
            expect(page.locator("#blind-prompt textarea")).not_to_have_value("", timeout=10_000)
        if name == "Leaderboard":
            expect(page.locator("#leaderboard-table")).to_contain_text("v1", timeout=10_000)
        page.screenshot(path=tmp_path / f"{name.lower().replace('/', '')}.png", full_page=True)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0


def test_blind_votes_over_http_are_canonical_and_stored_once(server):
    from gradio_client import Client

    from storage.models import User

    reviewer = Client(server.base, auth=("boss", PASSWORD), verbose=False)
    prompt, first, second, _, token = reviewer.predict("v1", "v0", api_name="/blind_next")
    assert prompt and first and second and token
    sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))  # names stay out of the page: the
    assert b'"v1"' not in sealed and b'"v0"' not in sealed  # token is sealed (its 2-letter text can occur by chance)
    with session_scope(server.url) as session:
        before = len(session.exec(select(BlindVote)).all())
    result, *_, next_token = reviewer.predict(token, "1 is better", "v1", "v0", api_name="/blind_vote")
    assert result.startswith("Vote recorded") and next_token != token  # the next pair is dealt
    assert reviewer.predict(token, "1 is better", "v1", "v0", api_name="/blind_vote")[0].startswith("Already recorded.")
    with session_scope(server.url) as session:
        votes = session.exec(select(BlindVote).order_by(BlindVote.id)).all()
        texts = {g.id: g.text for g in session.exec(select(Generation)).all()}
        boss = session.exec(select(User).where(User.username == "boss")).one().id
    assert len(votes) == before + 1
    vote = votes[-1]
    assert vote.user_id == boss
    shown_first = vote.shown_order[0]
    assert texts[shown_first] == first
    assert vote.choice == ("a" if shown_first == vote.generation_a_id else "b")

    annotator = Client(server.base, auth=("ann", PASSWORD), verbose=False)
    with pytest.raises(Exception, match="annotator cannot do this"):
        annotator.predict(token, "2 is better", "v1", "v0", api_name="/blind_vote")


def test_models_tab_rolls_back_and_sets_live(server):
    from gradio_client import Client

    def live():
        with session_scope(server.url) as session:
            return [v.name for v in session.exec(select(ModelVersion).where(ModelVersion.is_live))]

    admin = Client(server.base, auth=("boss", PASSWORD), verbose=False)
    *_, message = admin.predict(api_name="/models_rollback")
    assert message.startswith("Click Roll back again to confirm") and live() == ["v1"]
    *_, message = admin.predict(api_name="/models_rollback")
    assert message == "rolled back from v1 to v0." and live() == ["v0"]
    *_, message = admin.predict(api_name="/models_rollback")
    assert "has no parent" in message
    *_, message = admin.predict("v9", api_name="/models_set_live")
    assert message == "Set live: no version named 'v9'."
    admin.predict("v1", api_name="/models_set_live")
    table, _, message = admin.predict("v1", api_name="/models_set_live")
    assert message.startswith("v1 is live") and live() == ["v1"]
    assert [row[4] for row in table["value"]["data"]] == ["", "LIVE"]
