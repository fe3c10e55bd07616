"""`rlhf report`: a real store judged by simulated annotators, written as Markdown and HTML with plots."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from rlhf.cli import main
from rlhf.demo.simulated_annotators import SimulatedAnnotator, more_of
from rlhf.models.registry import register_version
from rlhf.quality.analytics import dataset_agreement
from rlhf.quality.report import write_report
from storage import crud
from storage.db import session_scope
from storage.models import Judgment, Round
from storage.review import add_blind_vote

WORDS = ["tree", "see", "sky", "green", "blue", "cat", "free", "run", "deep", "fox", "here", "now"]
SCRIPT = "<script>alert('pwned')</script>"
OLD = datetime(2026, 10, 1, tzinfo=UTC)


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9)))


@pytest.fixture
def judged_store(sqlite_url):
    """Two versions answer 30 prompts; four careful annotators and one noisy one compare and rate them."""
    rng = random.Random(7)
    rule = more_of("e")
    annotators = [SimulatedAnnotator(f"careful{i}", rule, flip_prob=0.05, seed=i) for i in range(4)]
    annotators.append(SimulatedAnnotator("noisy", rule, flip_prob=0.8, seed=99))
    with session_scope(sqlite_url) as session:
        users = {a.name: crud.create_user(session, username=a.name) for a in annotators}
        reviewer = crud.create_user(session, username="rev", role="reviewer")
        base = register_version(session, name="base", base_model="tiny", artifact_path="/m/base")
        child = register_version(
            session,
            name="r1-<b>dpo",
            base_model="tiny",
            artifact_path="/m/r1",
            kind="dpo",
            parent_id=base.id,
            make_live=True,
            metrics={
                "win_rate": 0.9,
                "mean_reward": 1.5,
                "parent_mean_reward": 0.1,
                "mean_length": 20.0,
                "parent_mean_length": 18.0,
                "gate": {"passed": True, "reasons": []},
            },
        )
        first, _ = crud.add_prompt(session, text="An early question")
        early = crud.get_or_create_generation(
            session, prompt_id=first.id, text="early answer", model_version_id=base.id
        )
        stale, _ = crud.add_judgment(
            session,
            kind="rating",
            user_id=users["careful1"].id,
            prompt_id=first.id,
            generation_ids=[early.id],
            payload={"score": 1},
            client_key="stale",
        )
        stale.created_at = OLD
        key = 0
        for number in range(30):
            prompt, _ = crud.add_prompt(session, text=f"Describe thing {number}")
            old = crud.get_or_create_generation(
                session, prompt_id=prompt.id, text=sentence(rng), model_version_id=base.id
            )
            new = crud.get_or_create_generation(
                session, prompt_id=prompt.id, text=sentence(rng) + " e", model_version_id=child.id
            )
            for annotator in annotators:
                left_first = rng.random() < 0.5
                left, right = (old, new) if left_first else (new, old)
                said = annotator.compare(left.text, right.text)
                winner = {"left": left, "right": right}.get(said)
                choice = "tie" if winner is None else ("a" if winner is old else "b")
                key += 1
                crud.add_judgment(
                    session,
                    kind="pairwise",
                    user_id=users[annotator.name].id,
                    prompt_id=prompt.id,
                    generation_ids=[old.id, new.id],
                    payload={"choice": choice},
                    shown_order=[left.id, right.id],
                    duration_ms=2000 + number,
                    client_key=f"p{key}",
                )
                key += 1
                score = annotator.rate(new.text, [old.text, new.text])
                crud.add_judgment(
                    session,
                    kind="rating",
                    user_id=users[annotator.name].id,
                    prompt_id=prompt.id,
                    generation_ids=[new.id],
                    payload={"score": score},
                    client_key=f"r{key}",
                )
            if number < 6:
                add_blind_vote(
                    session,
                    user_id=reviewer.id,
                    generation_a_id=old.id,
                    generation_b_id=new.id,
                    shown_order=[old.id, new.id],
                    choice="b" if number < 5 else "a",
                    client_key=f"b{number}",
                )
        commented, _ = crud.add_judgment(
            session,
            kind="rating",
            user_id=users["careful0"].id,
            prompt_id=prompt.id,
            generation_ids=[old.id],
            payload={"score": 2, "comment": SCRIPT},
            client_key="commented",
        )
        max_id = commented.id
        late, _ = crud.add_judgment(
            session,
            kind="correction",
            user_id=users["careful2"].id,
            prompt_id=prompt.id,
            generation_ids=[old.id],
            payload={"corrected": "fixed"},
            client_key="late",
        )
        round_ = Round(
            config_yaml="stages: [dpo]",
            status="succeeded",
            data_snapshot={"max_judgment_id": max_id},
            parent_version_id=base.id,
            output_version_id=child.id,
            metrics={"win_rate": 0.9, "kl_to_parent": 0.031, "gate": {"passed": True}},
        )
        session.add(round_)
        session.flush()
        return sqlite_url, round_.id


def annotator_row(text: str, name: str) -> str:
    """The annotator's row in the Markdown annotator table (the one with a weight and flags)."""
    section = text.split("## Annotators", 1)[1].split("\n## ", 1)[0]
    return next(line for line in section.splitlines() if line.startswith(f"| {name} |"))


