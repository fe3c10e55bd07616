"""What the tests share besides fixtures: one factory that seeds a store, a running app, what a client sees.

Fixtures live in the conftest.py files; everything a test module imports by name lives here
(`from tests.helpers import ...`). The benchmarks in bench/ seed their stores with the same factory.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import select

from feedback_app.http_client import free_port
from storage import queue
from storage.crud import add_judgment, add_prompt, create_user, get_or_create_generation
from storage.db import dispose_engines, session_scope, sqlite_path
from storage.models import BlindVote, Generation, ModelVersion

if TYPE_CHECKING:
    from feedback_app.config import AppConfig

__all__ = [
    "PASSWORD",
    "REFUSALS",
    "TOPICS",
    "XSS",
    "Seeded",
    "Server",
    "fingerprint",
    "free_port",
    "running_app",
    "seed",
    "seed_round_store",
    "seed_store",
]

PASSWORD = "pw-for-tests"
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
ITEM_KINDS = ("pairwise", "rating", "ranking", "correction")


# --- seeding a store ---------------------------------------------------------------------------


@dataclass
class Seeded:
    version_id: int | None
    user_ids: list[int]
    prompt_ids: list[int]
    generation_ids: list[list[int]]  # per prompt, in answer order
    item_ids: list[int]


def _text(template: str | Callable[..., str], **numbers: int) -> str:
    return template(*numbers.values()) if callable(template) else template.format(**numbers)


def seed_store(
    url: str,
    *,
    users: Mapping[str, str] | Iterable[str] = (),
    password: str | None = PASSWORD,
    prompts: int = 0,
    answers: int = 2,
    prompt_text: str | Callable[[int], str] = "prompt {p}",
    answer_text: str | Callable[[int, int], str] = "answer {p}.{g}",
    version: str | int | None = "v0",
    artifact: str = "/nowhere",
    live: bool = True,
    enqueue: Iterable[str] = (),
    overlap: int = 1,
) -> Seeded:
    """Users, a model version, `prompts` prompts with `answers` responses each, and queue items, in one transaction.

    users: annotator names, or {name: role}. version: the name of a new version (base model "tiny",
    ready, live when `live`), the id of a version already in the store, or None for responses from no
    version. Texts are templates over {p} (prompt number) and {g} (answer number), or functions of them.
    enqueue: the item kinds to queue from the version's responses, each with `overlap`.
    """
    roles = dict(users) if isinstance(users, Mapping) else dict.fromkeys(users, "annotator")
    with session_scope(url) as session:
        user_ids = [create_user(session, username=n, role=r, password=password).id for n, r in roles.items()]
        version_id = version if isinstance(version, int) or version is None else None
        if isinstance(version, str):
            row = ModelVersion(name=version, base_model="tiny", artifact_path=artifact, status="ready", is_live=live)
            session.add(row)
            session.flush()
            version_id = row.id
        prompt_ids, generation_ids = [], []
        for p in range(prompts):
            prompt, _ = add_prompt(session, text=_text(prompt_text, p=p))
            prompt_ids.append(prompt.id)
            generation_ids.append(
                [
                    get_or_create_generation(
                        session, prompt_id=prompt.id, text=_text(answer_text, p=p, g=g), model_version_id=version_id
                    ).id
                    for g in range(answers)
                ]
            )
        item_ids = [
            item.id
            for kind in enqueue
            for item in queue.enqueue(session, kind=kind, version_id=version_id, overlap=overlap)
        ]
    return Seeded(version_id, user_ids, prompt_ids, generation_ids, item_ids)


def seed(url: str, *, users: dict[str, str], prompts: int = 4, overlap: int = 2, xss_first: bool = False) -> int:
    """The app tests' store: users, a live version 'v0' with 4 responses per prompt, items of every kind; v0's id."""

    def answer(p: int, g: int) -> str:
        return XSS if (xss_first and p == 0 and g == 0) else f"Answer {p}.{g}: it is {2 * p + g - 1}."

    return seed_store(
        url,
        users=users,
        prompts=prompts,
        answers=4,
        prompt_text="Question {p}: what is {p} + {p}?",
        answer_text=answer,
        enqueue=ITEM_KINDS,
        overlap=overlap,
    ).version_id


TOPICS = [
    "rivers",
    "bread",
    "stars",
    "bees",
    "chess",
    "rain",
    "maps",
    "clocks",
    "tea",
    "owls",
    "ships",
    "snow",
    "glass",
    "salt",
    "wolves",
    "bridges",
    "paper",
    "moss",
    "kites",
    "wells",
]


def topic(i: int) -> str:
    return TOPICS[i] if i < len(TOPICS) else f"{TOPICS[i % len(TOPICS)]} number {i}"


def seed_round_store(
    url: str,
    model_dir: Path,
    workdir: Path | None = None,
    *,
    n_prompts: int = 20,
    annotators: int = 2,
    source: str = "test",
) -> str:
    """A store for rounds: `model_dir` registered as live version "base", pairwise judgments that follow a hidden rule.

    The rule: the answer that ends with a polite "thank you" beats the curt one. Each of
    `annotators` judges every pair (the second disagrees now and then), so min_annotators filters
    have something to count. With `workdir`, a copy of the model there is registered instead
    (the session's tiny model is read-only). Returns the version's name.
    """
    from rlhf.models.registry import register_version

    if workdir is not None:
        copy = workdir / "base-model"
        if not copy.exists():
            shutil.copytree(model_dir, copy)
        model_dir = copy
    with session_scope(url) as session:
        register_version(session, name="base", base_model=str(model_dir), artifact_path=str(model_dir), make_live=True)
    seeded = seed_store(
        url,
        users=[f"ann{j + 1}" for j in range(annotators)],
        password=None,
        prompts=n_prompts,
        prompt_text=lambda i: f"Tell me one fact about {topic(i)}.",
        answer_text=lambda i, g: (
            f"{topic(i).capitalize()} are interesting, thank you for asking." if g == 0 else f"No. {topic(i)}."
        ),
        version=None,
    )
    with session_scope(url) as session:
        for i, prompt_id in enumerate(seeded.prompt_ids):
            good, bad = seeded.generation_ids[i]
            for j, user_id in enumerate(seeded.user_ids):
                flip = i % 2 == 0
                pair = [bad, good] if flip else [good, bad]
                winner = "b" if flip else "a"
                if j == 1 and i % 7 == 3:
                    winner = "a" if winner == "b" else "b"
                add_judgment(
                    session,
                    kind="pairwise",
                    user_id=user_id,
                    prompt_id=prompt_id,
                    generation_ids=pair,
                    payload={"choice": winner},
                    client_key=f"seed-{i}-{j}",
                    source=source,
                )
    return "base"


# --- a running app -----------------------------------------------------------------------------


@dataclass
class Server:
    url: str  # the store
    base: str  # http://127.0.0.1:PORT
    ctx: object
    demo: object


@contextmanager
def running_app(url: str, config: AppConfig | None = None):
    """The app on a free local port, in this process, until the block ends."""
    from feedback_app.app import launch
    from feedback_app.config import AppConfig

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


@contextmanager
def running_app_with_two_versions(url: str, users: dict[str, str], prompts: int = 4):
    """The app on a store where v1 (live) answers the same prompts as its parent v0 and a reviewer has voted
    between them: what the browser, review and screenshot tests look at. The first prompt holds XSS."""
    v0 = seed(url, users=users, prompts=prompts, overlap=2, xss_first=True)
    add_child_version_with_votes(url, v0)
    with running_app(url) as running:
        yield running


# --- what a client of the app sees -------------------------------------------------------------


def client(server: Server, user: str):
    """A gradio_client logged in as `user` (every seeded user has PASSWORD)."""
    from gradio_client import Client

    return Client(server.base, auth=(user, PASSWORD), verbose=False)


REFUSALS = ("Please log in.", "Your account is not active.", "Not allowed: ")  # how refused calls begin


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


def add_child_version_with_votes(url: str, parent_id: int) -> None:
    """v1, a live child of v0, answering the same prompts, and a few blind votes between them."""
    with session_scope(url) as session:
        session.get(ModelVersion, parent_id).is_live = False
        v1 = ModelVersion(
            name="v1",
            base_model="tiny",
            artifact_path="/nowhere/v1",
            status="ready",
            parent_id=parent_id,
            kind="dpo",
            is_live=True,
        )
        session.add(v1)
        session.flush()
        parents = session.exec(select(Generation).where(Generation.model_version_id == parent_id)).all()
        for prompt_id in sorted({g.prompt_id for g in parents}):
            text = XSS if prompt_id == parents[0].prompt_id else f"Improved answer to prompt {prompt_id}."
            mine = get_or_create_generation(session, prompt_id=prompt_id, text=text, model_version_id=v1.id)
            theirs = next(g for g in parents if g.prompt_id == prompt_id)
            session.add(
                BlindVote(
                    user_id=2,
                    prompt_id=prompt_id,
                    version_a_id=v1.id,
                    version_b_id=parent_id,
                    generation_a_id=mine.id,
                    generation_b_id=theirs.id,
                    shown_order=[mine.id, theirs.id],
                    choice="a" if prompt_id % 4 else "b",
                    client_key=f"seed-{prompt_id}",
                )
            )


REFUSED_METRICS = {
    "win_rate": 0.531,
    "win_rate_ci95": [0.41, 0.65],
    "kl_to_parent": 0.125,
    "mean_length": 14.0,
    "parent_mean_length": 12.5,
    "reward_model": {"n_pairs": 20, "accuracy": 0.85},
    "length_bias": {"correlation": 0.1, "explained_gain": 0.02, "alarm": False},
    "degeneration": {
        "child": {"repetition": 0.148, "distinct_2": 0.61},
        "parent": {"repetition": 0.012, "distinct_2": 0.7},
        "alarms": ["4-gram repetition 0.148 > 0.10 (parent 0.012)"],
    },
    "gate": {
        "passed": False,
        "min_win_rate": 0.55,
        "reasons": ["win-rate 0.531 < 0.55", "degeneration: 4-gram repetition 0.148 > 0.10 (parent 0.012)"],
    },
}
"""A round's stored evaluation that its publish gate refused (rlhf.training.evaluation.gate_decision's shape)."""


def add_refused_round(url: str, parent_name: str, config_path: str = "configs/round_dpo_tiny.yaml") -> int:
    """A finished round on `parent_name` whose gate refused its version (registered ready, not live), as the
    recipe records one; returns the round's id."""
    from datetime import timedelta

    from rlhf.models.registry import get_version
    from storage.models import Round, utcnow

    with session_scope(url) as session:
        parent = get_version(session, name=parent_name)
        assert parent is not None
        now = utcnow()
        row = Round(
            config_path=config_path,
            config_yaml=(Path(__file__).resolve().parents[1] / config_path).read_text(),
            parent_version_id=parent.id,
            status="succeeded",
            metrics=REFUSED_METRICS,
            created_by="eng",
            started_at=now - timedelta(seconds=42),
            finished_at=now,
        )
        session.add(row)
        session.flush()
        version = ModelVersion(
            name=f"dpo-tiny-r{row.id}",
            base_model=parent.base_model,
            artifact_path="/nowhere/refused",
            status="ready",
            parent_id=parent.id,
            kind="dpo",
            round_id=row.id,
            metrics=REFUSED_METRICS,
        )
        session.add(version)
        session.flush()
        row.output_version_id = version.id
        assert row.id is not None
        return row.id
