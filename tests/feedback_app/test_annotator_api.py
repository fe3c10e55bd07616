"""Guidelines, history (undo, edit) and the rendered views over HTTP with gradio_client: roles hold, text stays data."""

from __future__ import annotations

import pytest
from gradio_client import Client
from sqlmodel import select

from storage.db import session_scope
from storage.models import Guideline, Judgment, WithdrawnJudgment
from tests.helpers import PASSWORD, XSS, running_app, seed

USERS = {"ann": "annotator", "bob": "annotator", "rev": "reviewer", "eng": "engineer"}
TOKEN, GUIDELINES, HISTORY, PICK = 3, -3, -2, -1  # /pairwise_* outputs: prompt, left, right, token, …, history, pick
VIEWS = slice(7, 10)  # the prompt's and the two responses' rendered views


@pytest.fixture(scope="module")
def server(module_store):
    seed(module_store, users=USERS, prompts=4, overlap=2, xss_first=True)
    with running_app(module_store) as running:
        yield running


def client(server, user):
    return Client(server.base, auth=(user, PASSWORD), verbose=False)


def value(output):
    return output["value"] if isinstance(output, dict) else output


def test_only_engineers_save_guidelines_and_annotators_see_them_sanitised(server):
    text = f"Be **kind**. {XSS} [x](javascript:alert(1)) ![t](http://evil.example/x.png)"
    for name in ("ann", "rev"):
        with pytest.raises(Exception, match="cannot do this"):
            client(server, name).predict("pairwise", text, api_name="/guidelines_save")
    with session_scope(server.url) as session:
        assert session.get(Guideline, "pairwise") is None

    preview, status = client(server, "eng").predict("pairwise", text, api_name="/guidelines_save")
    assert "Saved the Compare guidelines" in status
    shown = value(client(server, "ann").predict(api_name="/pairwise_next")[GUIDELINES])
    assert shown == preview
    assert "<strong>kind</strong>" in shown
    assert "<script" not in shown and "<img" not in shown and 'href="javascript' not in shown
    assert "&lt;script&gt;" in shown and "[image: t http://evil.example/x.png]" in shown
    with session_scope(server.url) as session:
        assert session.get_one(Guideline, "pairwise").updated_by == "eng"


def test_rendered_views_carry_no_markup_of_the_texts_own(server):
    outputs = client(server, "bob").predict(api_name="/pairwise_next")
    views = [value(v) for v in outputs[VIEWS]]
    assert all(
        "<script" not in v and "<img" not in v and "onerror=" not in v.replace("onerror=&quot;", "") for v in views
    )
    assert any("&lt;script&gt;" in v for v in views)  # the payload is there, as text


def test_undo_gives_the_item_back_and_an_edit_replaces_the_judgment(server):
    ann = client(server, "ann")
    shown = ann.predict(api_name="/pairwise_next")
    item = server.ctx.sealer.load(shown[TOKEN])["item_id"]
    after = ann.predict(shown[TOKEN], "Tie", api_name="/pairwise_submit")
    latest = value(after[PICK])
    assert latest is not None and "Tie" in value(after[HISTORY])
    with pytest.raises(Exception, match="not one of your judgments"):
        client(server, "bob").predict(latest, api_name="/pairwise_undo")
    with pytest.raises(Exception, match="annotate only"):
        client(server, "rev").predict(latest, api_name="/pairwise_undo")

    back = ann.predict(latest, api_name="/pairwise_undo")
    assert server.ctx.sealer.load(back[TOKEN])["item_id"] == item
    with session_scope(server.url) as session:
        assert session.get(Judgment, latest) is None
        assert session.exec(select(WithdrawnJudgment).where(WithdrawnJudgment.judgment_id == latest)).one()

    after = ann.predict(back[TOKEN], "A (left)", api_name="/pairwise_submit")
    answered = value(after[PICK])
    editing = ann.predict(answered, api_name="/pairwise_edit")
    assert server.ctx.sealer.load(editing[TOKEN])["replaces"] == answered
    assert f"Editing your judgment #{answered}" in value(editing[-4])
    ann.predict(editing[TOKEN], "Both bad", api_name="/pairwise_submit")
    with session_scope(server.url) as session:
        mine = session.exec(select(Judgment).where(Judgment.item_id == item, Judgment.kind == "pairwise")).all()
        assert [j.payload["choice"] for j in mine if j.user_id == mine[0].user_id] == ["both_bad"]
        replaced = session.exec(
            select(WithdrawnJudgment)
            .where(WithdrawnJudgment.judgment_id == answered)
            .order_by(WithdrawnJudgment.id.desc())
        ).first()
        assert replaced.replaced_by_id == mine[0].id


def test_a_bad_pick_is_a_message(server):
    for pick in (None, 0):
        with pytest.raises(Exception, match="Put the # of one of your judgments"):
            client(server, "ann").predict(pick, api_name="/pairwise_undo")
