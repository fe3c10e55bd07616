"""After a version goes live: do humans agree with the reward model? Time series per version, and two alarms.

Human signals, from judgments on each version's stored generations:
- ratings: scores of rating judgments on the version's responses;
- win-rate: pairwise judgments where the version's response faced another version's; a tie or
  "both bad" counts half. Imported (version-less) responses are not any version's.
Both are bucketed by day of the judgment, or by every N of the version's judgments.

Round metrics read from ``ModelVersion.metrics`` (written by rlhf/round.py via
rlhf/evaluation.compare_policies, all measured against the parent on held-out prompts):
``win_rate`` (reward-model win-rate), ``mean_reward`` / ``parent_mean_reward`` (reward-model
score means), ``mean_length`` / ``parent_mean_length`` (sampled completion tokens).

Alarms:
- ``reward_without_human_gain``: the reward-model win-rate over the parent is at least
  ``0.5 + reward_margin`` while humans do not find the version better: neither its ratings beat the
  parent's (one-sided Mann–Whitney U) nor it wins head-to-head against the parent (one-sided
  binomial test on decisive votes) at ``significance``. Needs ``min_human`` judgments of some kind.
- ``length_growth``: the version's stored responses are on average more than ``length_ratio``
  times as long (characters) as the parent's; without stored responses on both sides, the
  round's sampled ``mean_length`` / ``parent_mean_length`` are used instead.

Blind A/B votes (``BlindVote``, the Review tab's) are counted beside them and plotted at the times they
were cast: they are what the Leaderboard is fitted on, and are kept apart from the judgments above.

Live periods come from the store's record of live changes (``LiveChange``, written by
``rlhf.models.registry.set_live``): the plot shades them, so a dip can be read against what was being served.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from scipy import stats
from sqlalchemy import func
from sqlmodel import Session, col, select

from rlhf.models.registry import live_periods
from storage.models import BlindVote, Generation, Judgment, JudgmentKind, ModelVersion, aware

REWARD_ALARM = "reward_without_human_gain"
LENGTH_ALARM = "length_growth"


@dataclass(frozen=True)
class MonitorThresholds:
    reward_margin: float = 0.1
    significance: float = 0.05
    min_human: int = 5
    length_ratio: float = 1.3


DEFAULT_THRESHOLDS = MonitorThresholds()


@dataclass
class Bucket:
    start: datetime  # the day, or the first judgment of a by-count bucket
    ratings: int
    rating_mean: float | None
    comparisons: int
    win_rate: float | None


@dataclass
class VersionSeries:
    version_id: int
    name: str
    parent_id: int | None
    parent_name: str | None
    is_live: bool
    generations: int
    mean_length: float | None  # characters, over the version's stored responses
    scores: list[int]  # every human rating of its responses
    comparisons: int  # pairwise judgments against another version
    win_rate: float | None
    vs_parent: dict[str, int]  # head-to-head with the parent: {"wins", "losses", "even"}
    reward_win_rate: float | None  # metrics["win_rate"]
    mean_reward: float | None  # metrics["mean_reward"]
    parent_mean_reward: float | None  # metrics["parent_mean_reward"]
    buckets: list[Bucket] = field(default_factory=list)
    live_periods: list[tuple[datetime, datetime | None]] = field(default_factory=list)  # end None: live now

    def live_text(self) -> str:
        return "; ".join(
            f"{start:%Y-%m-%d %H:%M} → {'now' if end is None else f'{end:%Y-%m-%d %H:%M}'}"
            for start, end in self.live_periods
        )

    @property
    def rating_mean(self) -> float | None:
        return float(np.mean(self.scores)) if self.scores else None


@dataclass
class Alarm:
    kind: str
    version: str
    message: str
    details: dict[str, Any]


@dataclass
class Signals:
    """When each human signal arrived: judgments of versioned responses, and blind A/B votes."""

    judgments: list[datetime] = field(default_factory=list)
    blind_votes: list[datetime] = field(default_factory=list)


@dataclass
class Monitoring:
    series: list[VersionSeries]
    alarms: list[Alarm]
    bucket: str
    signals: Signals = field(default_factory=Signals)

    def alarms_for(self, version: str) -> list[str]:
        return [alarm.kind for alarm in self.alarms if alarm.version == version]


# --- reading the store ----------------------------------------------------------------


@dataclass
class _Events:
    """Per version: (time, kind, value) for each human signal; rating value = score, pairwise value = 1/0.5/0."""

    by_version: dict[int, list[tuple[datetime, str, float]]]
    vs: dict[tuple[int, int], list[float]]  # (version, opponent version) → outcomes for version
    times: list[datetime]  # every judgment counted above, once


def _read_events(session: Session, owner: dict[int, int], since: datetime | None, until: datetime | None) -> _Events:
    """Rating and pairwise judgments in the window, in one query."""
    query = (
        select(Judgment.kind, Judgment.generation_ids, Judgment.payload, Judgment.created_at)
        .where(col(Judgment.kind).in_([JudgmentKind.rating.value, JudgmentKind.pairwise.value]))
        .order_by(col(Judgment.created_at), col(Judgment.id))
    )
    if since is not None:
        query = query.where(col(Judgment.created_at) >= aware(since))
    if until is not None:
        query = query.where(col(Judgment.created_at) < aware(until))
    by_version: dict[int, list] = defaultdict(list)
    vs: dict[tuple[int, int], list[float]] = defaultdict(list)
    times: list[datetime] = []
    for kind, generation_ids, payload, created_at in session.exec(query):
        created_at = aware(created_at)
        if kind == JudgmentKind.rating.value:
            version = owner.get(generation_ids[0])
            if version is not None:
                by_version[version].append((created_at, kind, float(payload["score"])))
                times.append(created_at)
            continue
        first, second = (owner.get(g) for g in generation_ids)
        if first is None or second is None or first == second:
            continue
        choice: Any = payload.get("choice")
        outcome = {"a": 1.0, "b": 0.0}.get(choice, 0.5)
        by_version[first].append((created_at, kind, outcome))
        by_version[second].append((created_at, kind, 1.0 - outcome))
        vs[(first, second)].append(outcome)
        vs[(second, first)].append(1.0 - outcome)
        times.append(created_at)
    return _Events(by_version=by_version, vs=vs, times=times)


def _blind_vote_times(session: Session, since: datetime | None, until: datetime | None) -> list[datetime]:
    query = select(BlindVote.created_at).order_by(col(BlindVote.created_at))
    if since is not None:
        query = query.where(col(BlindVote.created_at) >= aware(since))
    if until is not None:
        query = query.where(col(BlindVote.created_at) < aware(until))
    return [aware(t) for t in session.exec(query)]


def _buckets(events: list[tuple[datetime, str, float]], bucket: str | int) -> list[Bucket]:
    groups: dict[Any, list] = defaultdict(list)
    for index, event in enumerate(events):
        key = event[0].date() if bucket == "day" else index // int(bucket)
        groups[key].append(event)
    out = []
    for key, members in groups.items():
        scores = [value for _, kind, value in members if kind == JudgmentKind.rating.value]
        outcomes = [value for _, kind, value in members if kind == JudgmentKind.pairwise.value]
        start = datetime(key.year, key.month, key.day, tzinfo=UTC) if bucket == "day" else members[0][0]
        out.append(
            Bucket(
                start=start,
                ratings=len(scores),
                rating_mean=float(np.mean(scores)) if scores else None,
                comparisons=len(outcomes),
                win_rate=float(np.mean(outcomes)) if outcomes else None,
            )
        )
    return out


def _number(metrics: dict[str, Any], key: str) -> float | None:
    value = (metrics or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --- the series and the alarms ----------------------------------------------------------


def monitor(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: str | int = "day",
    thresholds: MonitorThresholds = DEFAULT_THRESHOLDS,
) -> Monitoring:
    """Human ratings and win-rates per version over time, round metrics beside them, and the alarms.

    Covers every version that is live or has judged responses in the window. `bucket` is "day" or a
    number of judgments per bucket.
    """
    if bucket != "day" and (isinstance(bucket, bool) or not isinstance(bucket, int) or bucket < 1):
        raise ValueError(f"bucket: {bucket!r} is neither 'day' nor a positive number of judgments")
    versions = {cast(int, v.id): v for v in session.exec(select(ModelVersion).order_by(col(ModelVersion.id)))}
    owner: dict[int, int] = {}
    length: dict[int, list[int]] = defaultdict(list)
    for generation_id, version_id, chars in session.exec(
        select(Generation.id, Generation.model_version_id, func.length(Generation.text)).where(
            col(Generation.model_version_id).is_not(None)
        )
    ):
        assert generation_id is not None and version_id is not None  # stored rows, versions only
        owner[generation_id] = version_id
        length[version_id].append(chars)
    events = _read_events(session, owner, since, until)
    periods = _live_periods(session, since, until)

    series = []
    for version_id, version in versions.items():
        mine = events.by_version.get(version_id, [])
        if not mine and not version.is_live and version_id not in periods:
            continue
        parent = versions.get(version.parent_id) if version.parent_id is not None else None
        outcomes = [value for _, kind, value in mine if kind == JudgmentKind.pairwise.value]
        head_to_head = events.vs.get((version_id, version.parent_id), []) if version.parent_id is not None else []
        series.append(
            VersionSeries(
                version_id=version_id,
                name=version.name,
                parent_id=version.parent_id,
                parent_name=parent.name if parent else None,
                is_live=version.is_live,
                generations=len(length[version_id]),
                mean_length=float(np.mean(length[version_id])) if length[version_id] else None,
                scores=[int(value) for _, kind, value in mine if kind == JudgmentKind.rating.value],
                comparisons=len(outcomes),
                win_rate=float(np.mean(outcomes)) if outcomes else None,
                vs_parent={
                    "wins": sum(o == 1.0 for o in head_to_head),
                    "losses": sum(o == 0.0 for o in head_to_head),
                    "even": sum(o == 0.5 for o in head_to_head),
                },
                reward_win_rate=_number(version.metrics, "win_rate"),
                mean_reward=_number(version.metrics, "mean_reward"),
                parent_mean_reward=_number(version.metrics, "parent_mean_reward"),
                buckets=_buckets(mine, bucket),
                live_periods=periods.get(version_id, []),
            )
        )

    by_id = {row.version_id: row for row in series}
    parent_scores = _parent_scores(versions, by_id, events)
    alarms = []
    for row in series:
        version = versions[row.version_id]
        if version.parent_id is None:
            continue
        alarms += _reward_alarm(row, parent_scores.get(version.parent_id, []), thresholds)
        alarms += _length_alarm(row, version, length.get(version.parent_id, []), thresholds)
    signals = Signals(judgments=events.times, blind_votes=_blind_vote_times(session, since, until))
    return Monitoring(series=series, alarms=alarms, bucket=str(bucket), signals=signals)


def _live_periods(
    session: Session, since: datetime | None, until: datetime | None
) -> dict[int, list[tuple[datetime, datetime | None]]]:
    """Each version's live periods that overlap the window, clipped to it."""
    out: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for period in live_periods(session):
        start, end = aware(period.start), period.end and aware(period.end)
        if (until is not None and start > aware(until)) or (
            since is not None and end is not None and end < aware(since)
        ):
            continue
        if since is not None:
            start = max(start, aware(since))
        if until is not None and (end is None or end > aware(until)):
            end = aware(until)
        out[period.version_id].append((start, end))
    return out


