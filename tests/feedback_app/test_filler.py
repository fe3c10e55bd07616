"""The background queue filler outlives a broken live version: it reports, backs off and recovers."""

from __future__ import annotations

import shutil

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
