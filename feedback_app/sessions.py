"""Logins that expire: Gradio's token table, with the time each token was issued.

Gradio keeps login tokens in a plain dict on the server app (`app.tokens`, token -> username)
and never expires them. `ExpiringTokens` replaces that dict after launch: a token older than
`server.session_hours` reads as absent, so every route (page, API, queue) answers 401 and
the user logs in again; logging out still deletes the token.
"""

from __future__ import annotations

import threading
import time


class ExpiringTokens(dict):
    def __init__(self, max_age_s: float, clock=time.monotonic):
        super().__init__()
        self.max_age_s = max_age_s
        self._clock = clock
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()

    def __setitem__(self, token, username):
        with self._lock:
            self._issued[token] = self._clock()
            super().__setitem__(token, username)

    def __delitem__(self, token):
        with self._lock:
            self._issued.pop(token, None)
            super().__delitem__(token)

    def _expired(self, token) -> bool:
        issued = self._issued.get(token)
        return issued is not None and self._clock() - issued > self.max_age_s

    def _drop_if_expired(self, token) -> None:
        if self._expired(token):
            with self._lock:
                self._issued.pop(token, None)
                super().pop(token, None)

    def get(self, token, default=None):
        self._drop_if_expired(token)
        return super().get(token, default)

    def __getitem__(self, token):
        self._drop_if_expired(token)
        return super().__getitem__(token)

    def __contains__(self, token):
        self._drop_if_expired(token)
        return super().__contains__(token)


def expire_logins(demo, hours: float) -> ExpiringTokens:
    """Swap the launched app's token table for one whose tokens last `hours`."""
    tokens = ExpiringTokens(hours * 3600)
    for token, username in dict(demo.server_app.tokens).items():
        tokens[token] = username
    demo.server_app.tokens = tokens
    return tokens
