"""The app over HTTP with gradio_client: submits land in the store, once; roles hold; overlap holds."""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage.db import session_scope
from storage.models import Judgment, User
from tests.helpers import client, running_app, seed

TOKEN = {"pairwise": 3, "rating": 2, "ranking": 5, "correction": 2}  # outputs: prompt, responses..., token, ...
USERS = {"ann1": "annotator", "ann2": "annotator", "ann3": "annotator", "rev": "reviewer", "eng": "engineer"}


@pytest.fixture(scope="module")
def server(module_store):
    seed(module_store, users=USERS, prompts=4, overlap=2)
    with running_app(module_store) as running:
        yield running


def value(output):
    """A component's value, whether it came back plain or as an update dict."""
    return output["value"] if isinstance(output, dict) else output


def judgments(url, **where):
    with session_scope(url) as session:
        query = select(Judgment)
        for key, value in where.items():
            query = query.where(getattr(Judgment, key) == value)
        return session.exec(query.order_by(Judgment.id)).all()


def user_id(url, name):
    with session_scope(url) as session:
        return session.exec(select(User.id).where(User.username == name)).one()


def test_annotator_submits_each_kind(server):
    c = client(server, "ann1")
    me = user_id(server.url, "ann1")
    prompt, left, right, token, counter, _, _, *_ = c.predict(api_name="/pairwise_next")  # choice, skip reason, views
    assert prompt.startswith("Question") and value(left) and value(right) and token
    c.predict(token, "B (right)", api_name="/pairwise_submit")
    token = c.predict(api_name="/rating_next")[TOKEN["rating"]]
    c.predict(token, "4", "  fine  ", api_name="/rating_submit")
    shown = c.predict(api_name="/ranking_next")
    c.predict(shown[TOKEN["ranking"]], "2 4 1 3", api_name="/ranking_submit")
    prompt, original, token, _, edit, _, *_ = c.predict(api_name="/correction_next")
    assert edit == value(original)
    c.predict(token, edit + " Corrected.", edit, api_name="/correction_submit")

    stored = {j.kind: j for j in judgments(server.url, user_id=me)}
    assert set(stored) == {"pairwise", "rating", "ranking", "correction"}
    pair = stored["pairwise"]
    winner = pair.shown_order[1]  # the right-hand response won
    assert pair.payload["choice"] == ("a" if winner == pair.generation_ids[0] else "b")
    assert pair.payload["shown_choice"] == "right" and sorted(pair.shown_order) == sorted(pair.generation_ids)
    assert stored["rating"].payload == {"score": 4, "comment": "fine"}
    ranking = stored["ranking"]
    assert ranking.generation_ids == [ranking.shown_order[i - 1] for i in (2, 4, 1, 3)]
    assert stored["correction"].payload["corrected"].endswith(" Corrected.")
    assert all(j.duration_ms is not None and j.item_id for j in stored.values())


def test_bad_input_is_refused_with_a_message(server):
    c = client(server, "ann1")
    token = c.predict(api_name="/ranking_next")[TOKEN["ranking"]]
    with pytest.raises(Exception, match="each of the numbers 1–4 once"):
        c.predict(token, "1 1 2", api_name="/ranking_submit")
    with pytest.raises(Exception, match="out of date or was altered"):
        c.predict(token[:-3] + "xyz", "1 2 3 4", api_name="/ranking_submit")


def test_double_submit_stores_one(server):
    c = client(server, "ann2")
    me = user_id(server.url, "ann2")
    token = c.predict(api_name="/rating_next")[TOKEN["rating"]]
    before = len(judgments(server.url, user_id=me))
    first = c.predict(token, "5", "", api_name="/rating_submit")
    second = c.predict(token, "5", "", api_name="/rating_submit")
    assert len(judgments(server.url, user_id=me)) == before + 1
    assert first[2] == second[2] or first[3] == second[3]  # both show the same next item


def test_roles_are_checked_on_the_server(server):
    with pytest.raises(Exception, match="reviewer cannot do this"):
        client(server, "rev").predict(api_name="/pairwise_next")
    with session_scope(server.url) as session:
        session.exec(select(User).where(User.username == "ann3")).one().role = "reviewer"
    try:
        with pytest.raises(Exception, match="reviewer cannot do this"):
            client(server, "ann3").predict(api_name="/rating_next")
    finally:
        with session_scope(server.url) as session:
            session.exec(select(User).where(User.username == "ann3")).one().role = "annotator"


@pytest.mark.slow  # many users drain the queue over HTTP
def test_overlap_gives_each_item_to_k_different_users(server):
    clients = {name: client(server, name) for name in ("ann1", "ann2", "ann3")}
    served: dict[str, list[int]] = {name: [] for name in clients}
    tokens = {name: c.predict(api_name="/pairwise_next")[TOKEN["pairwise"]] for name, c in clients.items()}
    while any(tokens.values()):
        for name, c in clients.items():
            if tokens[name]:
                served[name].append(server.ctx.sealer.load(tokens[name])["item_id"])
                tokens[name] = c.predict(tokens[name], "Tie", api_name="/pairwise_submit")[TOKEN["pairwise"]]
    by_item: dict[int, list[int]] = {}
    for j in judgments(server.url, kind="pairwise"):
        by_item.setdefault(j.item_id, []).append(j.user_id)
    assert len(by_item) == 8
    assert all(len(users) == 2 and len(set(users)) == 2 for users in by_item.values()), by_item
    assert all(len(items) == len(set(items)) for items in served.values())
    assert served["ann3"], "the third annotator got some of the open slots"


def test_an_annotator_cannot_run_engineer_endpoints(server):
    from storage.models import ModelVersion, Round

    c = client(server, "ann1")
    for api_name, args in [
        ("/start_round", ("configs/round_dpo_tiny.yaml",)),
        ("/cancel_round", (1,)),
        ("/fill_queue", ()),
        ("/models_set_live", ("v0",)),
        ("/models_rollback", ()),
        ("/rounds_show", ()),
    ]:
        with pytest.raises(Exception, match="annotator cannot do this"):
            c.predict(*args, api_name=api_name)
    with pytest.raises(Exception, match="annotator cannot do this"):
        c.predict("v0", "v0", "", 0, api_name="/review_side_by_side")
    with session_scope(server.url) as session:
        assert session.exec(select(Round)).all() == []
        assert [v.name for v in session.exec(select(ModelVersion).where(ModelVersion.is_live))] == ["v0"]
