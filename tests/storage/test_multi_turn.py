"""Multi-turn prompts: imported as `messages`, kept as turns, exported in TRL's conversational format, shown as a chat."""

import json

import pytest
from sqlmodel import select

from feedback_app.annotation import open_next
from feedback_app.roles import Caller
from feedback_app.state import Sealer
from storage import queue
from storage.crud import get_or_create_generation
from storage.db import session_scope
from storage.export import ExportOptions, build_export
from storage.imports import ImportFailed, import_prompts
from storage.models import Judgment, Prompt
from tests.helpers import seed_store

TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a prime."},
    {"role": "assistant", "content": "2."},
    {"role": "user", "content": "Another?"},
]


def write(tmp_path, records):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_messages_are_imported_as_turns_and_checked(db_url, tmp_path):
    report = import_prompts(write(tmp_path, [{"messages": TURNS, "tags": ["chat"]}, {"prompt": "plain"}]), url=db_url)
    assert report.created == 2
    with session_scope(db_url) as session:
        chat, plain = session.exec(select(Prompt).order_by(Prompt.id)).all()
    assert chat.messages == TURNS and chat.text.endswith("user: Another?") and chat.tags == ["chat"]
    assert plain.messages is None and plain.text == "plain"
    assert import_prompts(write(tmp_path, [{"messages": TURNS}]), url=db_url).duplicates == 1

    bad = [
        {"messages": TURNS[:3]},
        {"messages": []},
        {"messages": [{"role": "robot", "content": "x"}]},
        {"messages": TURNS, "prompt": "both"},
    ]
    with pytest.raises(ImportFailed) as failed:
        import_prompts(write(tmp_path, bad), url=db_url)
    messages = [str(e) for e in failed.value.errors]
    assert "the last turn must be the user's" in messages[0]
    assert "messages" in messages[1] and "messages.0.role" in messages[2] and "not both" in messages[3]


def test_exports_and_the_annotation_view_keep_every_turn(db_url, tmp_path):
    seeded = seed_store(db_url, users=["ann"], prompts=0)
    import_prompts(write(tmp_path, [{"messages": TURNS}]), url=db_url)
    with session_scope(db_url) as session:
        prompt = session.exec(select(Prompt)).one()
        a = get_or_create_generation(session, prompt_id=prompt.id, text="3.", model_version_id=seeded.version_id)
        b = get_or_create_generation(session, prompt_id=prompt.id, text="4.", model_version_id=seeded.version_id)
        [item] = queue.enqueue(session, kind="pairwise", version_id=seeded.version_id, overlap=1)
        shown = open_next(
            session, sealer=Sealer(), user=Caller(seeded.user_ids[0], "ann", "annotator", True), kind="pairwise"
        )
        assert list(shown.turns) == TURNS
        session.add(
            Judgment(
                kind="pairwise",
                user_id=seeded.user_ids[0],
                prompt_id=prompt.id,
                item_id=item.id,
                generation_ids=[a.id, b.id],
                payload={"choice": "a"},
                client_key="k1",
            )
        )
    with session_scope(db_url) as session:
        preference, _ = build_export(session, ExportOptions(kind="preference", test_fraction=0.0))
        prompts, _ = build_export(session, ExportOptions(kind="prompt", test_fraction=0.0))
    assert preference["train"] == [
        {
            "prompt": TURNS,
            "chosen": [{"role": "assistant", "content": "3."}],
            "rejected": [{"role": "assistant", "content": "4."}],
        }
    ]
    assert prompts["train"] == [{"prompt": TURNS}]


def test_generation_is_asked_with_the_turns(db_url, tmp_path):
    from rlhf.inference.generation import answer_prompts
    from storage.models import ModelVersion

    seeded = seed_store(db_url, prompts=0)
    import_prompts(write(tmp_path, [{"messages": TURNS}, {"prompt": "plain"}]), url=db_url)
    asked: list = []

    def generate(prompts, seed):
        asked.extend(prompts)
        return [f"answer {len(asked)}-{i}" for i in range(len(prompts))]

    with session_scope(db_url) as session:
        version = session.get_one(ModelVersion, seeded.version_id)
        answer_prompts(session, version=version, generate=generate, per_prompt=1, params={})
    assert len(asked) == 2 and TURNS in asked and "plain" in asked  # batched by length, so shortest first
