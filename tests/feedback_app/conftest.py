"""A real app server per test module: a SQLite file, seeded users and queue, Gradio on a free local port."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from dataclasses import dataclass, replace

import pytest

from feedback_app.app import launch
from feedback_app.config import AppConfig
from storage import queue
from storage.crud import add_prompt, create_user, get_or_create_generation
from storage.db import dispose_engines, session_scope
from storage.migrate import upgrade
from storage.models import ModelVersion

PASSWORD = "pw-for-tests"
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@dataclass
class Server:
    url: str  # the store
    base: str  # http://127.0.0.1:PORT
    ctx: object
    demo: object


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(url: str, *, users: dict[str, str], prompts: int = 4, overlap: int = 2, xss_first: bool = False) -> int:
    """Users, a live version 'v0' with 4 responses per prompt, and queue items of every kind; returns v0's id."""
    with session_scope(url) as session:
        for name, role in users.items():
            create_user(session, username=name, role=role, password=PASSWORD)
        version = ModelVersion(name="v0", base_model="tiny", artifact_path="/nowhere", status="ready", is_live=True)
        session.add(version)
        session.flush()
        for p in range(prompts):
            prompt, _ = add_prompt(session, text=f"Question {p}: what is {p} + {p}?")
            for g in range(4):
                text = XSS if (xss_first and p == 0 and g == 0) else f"Answer {p}.{g}: it is {2 * p + g - 1}."
                get_or_create_generation(session, prompt_id=prompt.id, text=text, model_version_id=version.id)
        for kind in ("pairwise", "rating", "ranking", "correction"):
            queue.enqueue(session, kind=kind, version_id=version.id, overlap=overlap)
        return version.id


@contextmanager
def running_app(url: str, config: AppConfig | None = None):
    port = free_port()
    config = replace(config or AppConfig(), host="127.0.0.1", port=port)
    demo, ctx = launch(url, config, block=False)
    try:
        yield Server(url=url, base=f"http://127.0.0.1:{port}", ctx=ctx, demo=demo)
    finally:
        demo.close()
        if ctx.filler is not None:
            ctx.filler.stop()
        dispose_engines()


@pytest.fixture(scope="module")
def module_store(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('app') / 'store.db'}"
    upgrade(url)
    return url
