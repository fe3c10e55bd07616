"""Monitoring: per-version human series from a real store, and the reward and length alarms."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.figure import Figure

from rlhf.models.registry import register_version
from rlhf.quality.monitoring import LENGTH_ALARM, REWARD_ALARM, monitor, plot_version_timeline
from storage import crud
from storage.db import session_scope

DAY1 = datetime(2026, 11, 1, 9, tzinfo=UTC)
PARENT_SCORES = [2, 3, 3, 2, 3, 3, 2, 3, 3, 2, 3, 3]


class Store:
    """A base version and children, each answering the same prompts, rated by a few annotators."""

    def __init__(self, session):
        self.session = session
        self.raters = [crud.create_user(session, username=f"rater{i}") for i in range(3)]
        self.prompts = [crud.add_prompt(session, text=f"question {i}")[0] for i in range(len(PARENT_SCORES))]
        self.keys = itertools.count()

    def version(self, name, *, parent=None, metrics=None, live=False):
        return register_version(
            self.session,
            name=name,
            base_model="tiny",
            artifact_path=f"/models/{name}",
            parent_id=parent.id if parent else None,
            kind="base" if parent is None else "dpo",
            metrics=metrics or {},
            make_live=live,
        )

    def answers(self, version, text):
        return [
            crud.get_or_create_generation(
                self.session, prompt_id=p.id, text=f"{text} {p.id}", model_version_id=version.id
            )
            for p in self.prompts
        ]

    def judge(self, kind, generations, payload, when=DAY1):
        judgment, _ = crud.add_judgment(
            self.session,
            kind=kind,
            user_id=self.raters[next(self.keys) % 3].id,
            prompt_id=generations[0].prompt_id,
            generation_ids=[g.id for g in generations],
            payload=payload,
            client_key=f"k{next(self.keys)}",
        )
        judgment.created_at = when

    def rate(self, generations, scores, when=DAY1):
        for generation, score in zip(generations, scores):
            self.judge("rating", [generation], {"score": score}, when)


@pytest.fixture
def store(sqlite_url):
    with session_scope(sqlite_url) as session:
        yield Store(session)


def test_alarms_separate_longer_reward_hacked_and_better_versions(store):
    base = store.version("base")
    base_answers = store.answers(base, "a plain answer")
    store.rate(base_answers, PARENT_SCORES)

    longer = store.version("longer", parent=base)
    store.rate(store.answers(longer, "a plain answer a plain answer a plain answer"), PARENT_SCORES)

    hacked = store.version(
        "hacked", parent=base, metrics={"win_rate": 0.85, "mean_reward": 1.4, "parent_mean_reward": 0.2}
    )
    store.rate(store.answers(hacked, "a plain answr"), list(reversed(PARENT_SCORES)))

    better = store.version("better", parent=base, metrics={"win_rate": 0.85}, live=True)
    better_answers = store.answers(better, "a finer answer")
    store.rate(better_answers, [5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 5, 4])
    for mine, theirs in zip(better_answers, base_answers):
        store.judge("pairwise", [theirs, mine], {"choice": "b"})

    result = monitor(store.session)
    assert result.alarms_for("longer") == [LENGTH_ALARM]
    assert result.alarms_for("hacked") == [REWARD_ALARM]
    assert result.alarms_for("better") == []
    assert result.alarms_for("base") == []

    rows = {row.name: row for row in result.series}
    assert rows["better"].is_live and rows["better"].vs_parent == {"wins": 12, "losses": 0, "even": 0}
    assert rows["better"].win_rate == 1.0 and rows["base"].win_rate == 0.0
    assert rows["hacked"].rating_mean == pytest.approx(rows["base"].rating_mean)
    assert rows["hacked"].mean_reward == 1.4 and rows["hacked"].reward_win_rate == 0.85
    alarm = next(a for a in result.alarms if a.kind == LENGTH_ALARM)
    assert alarm.details["ratio"] > 2 and "longer" not in alarm.message.split("as long as")[1]


def test_reward_alarm_needs_human_evidence_and_respects_the_margin(store):
    base = store.version("base")
    store.rate(store.answers(base, "x"), PARENT_SCORES)
    unjudged = store.version("unjudged", parent=base, metrics={"win_rate": 0.95}, live=True)
    store.answers(unjudged, "y")
    modest = store.version("modest", parent=base, metrics={"win_rate": 0.55})
    store.rate(store.answers(modest, "z"), PARENT_SCORES)

    result = monitor(store.session)
    assert result.alarms == []
    assert {row.name for row in result.series} == {"base", "unjudged", "modest"}


def test_length_alarm_falls_back_to_round_metrics_and_honours_the_ratio(store):
    base = store.version("base")
    child = store.version("child", parent=base, live=True, metrics={"mean_length": 30.0, "parent_mean_length": 20.0})
    assert monitor(store.session).alarms_for("child") == [LENGTH_ALARM]
    from rlhf.quality.monitoring import MonitorThresholds

    assert monitor(store.session, thresholds=MonitorThresholds(length_ratio=1.6)).alarms_for(child.name) == []


def test_series_are_bucketed_by_day_or_by_count_and_windowed(store):
    base = store.version("base", live=True)
    answers = store.answers(base, "r")
    store.rate(answers[:4], [1, 1, 1, 1], when=DAY1)
    store.rate(answers[4:10], [5, 5, 5, 5, 5, 5], when=DAY1 + timedelta(days=1, hours=3))

    by_day = monitor(store.session).series[0].buckets
    assert [(b.start.date().isoformat(), b.ratings, b.rating_mean) for b in by_day] == [
        ("2026-11-01", 4, 1.0),
        ("2026-11-02", 6, 5.0),
    ]
    by_count = monitor(store.session, bucket=5).series[0].buckets
    assert [(b.ratings, b.rating_mean) for b in by_count] == [(5, 1.8), (5, 5.0)]
    later = monitor(store.session, since=DAY1 + timedelta(days=1)).series[0]
    assert later.scores == [5] * 6
    with pytest.raises(ValueError, match="bucket: 0"):
        monitor(store.session, bucket=0)

    figure = plot_version_timeline(monitor(store.session))
    assert isinstance(figure, Figure)
    rating_axis = figure.axes[0]
    assert [list(line.get_ydata()) for line in rating_axis.get_lines()] == [[1.0, 5.0]]


def test_timeline_draws_names_that_look_like_formulas(store, tmp_path):
    odd = store.version(r"v$\frac{$", live=True)
    store.rate(store.answers(odd, "r"), [3, 4])
    figure = plot_version_timeline(monitor(store.session))
    figure.savefig(tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert figure.axes[0].get_legend().get_texts()[0].get_text() == r"v\$\frac{\$ (live)"


def _date_last_live_change(session, when):
    from sqlmodel import select

    from storage.models import LiveChange

    change = session.exec(select(LiveChange).order_by(LiveChange.id.desc())).first()
    change.changed_at = when
    session.flush()


def test_live_periods_are_recorded_and_shaded_on_the_timeline(store):
    from matplotlib.patches import Polygon, Rectangle

    from rlhf.models.registry import live_periods, set_live

    base = store.version("base", live=True)
    _date_last_live_change(store.session, DAY1)
    child = store.version("child", parent=base)
    set_live(store.session, name="child", by="alice")
    _date_last_live_change(store.session, DAY1 + timedelta(days=1))
    set_live(store.session, name="base", by="alice (roll back)")
    _date_last_live_change(store.session, DAY1 + timedelta(days=2))
    set_live(store.session, name="base", by="nobody")  # already live: not a change
    store.rate(store.answers(base, "r"), PARENT_SCORES, when=DAY1 + timedelta(days=3))

    periods = [(p.version_id, p.start, p.end, p.set_by) for p in live_periods(store.session)]
    assert [(v, s.replace(tzinfo=UTC), e and e.replace(tzinfo=UTC), b) for v, s, e, b in periods] == [
        (base.id, DAY1, DAY1 + timedelta(days=1), "registered live"),
        (child.id, DAY1 + timedelta(days=1), DAY1 + timedelta(days=2), "alice"),
        (base.id, DAY1 + timedelta(days=2), None, "alice (roll back)"),
    ]

    series = {row.name: row for row in monitor(store.session).series}
    assert "child" in series  # no judgments, but it was live
    assert series["child"].live_text() == "2026-11-02 09:00 → 2026-11-03 09:00"
    assert series["base"].live_text().endswith("2026-11-03 09:00 → now")
    windowed = {row.name: row for row in monitor(store.session, since=DAY1 + timedelta(days=2, hours=1)).series}
    assert "child" not in windowed
    assert windowed["base"].live_periods[0][0] == DAY1 + timedelta(days=2, hours=1)

    figure = plot_version_timeline(monitor(store.session))
    spans = [patch for patch in figure.axes[1].patches if isinstance(patch, (Polygon, Rectangle))]
    assert len(spans) == 3  # base twice (until the last judgment), child once
