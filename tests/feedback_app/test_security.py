"""The attacks of the red-team report (issue 16), each against the real server over HTTP: refused, store unchanged."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from feedback_app.app import launch
from feedback_app.config import AppConfig
from feedback_app.http_client import AppClient, error_of
from feedback_app.security import LoginThrottle, Policy
from feedback_app.sessions import LoginTokens
from feedback_app.state import BlindView, Sealer, dump_view
from storage.crud import StoreError, deactivate_user, hash_password, set_role
from storage.db import dispose_engines, session_scope
from storage.models import User
from tests.helpers import PASSWORD, add_child_version_with_votes, fingerprint, free_port, seed

USERS = {"ann": "annotator", "ann2": "annotator", "rev": "reviewer", "eng": "engineer", "locked": "annotator"}
EVIL = "http://localhost:9999"


@pytest.fixture(scope="module")
def app(module_store):
    v0 = seed(module_store, users={**USERS, "leaver": "annotator", "mover": "annotator"})
    add_child_version_with_votes(module_store, v0)
    port = free_port()
    config = replace(
        AppConfig(),
        host="127.0.0.1",
        port=port,
        login_failures_per_user=3,
        login_failures_per_address=1000,
        max_upload_mb=1,
        trusted_origins=("https://feedback.example.com",),
    )
    demo, ctx = launch(module_store, config, block=False, generate=False)
    yield ctx, f"http://127.0.0.1:{port}"
    demo.close()
    dispose_engines()


def run(tab: AppClient, api_name: str, *data, headers: dict | None = None) -> httpx.Response:
    body = json.dumps({"data": list(data), **tab.session})
    return tab.http.post(
        f"/gradio_api/run/{api_name}", content=body, headers={"content-type": "application/json", **(headers or {})}
    )


# --- 1. cross-site requests and framing ------------------------------------------------------


def test_a_page_on_another_origin_cannot_act_or_read_as_the_logged_in_user(app):
    ctx, base = app
    engineer = AppClient(base, "eng", PASSWORD)
    before = fingerprint(ctx.url)
    for headers in (
        {"origin": EVIL},
        {"origin": "null"},
        {"sec-fetch-site": "same-site", "sec-fetch-mode": "cors"},
        {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"},
    ):
        reply = run(engineer, "models_set_live", "v0", headers=headers)
        assert reply.status_code == 403 and "another site" in reply.text, headers
        assert run(engineer, "annotators_show", headers=headers).status_code == 403
        data = engineer.http.get(
            f"/gradio_api/queue/data?session_hash={engineer.session['session_hash']}", headers=headers
        )
        assert data.status_code == 403
    assert fingerprint(ctx.url) == before

    assert run(engineer, "annotators_show", headers={"origin": base}).status_code == 200
    assert run(engineer, "annotators_show", headers={"origin": "https://feedback.example.com"}).status_code == 200
    assert run(engineer, "annotators_show", headers={"sec-fetch-site": "same-origin"}).status_code == 200
    page = engineer.http.get("/", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"})
    assert page.status_code == 200  # following a link to the app still works; Lax cookies come along only then


def test_the_app_cannot_be_framed_and_its_login_cookies_are_same_site_lax(app):
    _, base = app
    page = httpx.get(base)
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    login = httpx.post(f"{base}/login", data={"username": "ann", "password": PASSWORD})
    cookies = login.headers.get_list("set-cookie")
    assert len(cookies) == 2 and all("samesite=lax" in c.lower() and "httponly" in c.lower() for c in cookies)
    assert "none" not in " ".join(cookies).lower()


# --- 2. password guessing -------------------------------------------------------------------


def test_guessing_a_password_locks_that_username_and_the_right_password_waits_too(app):
    _, base = app
    for _ in range(3):
        assert httpx.post(f"{base}/login", data={"username": "locked", "password": "wrong-guess"}).status_code == 400
    refused = httpx.post(f"{base}/login", data={"username": "locked", "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 800
    assert "Too many failed logins" in refused.json()["detail"]
    assert httpx.post(f"{base}/login", data={"username": "ann", "password": PASSWORD}).status_code == 200


def test_the_throttle_counts_per_user_and_per_address_within_the_window():
    now = [0.0]
    throttle = LoginThrottle(
        Policy(login_failures_per_user=2, login_failures_per_address=3, login_window_s=60), clock=lambda: now[0]
    )
    throttle.failed("1.1.1.1", "ann")
    throttle.failed("2.2.2.2", "ANN")
    assert throttle.wait_s("3.3.3.3", "ann") == 60  # per user, whatever the address or case
    assert throttle.wait_s("1.1.1.1", "bob") == 0
    throttle.failed("1.1.1.1", "bob")
    throttle.failed("1.1.1.1", "carl")
    assert throttle.wait_s("1.1.1.1", "dave") == 60  # per address, whatever the name
    now[0] = 61
    assert throttle.wait_s("1.1.1.1", "ann") == 0
    throttle.failed("9.9.9.9", "eve")
    throttle.succeeded("eve")
    throttle.failed("9.9.9.9", "eve")
    assert throttle.wait_s("8.8.8.8", "eve") == 0  # a success forgets the user's count


def test_a_slow_password_check_does_not_stop_the_server(app, monkeypatch):
    ctx, base = app
    annotator = AppClient(base, "ann", PASSWORD)
    real = ctx.guard.authenticate

    def slow(username, password):
        time.sleep(1.5)
        return real(username, password)

    monkeypatch.setattr(ctx.guard, "authenticate", slow)
    guesser = threading.Thread(
        target=httpx.post, args=(f"{base}/login",), kwargs={"data": {"username": "rev", "password": "no"}}
    )
    guesser.start()
    time.sleep(0.2)
    started = time.perf_counter()
    assert run(annotator, "pairwise_next").status_code == 200
    assert time.perf_counter() - started < 1.0
    guesser.join()


def test_an_unknown_username_takes_as_long_to_refuse_as_a_wrong_password(app):
    ctx, _ = app

    def seconds(username):
        started = time.perf_counter()
        assert ctx.guard.authenticate(username, "wrong-password") is None
        return time.perf_counter() - started

    known = min(seconds("rev") for _ in range(3))
    unknown = min(seconds("nobody-here") for _ in range(3))
    assert unknown > 0.5 * known


# --- 3. logout -------------------------------------------------------------------------------


def test_logout_after_an_expired_login_revokes_and_clears_cookies():
    now = [0.0]
    tokens = LoginTokens(60, lambda username: "annotator", clock=lambda: now[0])
    tokens["old"] = "ann"
    now[0] = 30
    tokens["new"] = "ann"
    tokens["other"] = "rev"
    now[0] = 70
    assert [token for token in tokens.keys() if tokens[token] == "ann"] == ["new"]  # noqa: SIM118  # Gradio's logout loop
    assert tokens.revoke_user("ann") == 1 and tokens.get("new") is None and tokens["other"] == "rev"


def test_logging_out_ends_every_login_of_the_user(app):
    _, base = app
    first, second = AppClient(base, "ann2", PASSWORD), AppClient(base, "ann2", PASSWORD)
    assert run(first, "on_load").status_code == 200
    out = first.http.get("/logout")
    assert out.status_code == 302
    assert all("max-age=0" in c.lower() or "expires=" in c.lower() for c in out.headers.get_list("set-cookie"))
    assert run(second, "on_load").status_code == 401
    assert second.http.get("/config").status_code == 401


# --- 4. blind votes -------------------------------------------------------------------------


def test_a_blind_pair_token_does_not_say_which_version_is_which(app):
    _, base = app
    reviewer = AppClient(base, "rev", PASSWORD)
    outputs = reviewer.call("blind_next", "v1", "v0")
    token = outputs[-1]
    padded = token + "=" * (-len(token) % 4)
    assert b"generation" not in base64.urlsafe_b64decode(padded)
    sealer = Sealer()
    view = BlindView(user_id=1, generation_a_id=11, generation_b_id=22, shown_order=[22, 11], client_key="k")
    one, two = dump_view(sealer, view), dump_view(sealer, view)
    ciphertext = base64.urlsafe_b64decode(one + "=" * (-len(one) % 4))
    assert one != two and b"shown_order" not in ciphertext and sealer.load(one)["shown_order"] == [22, 11]
    for altered in (one + " ", one + "#!", one[:-1] + ("A" if one[-1] != "A" else "B")):
        with pytest.raises(StoreError, match="out of date or was altered"):
            sealer.load(altered)
    with pytest.raises(StoreError, match="out of date or was altered"):
        Sealer().load(one)


# --- 5. session hashes ---------------------------------------------------------------------


def test_another_users_session_hash_gets_nothing(app):
    _, base = app
    engineer, annotator = AppClient(base, "eng", PASSWORD), AppClient(base, "ann", PASSWORD)
    assert run(engineer, "annotators_show").status_code == 200
    annotator.session = dict(engineer.session)
    assert run(annotator, "on_load").status_code == 403
    assert (
        annotator.http.get(f"/gradio_api/queue/data?session_hash={engineer.session['session_hash']}").status_code == 403
    )
    assert annotator.http.get(f"/gradio_api/heartbeat/{engineer.session['session_hash']}").status_code == 403
    deep = annotator.http.get(f"/gradio_api/deep_link?session_hash={engineer.session['session_hash']}")
    assert deep.status_code == 404
    assert (
        engineer.http.get(f"/gradio_api/deep_link?session_hash={engineer.session['session_hash']}").status_code == 404
    )


# --- 6. deactivation and role changes --------------------------------------------------------


def test_deactivation_and_role_changes_end_logins_on_every_route(app):
    ctx, base = app
    leaver, mover = AppClient(base, "leaver", PASSWORD), AppClient(base, "mover", PASSWORD)
    assert leaver.http.get("/config").status_code == 200 and mover.http.get("/config").status_code == 200
    with session_scope(ctx.url) as session:
        deactivate_user(session, username="leaver")
        set_role(session, username="mover", role="engineer")
    time.sleep(1.1)  # tokens recheck the store once a second
    for tab in (leaver, mover):
        assert tab.http.get("/config").status_code == 401
        assert tab.http.post("/gradio_api/upload", files={"files": ("a.txt", b"x")}).status_code == 401
        assert run(tab, "on_load").status_code == 401
    assert AppClient(base, "mover", PASSWORD).call("on_load")[0].endswith("(engineer) · [Log out](/logout)")
    with session_scope(ctx.url) as session:
        set_role(session, username="mover", role="reviewer")
    back = AppClient(base, "mover", PASSWORD)  # logged in again at once: the login's role wins over a cached one
    assert back.call("on_load")[0].endswith("(reviewer) · [Log out](/logout)")


# --- 7. uploads and files --------------------------------------------------------------------


def test_only_engineers_upload_within_the_size_limit_and_reports_go_to_reviewers(app):
    _, base = app
    annotator, engineer, reviewer = (AppClient(base, name, PASSWORD) for name in ("ann", "eng", "rev"))
    refused = annotator.http.post("/gradio_api/upload", files={"files": ("big.bin", b"x" * 1000)})
    assert refused.status_code == 403 and "annotator cannot upload" in refused.text
    stored = engineer.http.post("/gradio_api/upload", files={"files": ("gold.jsonl", b"{}\n")})
    assert stored.status_code == 200
    path = stored.json()[0]
    assert engineer.http.post("/gradio_api/upload", files={"files": ("big.bin", b"x" * (2 << 20))}).status_code == 413
    report = next(f for f in reviewer.call("monitoring_report")[0] if f["path"].endswith(".html"))
    assert reviewer.http.get(f"/gradio_api/file={report['path']}").status_code == 200
    assert annotator.http.get(f"/gradio_api/file={report['path']}").status_code == 403
    assert annotator.http.get(f"/gradio_api/file={path}").status_code == 403


def test_an_imported_gold_upload_is_deleted(app, tmp_path):
    _, base = app
    engineer = AppClient(base, "eng", PASSWORD)
    stored = engineer.http.post(
        "/gradio_api/upload",
        files={"files": ("gold.jsonl", b'{"prompt": "1+1?", "a": "2", "b": "3", "choice": "a"}\n')},
    )
    path = stored.json()[0]
    summary = engineer.call("annotators_gold_import", {"path": path, "meta": {"_type": "gradio.FileData"}})
    assert "1 imported" in summary[0]
    assert not Path(path).exists()


# --- 8, 9. markup and huge echoes ----------------------------------------------------------


def test_values_in_error_toasts_are_escaped_and_clipped(app):
    ctx, base = app
    annotator, engineer = AppClient(base, "ann", PASSWORD), AppClient(base, "eng", PASSWORD)
    markup = '<img src="http://attacker.example/x.png"><form action="http://attacker.example">'
    message = error_of(run(engineer, "review_side_by_side", markup, "v0", "", 0)) or ""
    assert "&lt;img" in message and "<img" not in message and "<form" not in message
    token = annotator.call("pairwise_next")[3]
    reply = run(annotator, "pairwise_submit", token, "x" * 100_000)
    message = error_of(reply) or ""
    assert reply.status_code != 200 and len(reply.text) < 1000 and "is not one of the choices" in message
    huge = run(annotator, "pairwise_submit", token, "x" * (5 << 20))
    assert huge.status_code == 413 and len(huge.text) < 200


def test_a_username_with_markup_is_shown_as_text(app):
    ctx, base = app
    with session_scope(ctx.url) as session:  # a name stored before usernames had a pattern
        session.add(
            User(username="a![t](http://x.example/i.png)<b>", role="annotator", password_hash=hash_password(PASSWORD))
        )
    hello = AppClient(base, "a![t](http://x.example/i.png)<b>", PASSWORD).call("on_load")[0]
    assert "![t]" not in hello and "<b>" not in hello and "\\!\\[t\\]" in hello and "&lt;b&gt;" in hello
