"""The background queue filler outlives a broken live version: it reports, backs off and recovers."""

from __future__ import annotations

import shutil
from collections import Counter

from feedback_app.config import AppConfig
from feedback_app.filler import QueueFiller
from rlhf.models.registry import register_version
from storage.crud import add_prompt
from storage.db import session_scope

CONFIG = AppConfig(
    overlap=1,
    mix={"pairwise": 1.0},
    fill_prompts=2,
    fill_interval_s=1.0,
    generation={"per_prompt": 2, "max_new_tokens": 4, "temperature": 1.0, "top_p": 1.0},
)


def test_a_corrupt_weights_file_is_reported_and_restoring_it_recovers(sqlite_url, tiny_model_dir, tmp_path, capsys):
    model_dir = tmp_path / "v0"
    shutil.copytree(tiny_model_dir, model_dir)
    with session_scope(sqlite_url) as session:
        for i in range(3):
            add_prompt(session, text=f"Tell me about the number {i}.")
        register_version(session, name="v0", base_model=str(model_dir), artifact_path=str(model_dir), make_live=True)
    weights = model_dir / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"\xff" * 64 + good[64:])
    filler = QueueFiller(sqlite_url, CONFIG)

    assert filler.top_up() is False
    assert filler.last_error is not None and "SafetensorError" in filler.last_error
    assert filler.last_error_at is not None
    assert filler.delay() > CONFIG.fill_interval_s
    printed = capsys.readouterr().out
    assert printed.startswith("queue filler: SafetensorError") and printed.count("\n") == 1
    assert filler.open_items() == 0

    weights.write_bytes(good)
    assert filler.top_up() is True
    assert filler.last_error is None and filler.delay() == CONFIG.fill_interval_s
    assert filler.open_items() == 2


def test_the_background_thread_keeps_running_after_a_failure(sqlite_url, monkeypatch):
    filler = QueueFiller(sqlite_url, AppConfig(fill_interval_s=0.5))
    calls = []

    class Broken(Exception):
        """Not one of the errors the loop used to expect."""

    def fill(prompts=None):
        calls.append(prompts)
        if len(calls) == 1:
            raise Broken("weights unreadable")

    monkeypatch.setattr(filler, "fill", fill)
    monkeypatch.setattr(filler, "delay", lambda: 0.05)
    filler.start()
    try:
        filler._thread.join(timeout=1.0)
        assert filler._thread.is_alive() and len(calls) >= 2
    finally:
        filler.stop()


def test_the_rounds_tab_shows_a_failing_filler_and_fill_queue_says_why(sqlite_url, tiny_model_dir, tmp_path):
    from feedback_app.http_client import AppClient
    from storage.crud import create_user
    from tests.helpers import PASSWORD, running_app

    model_dir = tmp_path / "v0"
    shutil.copytree(tiny_model_dir, model_dir)
    with session_scope(sqlite_url) as session:
        add_prompt(session, text="Tell me about rivers.")
        register_version(session, name="v0", base_model=str(model_dir), artifact_path=str(model_dir), make_live=True)
        create_user(session, username="eng", role="engineer", password=PASSWORD)
    (model_dir / "model.safetensors").write_bytes(b"\xff" * 64)
    with running_app(sqlite_url, CONFIG) as server:
        assert server.ctx.filler.top_up() is False
        engineer = AppClient(server.base, "eng", PASSWORD)
        assert "SafetensorError" in engineer.call("data_summary")[0]["queue_filler"]
        message, _ = engineer.call("fill_queue")  # a Result message, not an error over the Rounds tab
        assert message.startswith("Filling the queue failed: ") and "SafetensorError" in message
        assert engineer.post("on_load").status_code == 200  # the app still serves


def test_the_demo_configs_queue_every_kind_and_some_items_for_two_annotators(sqlite_url, tiny_model_dir):
    """A person trying the demo finds work in every tab, and the Annotators tab has items judged twice."""
    from dataclasses import replace

    from sqlmodel import select

    from feedback_app.config import load_app_config
    from storage.models import AnnotationItem, Generation

    with session_scope(sqlite_url) as session:
        for i in range(30):
            add_prompt(session, text=f"Tell me about the number {i}.")
        register_version(session, name="v0", base_model="tiny", artifact_path=str(tiny_model_dir), make_live=True)
    for name in ("app_demo.yaml", "app_demo_smol.yaml"):
        config = load_app_config(name)
        assert set(config.mix) == {"pairwise", "rating", "ranking", "correction"} and config.agreement_share > 0
    config = load_app_config("app_demo_smol.yaml")  # two answers per prompt, on the tiny model here
    config = replace(config, generation={**config.generation, "max_new_tokens": 4, "batch_size": 16})
    assert config.fill_prompts > 30  # the shares split the 30 prompts there are, not the fill's limit
    report = QueueFiller(sqlite_url, config).fill()

    with session_scope(sqlite_url) as session:
        items = session.exec(select(AnnotationItem)).all()
    kinds = {item.kind for item in items}
    assert kinds == {"pairwise", "rating", "ranking", "correction"}, report
    by_overlap = {n: [item.kind for item in items if item.overlap == n] for n in (1, 2)}
    assert set(by_overlap[2]) == kinds  # every kind's first prompt goes to two annotators
    assert len(by_overlap[1]) > len(by_overlap[2])  # most of the queue still goes to one
    with session_scope(sqlite_url) as session:  # only the ranking share is answered four times
        answers = Counter(session.exec(select(Generation.prompt_id)).all())
    ranked = {item.prompt_id for item in items if item.kind == "ranking"}
    assert len(ranked) == round(30 * config.mix["ranking"]) and all(answers[p] >= 3 for p in ranked)
    assert all(answers[p] <= 2 for p in set(answers) - ranked) and report.prompts == 30
