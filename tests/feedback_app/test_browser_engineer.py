"""The Rounds and Models tabs in headless Chromium: a round the gate refused reads "not published", and
Set live asks for a second click (the fixtures are test_browser.py's: a real server on a SQLite file)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from storage.db import session_scope
from storage.models import ModelVersion
from tests.feedback_app.test_browser import browser, log_in  # noqa: F401  (the browser fixture)
from tests.helpers import add_refused_round, running_app, seed


@pytest.fixture(scope="module")
def server(module_store):
    seed(module_store, users={"eng": "engineer"}, prompts=2)
    add_refused_round(module_store, "v0")
    with running_app(module_store) as running:
        yield running


@pytest.mark.slow  # a real browser (Chromium)
def test_a_gate_refused_round_shows_not_published_and_set_live_asks_to_confirm(browser, server, tmp_path):  # noqa: F811
    page = log_in(browser, server, "eng")
    page.get_by_role("tab", name="Rounds").click()
    status = page.locator("#rounds-status textarea")
    expect(status).to_have_value(
        re.compile(r"trained, not published[\s\S]*gate: not published: win-rate 0\.531 < 0\.55"),
        timeout=15_000,
    )
    expect(page.locator("#rounds-chosen input")).to_have_value("#1 round_dpo_tiny.yaml by eng · not published")
    page.locator("#rounds-config input").click()
    page.get_by_role("option", name="round_dpo_tiny.yaml: Tiny model on CPU").click()
    expect(page.locator("#rounds-preview textarea")).to_have_value(
        re.compile(r"data now: .*estimated time: about 42 s", re.S), timeout=15_000
    )
    expect(page.locator("#rounds-plot")).to_be_visible()
    page.screenshot(path=tmp_path / "rounds-refused.png", full_page=True)

    page.get_by_role("tab", name="Models").click()
    page.locator("#models-version input").click()
    page.get_by_role("option", name="dpo-tiny-r1").click()
    card = page.locator("#models-card")
    expect(card).to_contain_text("Gate: not published: win-rate 0.531 < 0.55", timeout=10_000)
    expect(card).to_contain_text("0.531 (95% CI 0.410–0.650)")
    page.locator("#models-set-live").click()
    result = page.locator("#models-status textarea")
    expect(result).to_have_value(
        "Click Set live again to confirm: dpo-tiny-r1 becomes the live version (now: v0).", timeout=10_000
    )
    with session_scope(server.url) as session:
        assert not session.exec(select(ModelVersion).where(ModelVersion.name == "dpo-tiny-r1")).one().is_live
    page.locator("#models-set-live").click()
    expect(result).to_have_value("dpo-tiny-r1 is live (set by eng).", timeout=10_000)
    assert page.get_by_text("Error", exact=True).count() == 0
    page.screenshot(path=tmp_path / "models-card.png", full_page=True)
