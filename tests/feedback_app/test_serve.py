"""`rlhf serve` starts the app on the host and port it is given, with login against the store."""

import subprocess
import sys
import time

import httpx
import pytest

from storage.crud import create_user
from storage.db import session_scope
from tests.helpers import free_port

pytestmark = pytest.mark.slow  # `rlhf serve` in a subprocess


def test_rlhf_serve_listens_and_logs_users_in(sqlite_url):
    with session_scope(sqlite_url) as session:
        create_user(session, username="eng", role="engineer", password="serve-pw")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlhf.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            sqlite_url,
            "--no-fill",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/config", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.3)
        with httpx.Client(base_url=base) as http:
            assert http.get("/config").status_code == 401
            assert http.post("/login", data={"username": "eng", "password": "wrong"}).status_code == 400
            assert http.post("/login", data={"username": "eng", "password": "serve-pw"}).status_code == 200
            assert http.get("/config").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)