def _parent_scores(
    versions: dict[int, ModelVersion], by_id: dict[int, VersionSeries], events: _Events
) -> dict[int, list[float]]:
    """Ratings of each parent's responses, including parents not otherwise in the series."""
    out = {}
    for version in versions.values():
        parent_id = version.parent_id
        if parent_id is None or parent_id in out:
            continue
        if parent_id in by_id:
            out[parent_id] = [float(s) for s in by_id[parent_id].scores]
        else:
            out[parent_id] = [
                value for _, kind, value in events.by_version.get(parent_id, []) if kind == JudgmentKind.rating.value
            ]
    return out


def _reward_alarm(row: VersionSeries, parent_scores: list[float], t: MonitorThresholds) -> list[Alarm]:
    if row.reward_win_rate is None or row.reward_win_rate < 0.5 + t.reward_margin:
        return []
    rating_p = None
    if len(row.scores) >= t.min_human and len(parent_scores) >= t.min_human:
        rating_p = float(stats.mannwhitneyu(row.scores, parent_scores, alternative="greater").pvalue)
    wins, losses = row.vs_parent["wins"], row.vs_parent["losses"]
    pairwise_p = None
    if wins + losses >= t.min_human:
        pairwise_p = float(stats.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)
    tested = [p for p in (rating_p, pairwise_p) if p is not None]
    if not tested or min(tested) < t.significance:
        return []
    parent_mean = float(np.mean(parent_scores)) if parent_scores else None
    return [
        Alarm(
            kind=REWARD_ALARM,
            version=row.name,
            message=(
                f"reward-model win-rate {row.reward_win_rate:.2f} over {row.parent_name}, but humans do not "
                f"rate it better (ratings p={_fmt(rating_p)}, head-to-head p={_fmt(pairwise_p)})"
            ),
            details={
                "reward_win_rate": row.reward_win_rate,
                "rating_mean": row.rating_mean,
                "parent_rating_mean": parent_mean,
                "rating_p": rating_p,
                "head_to_head_p": pairwise_p,
                "head_to_head": dict(row.vs_parent),
            },
        )
    ]


