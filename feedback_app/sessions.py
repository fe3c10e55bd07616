"""Logins that end: Gradio's token table, with when and as whom each token was issued.

Gradio keeps login tokens in a plain dict on the server app (`app.tokens`, token -> username),
reads it on every route (page, config, API, queue, file, upload) and never expires or revokes
them. `LoginTokens` replaces that dict after launch: a token reads as absent once it is older than
`server.session_hours`, or once its user is deactivated, deleted or given another role (checked
against the store at most every `recheck_s`, so `rlhf users ...` in another process counts too).
Every route then answers 401 and the user logs in again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache


@dataclass(frozen=True)
class Issued:
    username: str
    role: str | None
    at: float


class LoginTokens(dict):
    """token -> username, as Gradio reads it; only tokens that are still good are visible."""

    def __init__(
        self,
        max_age_s: float,
        role_of: Callable[[str], str | None],
        *,
        recheck_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.max_age_s = max_age_s
        self._role_of = role_of
        self._clock = clock
        self._issued: dict[str, Issued] = {}
        self._roles: TTLCache = TTLCache(maxsize=100_000, ttl=recheck_s, timer=clock)
        self._lock = threading.RLock()

    def issue(self, token: str, username: str, role: str | None) -> None:
        """Record a login as `role`, the store's answer just now: it also replaces the cached role, which may be older."""
        with self._lock:
            self._roles[username] = role
            self._issued[token] = Issued(username, role, self._clock())
            super().__setitem__(token, username)

    def __setitem__(self, token, username):
        self.issue(token, username, self._role_of(username))

    def __delitem__(self, token):
        with self._lock:
            self._issued.pop(token, None)
            super().__delitem__(token)

    def revoke_user(self, username: str) -> int:
        """Forget every token of `username` (logout, or their account changed); how many there were."""
        with self._lock:
            tokens = [token for token, issued in self._issued.items() if issued.username == username]
            for token in tokens:
                self._issued.pop(token, None)
                super().pop(token, None)
            self._roles.pop(username, None)
        return len(tokens)

    def role(self, username: str) -> str | None:
        """The user's role now (None: inactive or gone), from the store at most every `recheck_s`."""
        return self._current_role(username)

    def _current_role(self, username: str) -> str | None:
        with self._lock:
            if username in self._roles:
                return self._roles[username]
        role = self._role_of(username)
        with self._lock:
            self._roles[username] = role
        return role

    def _good(self, token) -> bool:
        with self._lock:
            issued = self._issued.get(token)
        if issued is None:
            return False
        role = self._current_role(issued.username)
        if self._clock() - issued.at > self.max_age_s or role is None or role != issued.role:
            with self._lock:
                self._issued.pop(token, None)
                super().pop(token, None)
            return False
        return True

    def get(self, token, default=None):
        return super().get(token, default) if self._good(token) else default

    def __getitem__(self, token):
        if not self._good(token):
            raise KeyError(token)
        return super().__getitem__(token)

    def __contains__(self, token):
        return self._good(token)

    def keys(self):  # type: ignore[override]  # a snapshot of the good tokens, safe to delete from while iterating
        return [token for token in list(super().keys()) if self._good(token)]

    def __iter__(self):
        return iter(self.keys())

    def items(self):  # type: ignore[override]
        return [(token, super(LoginTokens, self).get(token)) for token in self.keys()]
