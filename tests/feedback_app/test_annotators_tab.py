"""The Annotators and Monitoring tabs on a real server: roles, escaping, swap checks seen over HTTP, the report."""

from __future__ import annotations

import html
import random
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from feedback_app.config import ConfigError, load_app_config
from storage.crud import hash_password
from storage.db import session_scope
from storage.models import AnnotationItem, Judgment, User
from storage.queue import SWAP_CHECK, Extras
from tests.helpers import PASSWORD, XSS, client, running_app, seed

USERS = {"ann1": "annotator", "rev": "reviewer", "eng": "engineer"}
TOKEN = 3  # /pairwise_next outputs: prompt, left, right, token, counter, choice
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
]


@pytest.fixture(scope="module")
def server(module_store):
    seed(module_store, users=USERS, prompts=4, overlap=2)
    with session_scope(module_store) as session:  # a name from before the username rule: still shown as text
        session.add(User(username=XSS, role="annotator", password_hash=hash_password(PASSWORD)))
    with running_app(module_store) as running:
        running.ctx.extras = Extras(swap_rate=1.0, swap_gap=1, rng=random.Random(0))
        yield running


def value(output):
    return output["value"] if isinstance(output, dict) else output


def test_annotators_and_monitoring_refuse_an_annotator(server):
    annotator = client(server, "ann1")
    for api_name in (
        "/annotators_show",
        "/annotators_refresh",
        "/annotators_rescore",
        "/monitoring_show",
        "/monitoring_refresh",
        "/monitoring_report",
    ):
        with pytest.raises(Exception, match="annotator cannot do this"):
            annotator.predict(api_name=api_name)
    with pytest.raises(Exception, match="reviewer cannot do this"):
        client(server, "rev").predict(api_name="/annotators_show")


@pytest.mark.slow  # many submits over HTTP
def test_swap_checks_come_back_reversed_and_show_as_inconsistent(server):
    c = client(server, "ann1")
    seen: dict[int, tuple[str, str]] = {}  # item id → (left text, right text)
    swapped = []
    shown = c.predict(api_name="/pairwise_next")
    while shown[TOKEN]:
        item_id = server.ctx.sealer.load(shown[TOKEN])["item_id"]
        texts = (value(shown[1]), value(shown[2]))
        with session_scope(server.url) as session:
            item = session.get(AnnotationItem, item_id)
            purpose, source_item = item.purpose, None
            if purpose == SWAP_CHECK:
                source_item = session.get(Judgment, item.source_judgment_id).item_id
        if purpose == SWAP_CHECK:
            assert texts == seen[source_item][::-1]  # the same pair, sides swapped
            swapped.append(item_id)
        else:
            seen[item_id] = texts
        shown = c.predict(shown[TOKEN], "A (left)", api_name="/pairwise_submit")  # always the left side
    assert len(seen) == 8 and len(swapped) >= 3

    table, summary = client(server, "eng").predict(api_name="/annotators_show")
    row = next(r for r in table.split("<tr") if ">ann1<" in r)
    assert f"100% (n={len(swapped)})" in row and "swap_inconsistent" in row
    assert "Krippendorff" in summary and "pairwise" in summary


@pytest.mark.slow  # a real browser (Chromium)
def test_the_tab_escapes_usernames(server):
    c = client(server, XSS)
    token = c.predict(api_name="/rating_next")[2]
    c.predict(token, "4", "", api_name="/rating_submit")
    table, _ = client(server, "eng").predict(api_name="/annotators_show")
    assert html.escape(XSS) in table and "<script" not in table and "<img" not in table

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server.base)
            page.get_by_label("username").fill("eng")
            page.get_by_label("password").fill(PASSWORD)
            page.get_by_role("button", name="Login").click()
            page.get_by_role("tab", name="Annotators").click(timeout=15_000)
            expect(page.locator("#annotators-stats")).to_contain_text(XSS, timeout=10_000)  # as text
            assert page.evaluate("window.__pwned") is None
            assert page.locator("img[src='x']").count() == 0
        finally:
            browser.close()


def test_monitoring_plot_and_report_download(server):
    reviewer = client(server, "rev")
    plot, table = reviewer.predict(api_name="/monitoring_show")
    assert plot and "v0" in table and "LIVE" in table
    files = reviewer.predict(api_name="/monitoring_report")
    report = next(Path(f) for f in files if str(f).endswith(".html"))
    assert "Feedback quality report" in report.read_text()
    written = list((Path(server.url.removeprefix("sqlite:///")).parent / "artifacts" / "reports").glob("*.html"))
    assert [p.name for p in written] == [report.name]


def test_an_engineer_imports_gold_items_in_the_app_all_or_nothing(server, tmp_path):
    from gradio_client import handle_file
    from sqlmodel import func, select

    from storage.gold import GOLD

    def gold_count():
        with session_scope(server.url) as session:
            return session.exec(
                select(func.count()).select_from(AnnotationItem).where(AnnotationItem.purpose == GOLD)
            ).one()

    before = gold_count()
    good = tmp_path / "gold.jsonl"
    good.write_text(
        '{"prompt": "2+2?", "a": "4", "b": "5", "choice": "a"}\n'
        '{"prompt": "Rate: the sky is green.", "response": "False.", "score": 5}\n'
    )
    engineer = client(server, "eng")
    assert "gold.jsonl: 2 gold items read, 2 imported" in engineer.predict(
        handle_file(str(good)), api_name="/annotators_gold_import"
    )
    assert gold_count() == before + 2

    bad = tmp_path / "bad_gold.jsonl"
    bad.write_text(
        '{"prompt": "3+3?", "a": "6", "b": "7", "choice": "a"}\n'
        '{"prompt": "Rate this.", "response": "ok", "score": 9}\n'
    )
    with pytest.raises(Exception, match=r"bad_gold.jsonl:2: score: 9 is out of range 1..5"):
        engineer.predict(handle_file(str(bad)), api_name="/annotators_gold_import")
    with pytest.raises(Exception, match="choose a file first"):
        engineer.predict(None, api_name="/annotators_gold_import")
    with pytest.raises(Exception, match="403 Forbidden.*/gradio_api/upload"):  # refused before the handler
        client(server, "ann1").predict(handle_file(str(good)), api_name="/annotators_gold_import")
    assert gold_count() == before + 2  # the bad file added nothing


def test_queue_quality_settings_are_checked(tmp_path):
    path = tmp_path / "app.yaml"
    for body, message in [
        ("queue:\n  gold_rate: 1.5\n", r"queue.gold_rate: input should be less than or equal to 1, got 1.5"),
        ("queue:\n  swap_rate: -0.1\n", r"queue.swap_rate: input should be greater than or equal to 0"),
        ("queue:\n  selection: smart\n", r"queue.selection: 'smart' is not one of random"),
        ("queue:\n  gold_rate: 0.6\n  swap_rate: 0.6\n", r"gold_rate \+ queue.swap_rate"),
    ]:
        path.write_text(body)
        with pytest.raises(ConfigError, match=message):
            load_app_config(path)
    assert load_app_config("configs/app.yaml").gold_rate == 0.05