def _length_alarm(
    row: VersionSeries, version: ModelVersion, parent_lengths: list[int], t: MonitorThresholds
) -> list[Alarm]:
    mine: float | None
    theirs: float | None
    if row.mean_length is not None and parent_lengths:
        mine, theirs, unit = row.mean_length, float(np.mean(parent_lengths)), "characters, stored responses"
    else:
        mine, theirs = _number(version.metrics, "mean_length"), _number(version.metrics, "parent_mean_length")
        unit = "tokens, round evaluation samples"
    if mine is None or not theirs or mine <= t.length_ratio * theirs:
        return []
    return [
        Alarm(
            kind=LENGTH_ALARM,
            version=row.name,
            message=(
                f"responses are {mine / theirs:.2f}× as long as {row.parent_name}'s "
                f"({mine:.0f} vs {theirs:.0f} {unit}; alarm above {t.length_ratio}×)"
            ),
            details={"mean_length": mine, "parent_mean_length": theirs, "ratio": mine / theirs, "unit": unit},
        )
    ]


def plain_label(text: str) -> str:
    """Text matplotlib shows as is: a `$` would otherwise start mathtext (and a bad formula fails the draw)."""
    return text.replace("$", r"\$")


def _fmt(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3f}"


# --- the figure -------------------------------------------------------------------------


