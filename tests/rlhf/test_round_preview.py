"""The Start round preview: the rows the round's exports would give now, a duration, and why it would be refused."""

from __future__ import annotations

from datetime import timedelta

from rlhf.jobs.preview import EVALUATION_SECONDS, ROUGH_SECONDS_PER_ROW, config_label, preview_round
from rlhf.training.config import load_round_config
from storage.db import read_scope, session_scope
from storage.export import build_export
from storage.models import ModelVersion, Round, utcnow
from tests.helpers import seed

CONFIG = "configs/round_dpo_tiny.yaml"


def test_preview_counts_what_the_export_gives_and_guesses_a_time_until_a_round_has_run(sqlite_url):
    seed(sqlite_url, users={"ann1": "annotator", "ann2": "annotator"}, prompts=6)
    preview = preview_round(CONFIG, sqlite_url)
    config = load_round_config(CONFIG)
    assert preview.name == "dpo-tiny" and preview.description == config.description and preview.parent == "v0"
    assert set(preview.counts) == set(config.data_kinds) == {"preference", "prompt", "sft"}
    with read_scope(sqlite_url) as session:
        prompts = build_export(session, config.export_options("prompt", None, None, {}))[1]["counts"]
    assert preview.counts["prompt"] == prompts and sum(prompts.values()) == 6
    rows = sum(preview.counts[config.data_kind(stage)]["train"] for stage in config.stages)
    assert preview.estimate_s == EVALUATION_SECONDS + ROUGH_SECONDS_PER_ROW * rows
    assert "rough guess" in preview.estimate_basis
    assert preview.problems == ["no preference training rows yet"]  # the seed has queued pairs, none judged

    with session_scope(sqlite_url) as session:
        parent_id = session.exec(ModelVersion.__table__.select()).first().id  # the live v0
        now = utcnow()
        for seconds, status in ((100, "succeeded"), (300, "succeeded"), (900, "failed")):
            session.add(
                Round(
                    config_path=CONFIG,
                    config_yaml="x",
                    parent_version_id=parent_id,
                    status=status,
                    started_at=now - timedelta(seconds=seconds),
                    finished_at=now,
                )
            )
        session.add(Round(config_path=CONFIG, config_yaml="x", parent_version_id=parent_id, status="running"))
    preview = preview_round(CONFIG, sqlite_url)
    assert preview.estimate_s == 200 and preview.estimate_basis == "median of 2 past rounds of this config"
    assert preview.problems == ["round 4 is running on parent 'v0'", "no preference training rows yet"]
    text = preview.summary()
    assert "estimated time: about 3 min (median of 2 past rounds" in text
    assert "cannot start now: round 4 is running on parent 'v0'" in text


def test_config_labels_carry_the_description_and_a_broken_file_is_still_listed(tmp_path):
    assert config_label(CONFIG) == "round_dpo_tiny.yaml: " + str(load_round_config(CONFIG).description)
    broken = tmp_path / "round_broken.yaml"
    broken.write_text("stages: {}\n")
    assert config_label(broken) == "round_broken.yaml (does not load)"