def test_markdown_report_shows_flags_alpha_leaderboard_alarms_and_plots(judged_store, tmp_path):
    url, _ = judged_store
    out = write_report(tmp_path / "reports" / "quality.md", url=url, n_bootstrap=50)
    text = out.read_text(encoding="utf-8")

    assert "Flagged: noisy." in text
    assert "low_agreement" in annotator_row(text, "noisy")
    assert annotator_row(text, "careful0").endswith("| – |")
    with session_scope(url) as session:
        agreement = dataset_agreement(session)
    assert 0.2 < agreement["pairwise"]["alpha"] < 0.95
    assert f"| pairwise | {agreement['pairwise']['alpha']:.3f} | nominal |" in text
    assert f"| rating | {agreement['rating']['alpha']:.3f} | ordinal |" in text

    assert "from 6 decisive blind votes" in text
    assert "r1-&lt;b&gt;dpo" in text and "<b>" not in text
    assert "ALARM reward_without_human_gain on r1-&lt;b&gt;dpo: reward-model win-rate 0.90 over base" in text
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt;" in text and "<script>" not in text

    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(images) == ["quality-annotators.png", "quality-leaderboard.png", "quality-timeline.png"]
    for name in images:
        assert (out.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, *images])


def test_html_report_for_a_round_escapes_text_and_lists_round_metrics(judged_store, tmp_path, capsys):
    url, round_id = judged_store
    out = tmp_path / "round.html"
    assert main(["report", "--round", str(round_id), "--out", str(out), "--db", url]) == 0
    assert str(out) in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")

    assert "<script>" not in text and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in text
    assert "<td>r1-&lt;b&gt;dpo</td>" in text and "<b>" not in text
    assert f"Round {round_id} metrics" in text
    assert "<td>kl_to_parent</td><td>0.031</td>" in text and "<td>gate.passed</td><td>True</td>" in text
    assert "<td>noisy</td>" in text
    with session_scope(url) as session:
        late = session.exec(select(Judgment).where(Judgment.client_key == "late")).one()
        assert late.id > session.get(Round, round_id).data_snapshot["max_judgment_id"]
    assert "correction" in text and re.search(r"<td>careful2</td><td>30</td><td>30</td><td>0</td>", text)
    for name in ("round-timeline.png", "round-leaderboard.png", "round-annotators.png"):
        assert f'src="{name}"' in text and (tmp_path / name).stat().st_size > 1000


@pytest.mark.slow  # six reports with plots
def test_date_window_and_bad_arguments(judged_store, tmp_path, capsys):
    url, _ = judged_store
    out = tmp_path / "window.md"
    since = (OLD + timedelta(days=1)).date().isoformat()
    assert main(["report", "--since", since, "--out", str(out), "--db", url]) == 0
    in_window = out.read_text(encoding="utf-8")
    assert main(["report", "--out", str(out), "--db", url]) == 0
    everything = out.read_text(encoding="utf-8")
    assert re.search(r"\| careful1 \| 30 \| 30 \|", in_window)
    assert re.search(r"\| careful1 \| 31 \| 30 \|", everything)

    assert main(["report", "--until", since, "--out", str(out), "--db", url]) == 0
    assert "1 judgment(s): 1 rating." in out.read_text(encoding="utf-8")

    assert main(["report", "--out", str(tmp_path / "r.pdf"), "--db", url]) == 2
    assert "--out:" in capsys.readouterr().err
    assert main(["report", "--since", "yesterday", "--out", str(out), "--db", url]) == 2
    assert "--since: 'yesterday' is not a date" in capsys.readouterr().err
    assert main(["report", "--round", "999", "--out", str(out), "--db", url]) == 2
    assert "round: no round with id 999" in capsys.readouterr().err
