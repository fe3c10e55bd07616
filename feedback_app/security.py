"""What Gradio leaves open once the app serves a team, closed in one ASGI middleware in front of its routes.

Gradio reflects any `Origin` with credentials allowed, sets its login cookie `SameSite=None`,
checks passwords on the event loop with no limit, keys page state by a session hash the client
picks, and lets any login upload and fetch files. This middleware, given to the FastAPI app
Gradio builds (`launch(app_kwargs=...)`), sees every request first:

- refuses requests from other origins (CSRF): a browser names the page that sent a request in
  `Origin` or `Sec-Fetch-Site`; only the app's own origin and `server.trusted_origins` pass
  (scripts and gradio_client send neither, and carry no ambient cookie to abuse);
- forbids framing (`frame-ancestors 'none'`, `X-Frame-Options: DENY`) on every response;
- answers `POST /login` itself: failed attempts limited per username and per address, argon2
  verified in a worker thread one at a time (the loop keeps serving), cookies `SameSite=Lax`;
- answers `GET /logout` itself: every token of the user is revoked and both cookies cleared;
- installs `LoginTokens`, so a token ends with its age, a deactivation or a role change;
- binds each session hash to the login that first used it, and turns off deep links (they
  hand out a session's state by hash);
- lets only engineers upload, serves files only to reviewers and up, caps request bodies.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import anyio
from cachetools import TTLCache
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedback_app.roles import ENGINEER, REVIEW, Guard, allowed
from feedback_app.sessions import LoginTokens
from storage.markup import clip

API = "/gradio_api"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
LONGEST_USERNAME, LONGEST_PASSWORD = 256, 1024
REFUSAL_DELAY_S = 1.0


@dataclass(frozen=True)
class Policy:
    """The limits, from configs/app.yaml's `server` section."""

    session_hours: float = 12.0
    trusted_origins: tuple[str, ...] = ()
    max_request_bytes: int = 4 << 20
    login_failures_per_user: int = 10
    login_failures_per_address: int = 50
    login_window_s: float = 900.0


class LoginThrottle:
    """Failed logins counted per username and per address in a window that starts at the first failure.

    Over either limit, a login is refused before any password is checked, until that window ends.
    The counts live in bounded TTL caches, so a flood of made-up names cannot grow memory.
    """

    def __init__(self, policy: Policy, clock: Callable[[], float] = time.monotonic):
        self._limits = {"user": policy.login_failures_per_user, "address": policy.login_failures_per_address}
        self._window_s = policy.login_window_s
        self._clock = clock
        self._failures: TTLCache = TTLCache(maxsize=200_000, ttl=policy.login_window_s, timer=clock)

    def _keys(self, address: str, username: str) -> list[tuple[str, str]]:
        return [("address", address), ("user", username.casefold())]

    def wait_s(self, address: str, username: str) -> float:
        """Seconds until a login for `username` from `address` is checked again; 0 when it is checked now."""
        now, wait = self._clock(), 0.0
        for key in self._keys(address, username):
            first, count = self._failures.get(key, (now, 0))
            if count >= self._limits[key[0]]:
                wait = max(wait, first + self._window_s - now)
        return wait

    def failed(self, address: str, username: str) -> None:
        now = self._clock()
        for key in self._keys(address, username):
            first, count = self._failures.get(key, (now, 0))
            if now - first > self._window_s:
                first, count = now, 0
            self._failures[key] = (first, count + 1)

    def succeeded(self, username: str) -> None:
        self._failures.pop(("user", username.casefold()), None)


