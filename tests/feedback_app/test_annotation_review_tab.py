"""The Annotation QA tab on a real server: a reviewer's reject leaves the next export; annotators are refused."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlmodel import select

from storage.db import session_scope
from storage.export import ExportOptions, build_export
from storage.imports import import_judgments
from storage.models import Judgment, JudgmentReview
from tests.feedback_app.test_api import TOKEN
from tests.feedback_app.test_browser import CHROMIUM_ARGS, log_in
from tests.helpers import XSS, client, running_app, seed

USERS = {"ann1": "annotator", "rev": "reviewer", "boss": "admin"}


@pytest.fixture(scope="module")
def server(module_store):
    seed(module_store, users=USERS, prompts=4, overlap=2)
    with running_app(module_store) as running:
        yield running


def preference_pairs(url):
    with session_scope(url) as session:
        splits, manifest = build_export(session, ExportOptions(kind="preference", test_fraction=0.0))
    return [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in splits["train"]], manifest


def reviews(url):
    with session_scope(url) as session:
        return [(r.judgment_id, r.decision) for r in session.exec(select(JudgmentReview))]


def test_a_reviewers_reject_removes_the_pair_from_the_next_export_and_annotators_are_refused(server):
    annotator = client(server, "ann1")
    shown = annotator.predict(api_name="/pairwise_next")
    annotator.predict(shown[TOKEN["pairwise"]], "A (left)", api_name="/pairwise_submit")
    with session_scope(server.url) as session:
        judgment_id = session.exec(select(Judgment.id).where(Judgment.kind == "pairwise")).one()
    pairs, manifest = preference_pairs(server.url)
    assert len(pairs) == 1 and manifest["review"] == {"rejected_excluded": 0, "accepted": 0, "unreviewed": 1}

    for api_name in ("/annotation_review_reject", "/annotation_review_accept"):
        with pytest.raises(Exception, match="annotator cannot do this"):
            annotator.predict(judgment_id, "", "All annotators", True, api_name=api_name)
    with pytest.raises(Exception, match="annotator cannot do this"):
        annotator.predict("All annotators", True, api_name="/annotation_review_show")
    assert reviews(server.url) == []

    reviewer = client(server, "rev")
    _choices, listing, summary = reviewer.predict("All annotators", True, api_name="/annotation_review_show")
    assert f"id='review-judgment-{judgment_id}'" in listing and "1 unreviewed" in summary
    with pytest.raises(Exception, match="No judgment with id 99999"):
        reviewer.predict(99999, "", "All annotators", True, api_name="/annotation_review_reject")

    listing, summary, status, *_ = reviewer.predict(
        judgment_id, "wrong side", "All annotators", False, api_name="/annotation_review_reject"
    )
    assert status == f"Judgment {judgment_id} rejected." and "1 rejected" in summary
    assert "rejected by rev: wrong side" in listing
    assert reviews(server.url) == [(judgment_id, "rejected")]
    pairs, manifest = preference_pairs(server.url)
    assert pairs == [] and manifest["review"] == {"rejected_excluded": 1, "accepted": 0, "unreviewed": 0}

    client(server, "boss").predict(judgment_id, "", "ann1", True, api_name="/annotation_review_accept")
    assert reviews(server.url) == [(judgment_id, "accepted")]
    assert len(preference_pairs(server.url)[0]) == 1


@pytest.mark.slow  # a real browser (Chromium)
def test_a_reviewer_rejects_in_the_browser_and_sees_text_not_html(server, tmp_path):
    path = tmp_path / "judgments.jsonl"
    record = {"kind": "pairwise", "annotator": "ann1", "prompt": XSS, "a": XSS, "b": "plain", "choice": "a"}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    import_judgments(path, url=server.url)
    with session_scope(server.url) as session:
        judgment_id = session.exec(select(Judgment.id).order_by(Judgment.id.desc())).first()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = log_in(browser, server, "rev")
            page.get_by_role("tab", name="Annotation QA").click()
            item = page.locator(f"#review-judgment-{judgment_id}")
            expect(item).to_contain_text("<script>window.__pwned = 1</script>", timeout=10_000)
            page.screenshot(path=tmp_path / "annotation-review-listing.png", full_page=True)
            page.locator("#annotation-review-judgment input").fill(str(judgment_id))
            page.locator("#annotation-review-note textarea").fill("prompt is an attack")
            page.locator("#annotation-review-reject").click()
            expect(page.locator("#annotation-review-status")).to_contain_text(f"Judgment {judgment_id} rejected.")
            expect(item).to_have_count(0)  # unreviewed only: it left the list
            page.screenshot(path=tmp_path / "annotation-review.png", full_page=True)
            assert page.evaluate("window.__pwned") is None
            assert page.locator("img[src='x']").count() == 0
        finally:
            browser.close()
    assert (judgment_id, "rejected") in reviews(server.url)
