"""Raw HTTP to the app, as a browser or a script would send it: log in, then POST /gradio_api/run/<name>."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid

import httpx

from storage.db import sqlite_path
from tests.helpers import PASSWORD

REFUSALS = ("Please log in.", "Your account is not active.", "Not allowed: ")


class Tab:
    """One logged-in browser tab (or none logged in, with `user=None`)."""

    def __init__(self, base: str, user: str | None, password: str = PASSWORD):
        self.http = httpx.Client(base_url=base, timeout=60)
        self.session = {"session_hash": uuid.uuid4().hex[:11]}
        if user is not None:
            self.http.post("/login", data={"username": user, "password": password}).raise_for_status()

    def call(self, api_name: str, *data) -> httpx.Response:
        body = json.dumps({"data": list(data), **self.session})  # ASCII-escaped, so lone surrogates travel too
        return self.http.post(f"/gradio_api/run/{api_name}", content=body, headers={"content-type": "application/json"})

    def ok(self, api_name: str, *data) -> list:
        reply = self.call(api_name, *data)
        assert reply.status_code == 200, (api_name, reply.status_code, reply.text[:500])
        return reply.json()["data"]

    def close(self) -> None:
        self.http.close()


def error_of(reply: httpx.Response) -> str | None:
    """The message a refused or failed call shows the user; None for a call that ran."""
    if reply.status_code == 200:
        return None
    try:
        body = reply.json()
    except ValueError:
        return reply.text
    return body.get("error") or str(body.get("detail"))


def fingerprint(url: str) -> str:
    """A hash of every row of every table, read from the SQLite file (WAL readers do not block the app)."""
    connection = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
    digest = hashlib.sha256()
    try:
        tables = [
            name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
                digest.update(repr(row).encode())
    finally:
        connection.close()
    return digest.hexdigest()
