"""Generation into the queue follows the live version while the app runs: no restart after a new version."""

from __future__ import annotations

from dataclasses import replace

import pytest
from gradio_client import Client
from sqlmodel import select

from feedback_app.config import AppConfig
from rlhf.models.modeling import init_tiny
from rlhf.models.registry import register_version
from storage.crud import add_prompt, create_user
from storage.db import session_scope
from storage.models import AnnotationItem, Generation, ModelVersion
from tests.helpers import PASSWORD, running_app

CONFIG = AppConfig(
    overlap=1,
    mix={"pairwise": 1.0},
    fill_prompts=3,
    generation={"per_prompt": 2, "max_new_tokens": 8, "temperature": 1.0, "top_p": 1.0},
)


@pytest.fixture(scope="module")
def server(module_store, tiny_model_dir):
    with session_scope(module_store) as session:
        create_user(session, username="eng", role="engineer", password=PASSWORD)
        create_user(session, username="ann", role="annotator", password=PASSWORD)
        for i in range(6):
            add_prompt(session, text=f"Tell me about the number {i}.")
        register_version(
            session, name="v0", base_model=str(tiny_model_dir), artifact_path=str(tiny_model_dir), make_live=True
        )
    with running_app(module_store, replace(CONFIG)) as running:
        yield running


def versions_of_new_rows(url, since_generation: int) -> tuple[set[str], set[str]]:
    with session_scope(url) as session:
        names = dict(session.exec(select(ModelVersion.id, ModelVersion.name)).all())
        generations = session.exec(select(Generation).where(Generation.id > since_generation)).all()
        by_id = {g.id: names[g.model_version_id] for g in session.exec(select(Generation)).all()}
        items = session.exec(select(AnnotationItem)).all()
        item_versions = {by_id[g] for item in items for g in item.generation_ids if g > since_generation}
    return {names[g.model_version_id] for g in generations}, item_versions


def test_a_new_live_version_is_what_the_next_candidates_come_from(server, tmp_path):
    engineer = Client(server.base, auth=("eng", PASSWORD), verbose=False)
    summary, _ = engineer.predict(api_name="/fill_queue")
    assert summary.startswith("v0: ") and "queued 3 pairwise" in summary
    assert versions_of_new_rows(server.url, 0) == ({"v0"}, {"v0"})
    with session_scope(server.url) as session:
        last = max(session.exec(select(Generation.id)).all())

    v1_dir = init_tiny(tmp_path / "v1", seed=1)
    with session_scope(server.url) as session:
        v0 = session.exec(select(ModelVersion).where(ModelVersion.name == "v0")).one()
        register_version(
            session,
            name="v1",
            base_model=str(v1_dir),
            artifact_path=str(v1_dir),
            kind="sft",
            parent_id=v0.id,
            make_live=True,
        )

    summary, data = engineer.predict(api_name="/fill_queue")
    assert summary.startswith("v1: ") and "queued" in summary
    assert versions_of_new_rows(server.url, last) == ({"v1"}, {"v1"})
    assert server.ctx.filler.pool.active_name() == "v1"

    annotator = Client(server.base, auth=("ann", PASSWORD), verbose=False)
    with pytest.raises(Exception, match="annotator cannot do this"):
        annotator.predict(api_name="/fill_queue")
    prompt, left, right, token, *_ = annotator.predict(api_name="/pairwise_next")
    assert token and prompt.startswith("Tell me about the number")