def plot_version_timeline(monitoring: Monitoring | list[VersionSeries]):
    """Mean human rating and human win-rate per bucket, one line per version (a matplotlib Figure, Agg)."""
    from matplotlib import rcParams
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = monitoring.series if isinstance(monitoring, Monitoring) else monitoring
    signals = monitoring.signals if isinstance(monitoring, Monitoring) else Signals()
    figure = Figure(figsize=(8, 7.5), layout="constrained")
    FigureCanvasAgg(figure)
    ratings, wins, counts = figure.subplots(3, 1, sharex=True)
    palette = rcParams["axes.prop_cycle"].by_key()["color"]
    colours = (palette[i % len(palette)] for i in itertools.count())
    judged = [b.start for row in series for b in row.buckets]
    for row in series:
        colour = next(colours)
        rated = [b for b in row.buckets if b.rating_mean is not None]
        compared = [b for b in row.buckets if b.win_rate is not None]
        label = plain_label(row.name) + (" (live)" if row.is_live else "")
        if rated:
            ratings.plot(
                [b.start for b in rated], [b.rating_mean for b in rated], marker="o", label=label, color=colour
            )
        if compared:
            wins.plot(
                [b.start for b in compared], [b.win_rate for b in compared], marker="o", label=label, color=colour
            )
        for start, end in row.live_periods:
            if end is None:
                end = max([start, *judged, *signals.judgments, *signals.blind_votes])
            if end > start:
                for axis in (ratings, wins, counts):
                    axis.axvspan(start, end, color=colour, alpha=0.12, linewidth=0)
    ratings.set_ylabel("mean human rating")
    ratings.set_ylim(0.8, 5.2)
    wins.set_ylabel("human win-rate")
    wins.set_ylim(-0.05, 1.05)
    wins.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    for times, label in (
        (signals.judgments, f"judgments of versioned responses ({len(signals.judgments)})"),
        (signals.blind_votes, f"blind A/B votes ({len(signals.blind_votes)})"),
    ):
        if times:
            counts.step(times, range(1, len(times) + 1), where="post", marker=".", label=label)
    counts.set_ylabel("human signals so far")
    counts.set_xlabel("time (UTC)")
    for axis in (ratings, wins, counts):
        if axis.get_legend_handles_labels()[0]:
            axis.legend(loc="best", fontsize="small")
    if not any(row.buckets for row in series):
        ratings.text(
            0.5,
            0.5,
            f"no ratings or pairwise judgments on versioned responses yet ({len(signals.blind_votes)} blind votes)",
            ha="center",
            transform=ratings.transAxes,
        )
    figure.autofmt_xdate()
    return figure
