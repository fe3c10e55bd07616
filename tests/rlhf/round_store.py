"""A store for round tests: the tiny model registered live, and pairwise judgments that follow a hidden rule.

The rule: the answer that ends with a polite "thank you" beats the curt one. Two annotators
judge each pair (the second disagrees now and then), so min_annotators filters have something
to count.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rlhf.models.registry import register_version
from storage.crud import add_judgment, add_prompt, create_user, get_or_create_generation
from storage.db import session_scope

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


def seed_store(url: str, tiny_model_dir: Path, workdir: Path, *, n_prompts: int = 20) -> str:
    """Register a copy of the tiny model as live version "base" and add 2 × n_prompts pairwise judgments."""
    model_dir = workdir / "base-model"
    if not model_dir.exists():
        shutil.copytree(tiny_model_dir, model_dir)
    with session_scope(url) as session:
        register_version(session, name="base", base_model=str(model_dir), artifact_path=str(model_dir), make_live=True)
        annotators = [create_user(session, username=f"ann{i}") for i in (1, 2)]
        for i, topic in enumerate(TOPICS[:n_prompts]):
            prompt, _ = add_prompt(session, text=f"Tell me one fact about {topic}.")
            good = get_or_create_generation(
                session, prompt_id=prompt.id, text=f"{topic.capitalize()} are interesting, thank you for asking."
            )
            bad = get_or_create_generation(session, prompt_id=prompt.id, text=f"No. {topic}.")
            for j, user in enumerate(annotators):
                flip = i % 2 == 0
                pair = [bad.id, good.id] if flip else [good.id, bad.id]
                winner = "b" if flip else "a"
                if j == 1 and i % 7 == 3:
                    winner = "a" if winner == "b" else "b"
                add_judgment(
                    session,
                    kind="pairwise",
                    user_id=user.id,
                    prompt_id=prompt.id,
                    generation_ids=pair,
                    payload={"choice": winner},
                    client_key=f"seed-{i}-{j}",
                    source="test",
                )
    return "base"
