"""Talking to a running app from outside, as a browser tab or a script does: log in, then call handlers by name.

One `AppClient` is one browser tab: its own cookie (the login) and its own Gradio session hash,
under which the app keeps the tab's state (the item on screen, its view token). Handlers are
called as the browser calls them, `POST /gradio_api/run/<api_name>` (the reply comes back in the
same request, with no queue), or through gradio_client's queue with `predict` for long handlers
(filling the queue generates with the live policy: minutes on a real model, past any HTTP timeout).
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; another process could still take it first)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class AppCallError(RuntimeError):
    """A handler call the app refused or failed, with the message it shows the user."""

    def __init__(self, api_name: str, reply: httpx.Response):
        self.api_name, self.status_code, self.message = api_name, reply.status_code, error_of(reply)
        super().__init__(f"{api_name}: HTTP {reply.status_code}: {(self.message or '')[:500]}")


def error_of(reply: httpx.Response) -> str | None:
    """The message a refused or failed call shows the user; None for a call that ran."""
    if reply.status_code == 200:
        return None
    try:
        body = reply.json()
    except ValueError:
        return reply.text
    return body.get("error") or str(body.get("detail"))


class AppClient:
    """One browser tab on the app, logged in as `username` (or not logged in, without one)."""

    def __init__(self, base_url: str, username: str | None = None, password: str | None = None, *, timeout: float = 60):
        self.base_url, self.username, self._password = base_url, username, password
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.session = {"session_hash": uuid.uuid4().hex[:11]}
        self._gradio: Any = None
        if username is not None:
            self.http.post("/login", data={"username": username, "password": password or ""}).raise_for_status()

    def post(self, api_name: str, *data) -> httpx.Response:
        """The raw reply to one handler call, refusals included (status and body as the app sent them)."""
        body = json.dumps({"data": list(data), **self.session})  # ASCII-escaped, so lone surrogates travel too
        return self.http.post(f"/gradio_api/run/{api_name}", content=body, headers={"content-type": "application/json"})

    def call(self, api_name: str, *data) -> list:
        """The handler's outputs; AppCallError when the app refuses or fails the call."""
        reply = self.post(api_name, *data)
        if reply.status_code != 200:
            raise AppCallError(api_name, reply)
        return reply.json()["data"]

    def predict(self, api_name: str, *data):
        """A handler through Gradio's queue (gradio_client, its own login with the same account): no HTTP timeout."""
        if self._gradio is None:
            from gradio_client import Client

            auth = (self.username, self._password or "") if self.username is not None else None
            self._gradio = Client(self.base_url, auth=auth, verbose=False)
        return self._gradio.predict(*data, api_name=f"/{api_name}")

    def close(self) -> None:
        if self._gradio is not None:
            self._gradio.close()
        self.http.close()

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
