"""Who may call what, over the raw HTTP API: every endpoint × every role (and no login); expiry; demotion.

The endpoints come from the running app's /config, so a new handler is in the matrix as soon as it
is registered; which capability each one needs is written out here, and the test fails until a new
endpoint is added to ENDPOINTS.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlmodel import delete, select

from feedback_app.app import launch
from feedback_app.config import AppConfig
from feedback_app.http_client import AppClient, error_of
from feedback_app.sessions import LoginTokens
from storage.crud import create_user, deactivate_user, set_role
from storage.db import dispose_engines, session_scope
from storage.models import ItemClaim, User
from tests.helpers import PASSWORD, REFUSALS, free_port, seed

ROLES = ("annotator", "reviewer", "engineer", "admin")
ALLOWED = {
    "annotate": {"annotator", "admin"},
    "review": {"reviewer", "engineer", "admin"},
    "engineer": {"engineer", "admin"},
    "anyone": {"annotator", "reviewer", "engineer", "admin"},
}
ENDPOINTS = {
    **{
        f"{kind}_{action}": "annotate"
        for kind in ("pairwise", "rating", "ranking", "correction")
        for action in ("next", "submit", "skip", "undo", "edit", "flag")
    },
    "redteam_show": "annotate",
    "redteam_try": "annotate",
    "redteam_add": "annotate",
    "redteam_flag": "annotate",
    "guidelines_show": "engineer",
    "guidelines_load": "engineer",
    "guidelines_save": "engineer",
    "rounds_show": "engineer",
    "tick": "engineer",
    "tick_1": "engineer",
    "tick_2": "engineer",
    "round_preview": "engineer",
    "start_round": "engineer",
    "cancel_round": "engineer",
    "fill_queue": "engineer",
    "data_summary": "engineer",
    "sweeps": "engineer",
    "models_show": "engineer",
    "models_set_live": "engineer",
    "models_rollback": "engineer",
    "models_card": "engineer",
    "review_versions": "review",
    "review_side_by_side": "review",
    "review_previous": "review",
    "review_next": "review",
    "review_random": "review",
    "review_search": "review",
    "review_vote_left": "review",
    "review_vote_right": "review",
    "blind_show": "review",
    "blind_next": "review",
    "blind_vote": "review",
    "blind_vote_right": "review",
    "blind_vote_tie": "review",
    "blind_vote_bad": "review",
    "leaderboard_show": "review",
    "leaderboard_refresh": "review",
    "annotators_show": "engineer",
    "annotators_refresh": "engineer",
    "annotators_rescore": "engineer",
    "annotators_gold_import": "engineer",
    "annotation_review_show": "review",
    "annotation_review_refresh": "review",
    "annotation_review_accept": "review",
    "annotation_review_reject": "review",
    "monitoring_show": "review",
    "monitoring_refresh": "review",
    "monitoring_report": "review",
    "on_load": "anyone",
}
USERS = {"ann": "annotator", "rev": "reviewer", "eng": "engineer", "adm": "admin"}


def start(url, **config):
    port = free_port()
    demo, ctx = launch(url, replace(AppConfig(), host="127.0.0.1", port=port, **config), block=False, generate=False)
    return demo, ctx, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def app(module_store):
    seed(module_store, users={**USERS, "demoted": "annotator", "removed": "annotator", "gone": "annotator"})
    demo, ctx, base = start(module_store)
    yield demo, ctx, base
    demo.close()
    dispose_engines()


def endpoints(base: str) -> dict[str, int]:
    """api_name -> number of inputs, for every event the app registered."""
    tab = AppClient(base, "adm", PASSWORD)
    dependencies = tab.http.get("/config").json()["dependencies"]
    tab.close()
    unnamed = [d["id"] for d in dependencies if not d.get("api_name")]
    assert not unnamed, f"events without an api_name cannot be checked by name: {unnamed}"
    return {d["api_name"]: len(d["inputs"]) for d in dependencies if d.get("backend_fn", True)}  # page-only: no handler


def test_every_registered_handler_checks_the_role_itself(app):
    demo, _, _ = app
    unguarded = [
        getattr(block.fn, "__name__", block.fn)
        for block in demo.fns.values()
        if block.fn is not None and getattr(block.fn, "capability", None) not in ALLOWED
    ]
    assert unguarded == []
    page_only = [block for block in demo.fns.values() if block.fn is None]
    assert all(block.js and not block.outputs for block in page_only)  # e.g. the view toggle: runs in the page only


@pytest.mark.slow  # every endpoint × 5 sessions over HTTP
def test_matrix_of_endpoints_and_roles(app):
    demo, _, base = app
    found = endpoints(base)
    assert set(found) == set(ENDPOINTS), f"add new endpoints to ENDPOINTS: {set(found) ^ set(ENDPOINTS)}"
    tabs = {role: AppClient(base, name, PASSWORD) for name, role in USERS.items()}
    anonymous = AppClient(base)
    cells = 0
    for api_name, inputs in sorted(found.items()):
        capability = ENDPOINTS[api_name]
        reply = anonymous.post(api_name, *[None] * inputs)
        assert reply.status_code == 401, (api_name, reply.status_code)
        cells += 1
        for role in ROLES:
            reply = tabs[role].post(api_name, *[None] * inputs)
            message = error_of(reply)
            if role in ALLOWED[capability]:
                assert not (message or "").startswith(REFUSALS), (api_name, role, message)
            else:
                assert message == f"Not allowed: a {role} cannot do this ({capability} only).", (api_name, role)
            cells += 1
    assert cells == len(found) * (len(ROLES) + 1)
    print(f"access matrix: {len(found)} endpoints x {len(ROLES) + 1} sessions = {cells} cells checked")


def test_demoted_or_removed_user_loses_access_on_the_next_call(app):
    _, ctx, base = app
    demoted, removed, gone = (
        AppClient(base, "demoted", PASSWORD),
        AppClient(base, "removed", PASSWORD),
        AppClient(base, "gone", PASSWORD),
    )
    assert demoted.call("pairwise_next")[3] and removed.call("rating_next")[2] and gone.call("on_load")
    with session_scope(ctx.url) as session:
        set_role(session, username="demoted", role="reviewer")
        deactivate_user(session, username="removed")
        gone_id = session.exec(select(User.id).where(User.username == "gone")).one()
        session.exec(delete(ItemClaim).where(ItemClaim.user_id == gone_id))
        session.exec(delete(User).where(User.id == gone_id))
    time.sleep(1.1)  # logins recheck the store once a second
    for tab in (demoted, removed, gone):
        assert tab.post("on_load").status_code == 401  # the change ended the login
    assert error_of(AppClient(base, "demoted", PASSWORD).post("pairwise_next")) == (
        "Not allowed: a reviewer cannot do this (annotate only)."
    )
    for name in ("removed", "gone"):
        assert AppClient(base).http.post("/login", data={"username": name, "password": PASSWORD}).status_code == 400


@pytest.mark.slow  # waits for a login to expire
def test_a_login_expires_after_session_hours(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    from storage.migrate import upgrade

    upgrade(url)
    with session_scope(url) as session:
        create_user(session, username="ann", role="annotator", password="pw-for-tests")
    demo, _, base = start(url, session_hours=3 / 3600)
    try:
        tab = AppClient(base, "ann", PASSWORD)
        assert tab.post("on_load").status_code == 200
        time.sleep(3.5)
        assert tab.post("on_load").status_code == 401
        assert tab.http.get("/config").status_code == 401
        again = AppClient(base, "ann", PASSWORD)
        assert again.post("on_load").status_code == 200
    finally:
        demo.close()
        dispose_engines()


def test_login_tokens_forget_old_logins():
    now = [0.0]
    tokens = LoginTokens(max_age_s=60, role_of=lambda username: "annotator", clock=lambda: now[0])
    tokens["t1"] = "ann"
    now[0] = 30
    tokens["t2"] = "rev"
    assert tokens.get("t1") == "ann" and "t2" in tokens
    now[0] = 61
    assert tokens.get("t1") is None and "t1" not in tokens and tokens["t2"] == "rev"
    now[0] = 91
    assert tokens.get("t2") is None and len(tokens) == 0
    with pytest.raises(KeyError):
        tokens["t2"]
