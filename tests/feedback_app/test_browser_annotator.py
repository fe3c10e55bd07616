"""The annotation tabs in headless Chromium: Markdown and chat views of hostile text, guidelines, undo and edit."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from feedback_app.config import AppConfig
from storage.db import session_scope
from storage.models import Judgment, User, WithdrawnJudgment
from tests.feedback_app.test_browser import browser, log_in  # noqa: F401  (the fixture is used by name)
from tests.helpers import XSS, running_app, seed_store

EVIL = "evil.example"
PAYLOADS = [
    XSS + " **bold** [run](javascript:window.__pwned=3) ![pixel](http://evil.example/md.png)",
    "<img src=http://evil.example/raw.png onerror=alert(1)> <a href=javascript:alert(2)>a</a> ${alert(3)} "
    "{{constructor.constructor('alert(4)')()}} <svg onload=alert(5)>",
]
GUIDE = "Pick the **correct** one. ![g](http://evil.example/guide.png) <script>alert(6)</script>"


@pytest.fixture(scope="module")
def server(module_store):
    seed_store(
        module_store,
        users={"ann": "annotator", "kim": "annotator"},
        prompts=3,
        prompt_text=lambda p: f"Prompt {p}: *why*? <b>bold?</b>",
        answer_text=lambda p, g: PAYLOADS[g] if p == 0 else f"Answer {p}.{g} with `code`",
        enqueue=["pairwise"],
        overlap=2,
    )
    with running_app(module_store, AppConfig(guidelines={"pairwise": GUIDE})) as running:
        yield running


def watched(page):
    """Dialogs that fired and requests to the evil host, recorded for the whole page life."""
    seen = {"dialogs": [], "requests": []}
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: EVIL in request.url and seen["requests"].append(request.url))
    return seen


@pytest.mark.slow  # a real browser (Chromium)
def test_markdown_and_chat_views_show_hostile_text_as_text(browser, server, tmp_path):  # noqa: F811
    page = log_in(browser, server, "ann")
    seen = watched(page)
    views = page.locator("#pairwise-response-view-0, #pairwise-response-view-1")
    expect(page.locator("#pairwise-prompt-view .as-markdown em")).to_have_text("why", timeout=10_000)
    expect(page.locator("#pairwise-prompt-view .as-markdown")).to_contain_text("<b>bold?</b>")
    expect(views.locator(".as-markdown").first).to_be_visible()
    text = " ".join(views.all_inner_texts())
    assert "<script>window.__pwned = 1</script>" in text and "<svg onload=alert(5)>" in text
    assert "[image: pixel http://evil.example/md.png]" in text
    expect(views.locator(".as-markdown strong")).to_have_text("bold")
    assert views.locator("img, svg, script, iframe").count() == 0
    assert views.locator("a").count() == 0  # the javascript: links are shown as text
    page.screenshot(path=tmp_path / "markdown.png", full_page=True)

    page.locator("#pairwise-mode").get_by_label("Chat").check()
    expect(page.locator("#pairwise-prompt-view .as-chat .chat-role")).to_have_text("user")
    expect(views.locator(".as-chat .chat-role").first).to_have_text("assistant")
    expect(views.locator(".as-markdown").first).to_be_hidden()
    assert "<script>window.__pwned = 1</script>" in " ".join(views.locator(".as-chat").all_inner_texts())
    page.screenshot(path=tmp_path / "chat.png", full_page=True)

    page.locator("#pairwise-mode").get_by_label("Raw text").check()
    expect(page.locator("#pairwise-response-0 textarea")).to_be_visible()
    expect(views.first).to_be_hidden()
    boxes = [page.locator(f"#pairwise-response-{i} textarea").input_value() for i in (0, 1)]
    assert sorted(boxes) == sorted(PAYLOADS)
    page.locator("#pairwise-mode").get_by_label("Markdown").check()
    expect(views.first).to_be_visible()

    page.locator("#pairwise-hint").click()
    page.keyboard.press("1")  # the keys still work with the rendered views
    expect(page.locator("#pairwise-choice input[type=radio]").first).to_be_checked()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert seen["dialogs"] == [] and seen["requests"] == []


@pytest.mark.slow  # a real browser (Chromium)
def test_guidelines_show_above_the_task_rendered_safely(browser, server, tmp_path):  # noqa: F811
    page = log_in(browser, server, "kim")
    seen = watched(page)
    box = page.locator("#pairwise-guidelines-box")
    expect(box).to_be_visible(timeout=10_000)
    page.locator("#pairwise-guidelines-box").get_by_text("Guidelines").click()
    guide = page.locator("#pairwise-guidelines")
    expect(guide.locator("strong")).to_have_text("correct", timeout=10_000)
    expect(guide).to_contain_text("<script>alert(6)</script>")
    expect(guide).to_contain_text("[image: g http://evil.example/guide.png]")
    assert guide.locator("img, script").count() == 0
    assert page.locator("#pairwise-counter progress").count() == 2  # mine and the team's
    page.screenshot(path=tmp_path / "guidelines.png", full_page=True)
    assert seen["dialogs"] == [] and seen["requests"] == []


@pytest.mark.slow  # a real browser (Chromium)
def test_undo_brings_the_item_back_and_edit_replaces_the_answer(browser, server, tmp_path):  # noqa: F811
    page = log_in(browser, server, "ann")
    counter = page.locator("#pairwise-counter")
    prompt = page.locator("#pairwise-prompt textarea")
    expect(prompt).not_to_have_value("", timeout=10_000)
    done = int(counter.inner_text().split("Done ")[1].split(" ")[0])
    first = prompt.input_value()
    page.locator("#pairwise-hint").click()
    page.keyboard.press("3")  # tie
    page.keyboard.press("Enter")
    expect(counter).to_contain_text(f"Done {done + 1}", timeout=10_000)
    expect(prompt).not_to_have_value(first)

    page.locator("#pairwise-history-box").get_by_text("My history").click()
    history = page.locator("#pairwise-history")
    expect(history.locator("tr").nth(1)).to_contain_text("Tie")
    page.locator("#pairwise-history-undo").click()
    expect(prompt).to_have_value(first, timeout=10_000)  # the undone item is back on screen
    expect(counter).to_contain_text(f"Done {done}")

    page.locator("#pairwise-hint").click()
    page.keyboard.press("4")  # both bad
    page.keyboard.press("Enter")
    expect(counter).to_contain_text(f"Done {done + 1}", timeout=10_000)
    expect(history.locator("tr").nth(1)).to_contain_text("Both bad")
    page.locator("#pairwise-history-edit").click()
    expect(page.locator("#pairwise-meta")).to_contain_text("Editing your judgment", timeout=10_000)
    expect(prompt).to_have_value(first)
    page.locator("#pairwise-hint").click()
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    expect(history.locator("tr").nth(1)).to_contain_text("Tie", timeout=10_000)
    expect(counter).to_contain_text(f"Done {done + 1}")
    page.screenshot(path=tmp_path / "history.png", full_page=True)

    with session_scope(server.url) as session:
        ann = session.exec(select(User).where(User.username == "ann")).one()
        newest = session.exec(select(Judgment).where(Judgment.user_id == ann.id).order_by(Judgment.id.desc())).first()
        assert newest is not None and newest.payload["choice"] == "tie"
        same_item = session.exec(
            select(Judgment).where(Judgment.user_id == ann.id, Judgment.item_id == newest.item_id)
        ).all()
        assert len(same_item) == 1
        withdrawn = session.exec(select(WithdrawnJudgment).where(WithdrawnJudgment.user_id == ann.id)).all()
        assert [w.judgment["payload"]["choice"] for w in withdrawn][-2:] == ["tie", "both_bad"]
        assert withdrawn[-1].replaced_by_id == newest.id