class Security:
    """The ASGI middleware (see the module docstring); `Middleware(Security, guard=..., policy=...)`."""

    def __init__(self, app: ASGIApp, *, guard: Guard, policy: Policy):
        self.app, self.guard, self.policy = app, guard, policy
        self.throttle = LoginThrottle(policy)
        self.session_owners: TTLCache = TTLCache(maxsize=500_000, ttl=policy.session_hours * 3600)
        self._trusted = {origin.rstrip("/").lower() for origin in policy.trusted_origins}
        self._hashing: anyio.CapacityLimiter | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self._cross_site(scope, Headers(scope=scope)) is not None:
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tokens = self._tokens(scope)

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        headers = Headers(scope=scope)
        refusal = self._cross_site(scope, headers)
        path, method = scope["path"], scope.get("method", "GET")
        if refusal is not None:
            response: Response | None = PlainTextResponse(refusal, status_code=403)
        elif path.rstrip("/") == "/login" and method == "POST":
            response = await self._login(Request(scope, receive), tokens)
        elif path.rstrip("/") == "/logout":
            response = self._logout(Request(scope), tokens)
        else:
            response, receive = await self._route(scope, headers, receive, tokens)
        if response is not None:
            await response(scope, receive, send_secured)
        else:
            await self.app(scope, receive, send_secured)

    def _tokens(self, scope: Scope) -> LoginTokens:
        """Gradio's token table, replaced by LoginTokens on the first request (logins made before are kept)."""
        app = scope["app"]
        if not isinstance(app.tokens, LoginTokens):
            tokens = LoginTokens(self.policy.session_hours * 3600, self.guard.current_role)
            for token, username in dict(app.tokens).items():
                tokens[token] = username
            app.tokens = tokens
        return app.tokens

    # --- cross-site requests ----------------------------------------------------------------

    def _cross_site(self, scope: Scope, headers: Headers) -> str | None:
        """Why a request another site's page made is refused, else None."""
        origin = headers.get("origin")
        if origin is not None:
            own = urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
            if own or origin.rstrip("/").lower() in self._trusted:
                return None
            return (
                f"Refused: a request from another site ({clip(origin, 100)}). "
                "If this is the app's own public address, add it to server.trusted_origins."
            )
        navigation = scope.get("method") in ("GET", "HEAD") and headers.get("sec-fetch-mode") == "navigate"
        if headers.get("sec-fetch-site") in ("cross-site", "same-site") and not navigation:
            return "Refused: a request from another site."
        return None

    # --- login and logout -------------------------------------------------------------------

    async def _login(self, request: Request, tokens: LoginTokens) -> Response:
        form = await request.form()
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        address = request.client.host if request.client else "unknown"
        wait = self.throttle.wait_s(address, username)
        if wait > 0:
            await anyio.sleep(REFUSAL_DELAY_S)  # a guesser's loop slows to the refusals' pace, at no CPU cost
            seconds = math.ceil(wait)
            return JSONResponse(
                {"detail": f"Too many failed logins; try again in {seconds} s."},
                status_code=429,
                headers={"Retry-After": str(seconds)},
            )
        role = None
        if len(username) <= LONGEST_USERNAME and len(password) <= LONGEST_PASSWORD:
            if self._hashing is None:
                self._hashing = anyio.CapacityLimiter(1)
            role = await anyio.to_thread.run_sync(self.guard.authenticate, username, password, limiter=self._hashing)
        if role is None:
            self.throttle.failed(address, username)
            return JSONResponse({"detail": "Incorrect credentials."}, status_code=400)
        self.throttle.succeeded(username)
        token = secrets.token_urlsafe(32)
        tokens.issue(token, username, role)
        response = JSONResponse({"success": True})
        cookie_id = request.scope["app"].cookie_id
        response.set_cookie(f"access-token-{cookie_id}", token, httponly=True, samesite="lax", secure=True)
        response.set_cookie(f"access-token-unsecure-{cookie_id}", token, httponly=True, samesite="lax")
        return response

    def _logout(self, request: Request, tokens: LoginTokens) -> Response:
        cookie_id = request.scope["app"].cookie_id
        username = self._username(request.scope, tokens)
        if username is not None:
            tokens.revoke_user(username)
        response = RedirectResponse(url=f"{request.scope.get('root_path', '')}/", status_code=302)
        for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
            response.delete_cookie(name, path="/")
        return response

    @staticmethod
    def _username(scope: Scope, tokens: LoginTokens) -> str | None:
        cookies = Request(scope).cookies
        cookie_id = scope["app"].cookie_id
        token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
        return tokens.get(token) if token else None

    # --- Gradio's own routes ----------------------------------------------------------------

    async def _route(
        self, scope: Scope, headers: Headers, receive: Receive, tokens: LoginTokens
    ) -> tuple[Response | None, Receive]:
        """A refusal for this request, or None and the `receive` to pass on (the body, if it was read here)."""
        path = scope["path"]
        if not path.startswith(f"{API}/"):
            return None, receive
        if path.startswith(f"{API}/deep_link"):
            return PlainTextResponse("Deep links are turned off.", status_code=404), receive
        username = self._username(scope, tokens)
        role = tokens.role(username) if username is not None else None
        if role is not None and path.startswith(f"{API}/upload") and not allowed(role, ENGINEER):
            return PlainTextResponse(f"Not allowed: a {role} cannot upload files.", status_code=403), receive
        if role is not None and path.startswith(f"{API}/file") and not allowed(role, REVIEW):
            return PlainTextResponse(f"Not allowed: a {role} cannot download files.", status_code=403), receive

        hashes = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash", [])
        if path.startswith(f"{API}/heartbeat/"):
            hashes.append(path.removeprefix(f"{API}/heartbeat/"))
        if scope.get("method") == "POST" and "json" in headers.get("content-type", ""):
            body, too_large = await self._read_body(headers, receive)
            if too_large:
                limit = self.policy.max_request_bytes >> 20
                return PlainTextResponse(f"Refused: the request is over {limit} MiB.", status_code=413), receive
            receive = _replay(body, receive)
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("session_hash"), str):
                hashes.append(data["session_hash"])
        if username is not None:
            for session_hash in hashes:
                owner = self.session_owners.setdefault(session_hash, username)
                if owner != username:
                    return PlainTextResponse(
                        "Refused: this page session belongs to another login; reload the page.", status_code=403
                    ), receive
        return None, receive

    async def _read_body(self, headers: Headers, receive: Receive) -> tuple[bytes, bool]:
        limit = self.policy.max_request_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return b"", True
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands on the body already read, then what the client sends next (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
