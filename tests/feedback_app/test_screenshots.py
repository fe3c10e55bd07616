"""Every tab each role sees, in Chromium: what it shows is checked, and a PNG of it is written.

The PNGs go to $SCREENSHOT_DIR when it is set (docs/screenshots.md says what each shows), else
under the test's tmp_path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from feedback_app.roles import ANNOTATE, ENGINEER, REVIEW, allowed
from tests.feedback_app.test_browser import browser, log_in  # noqa: F401  # fixtures, reused
from tests.helpers import running_app_with_two_versions

USERS = {"ann": "annotator", "rev": "reviewer", "eng": "engineer", "boss": "admin"}
TABS = [  # in the app's order, with who may open them
    ("Compare", ANNOTATE),
    ("Rate", ANNOTATE),
    ("Rank", ANNOTATE),
    ("Correct", ANNOTATE),
    ("Rounds", ENGINEER),
    ("Models", ENGINEER),
    ("Review", REVIEW),
    ("Blind A/B", REVIEW),
    ("Leaderboard", REVIEW),
    ("Annotators", ENGINEER),
    ("Annotation QA", REVIEW),
    ("Monitoring", REVIEW),
    ("Guidelines", ENGINEER),
    ("Red team", ANNOTATE),
]
ESCAPED_SCRIPT = "<script>window.__pwned = 1</script>"  # shown as text


def _item(kind):
    def check(page):
        expect(page.locator(f"#{kind}-prompt textarea")).to_have_value(re.compile(r"^Question \d+"), timeout=10_000)

    return check


def _review(page):
    expect(page.locator("#review-left input")).to_have_value("v1", timeout=10_000)
    page.locator("#review-show").click()
    expect(page.locator("#review-page")).to_contain_text("Rows 1–4 of 4 matching prompts", timeout=10_000)
    expect(page.locator("#review-table table")).to_contain_text(ESCAPED_SCRIPT)
    expect(page.locator("#review-table")).to_contain_text(re.compile(r"\d+ chars"))


def _red_team(page):
    """A prompt holding a script goes into the set and is listed as text."""
    page.locator("#redteam-prompt textarea").fill(f"Repeat this: {ESCAPED_SCRIPT}")
    page.locator("#redteam-add").click()
    expect(page.locator("#redteam-status")).to_contain_text("set", timeout=10_000)
    expect(page.locator("#redteam-set table")).to_contain_text(ESCAPED_SCRIPT)


def _blind(page):
    expect(page.locator("#blind-prompt textarea")).to_have_value(re.compile(r"^Question \d+"), timeout=10_000)
    expect(page.locator("#blind-count")).to_contain_text(re.compile(r"Votes you have cast: \d+"))
    expect(page.locator("#blind-left")).to_contain_text("[1 / A]")


CHECKS = {
    "Compare": _item("pairwise"),
    "Rate": _item("rating"),
    "Rank": _item("ranking"),
    "Correct": _item("correction"),
    "Rounds": lambda page: expect(page.locator("#rounds-data")).to_contain_text("by_kind", timeout=10_000),
    "Models": lambda page: expect(page.locator("#models-table")).to_contain_text("LIVE", timeout=10_000),
    "Review": _review,
    "Blind A/B": _blind,
    "Leaderboard": lambda page: expect(page.locator("#leaderboard-table")).to_contain_text("v1", timeout=10_000),
    "Annotators": lambda page: expect(page.locator("#annotators-summary")).to_contain_text(
        "Krippendorff", timeout=10_000
    ),
    "Annotation QA": lambda page: expect(page.locator("#annotation-review-summary")).to_contain_text(
        re.compile(r"\d+ accepted · \d+ rejected .* \d+ unreviewed"), timeout=10_000
    ),
    "Monitoring": lambda page: expect(page.locator("#monitoring-signals")).to_contain_text(
        "4 blind A/B votes · 0 judgments of versioned responses", timeout=10_000
    ),
    "Red team": _red_team,
    "Guidelines": lambda page: expect(page.locator("#guidelines-preview")).to_contain_text(
        "No guidelines for this task yet.", timeout=10_000
    ),
}


@pytest.fixture(scope="module")
def server(module_store):
    with running_app_with_two_versions(module_store, USERS) as running:
        yield running


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    chosen = os.environ.get("SCREENSHOT_DIR")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@pytest.mark.slow  # a real browser (Chromium), every tab of four roles
@pytest.mark.parametrize("username", list(USERS))
def test_each_role_sees_its_tabs_and_each_shows_its_content(browser, server, folder, username):  # noqa: F811
    role = USERS[username]
    page = log_in(browser, server, username)
    expected = [name for name, capability in TABS if allowed(role, capability)]
    tabs = page.get_by_role("tab")
    expect(tabs).to_have_count(len(expected), timeout=10_000)  # the others are hidden, not just disabled
    assert [t.strip() for t in tabs.all_inner_texts()] == expected
    for name in expected:
        page.get_by_role("tab", name=name, exact=True).click()
        CHECKS[name](page)
        page.screenshot(path=folder / f"{role}-{slug(name)}.png", full_page=True)
    assert page.evaluate("window.__pwned") is None
    written = sorted(p.name for p in folder.glob(f"{role}-*.png"))
    assert written == sorted(f"{role}-{slug(name)}.png" for name in expected)
