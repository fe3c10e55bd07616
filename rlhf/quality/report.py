"""The feedback-quality report (`rlhf report`): one Markdown or HTML file, plots as PNGs beside it.

Sections: what data there is in the window, how much annotators agree (Krippendorff's alpha),
each annotator's quality and flags, the Bradley–Terry leaderboard from reviewers' blind votes,
the per-version monitoring series and alarms, and a round's metrics. The window is a round's data
snapshot (judgments up to its ``max_judgment_id``) or a date range; every piece of user or model
text is escaped. All files are written under temp names and renamed, the report last, so a
reader never sees a half-written report or one pointing at missing plots.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func
from sqlmodel import Session, col, select

from rlhf.quality.analytics import AnnotatorStats, annotator_report, bradley_terry, dataset_agreement
from rlhf.quality.monitoring import Monitoring, monitor, plain_label, plot_version_timeline
from storage.crud import StoreError
from storage.db import read_scope
from storage.files import save_atomically
from storage.markup import escape_markdown
from storage.models import Judgment, JudgmentKind, Prompt, Round, User, aware
from storage.review import blind_outcomes

MAX_COMMENTS = 20
COMMENT_CHARS = 400


# --- the document ---------------------------------------------------------------------------


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: Sequence[Sequence[Any]]


@dataclass
class Image:
    src: str
    alt: str


Block = Heading | Para | Bullets | Table | Image


def _md_text(value: Any) -> str:
    return escape_markdown(_cell(value))


def _md_cell(value: Any) -> str:
    return _md_text(value)


def render_markdown(title: str, blocks: list[Block]) -> str:
    lines = [f"# {_md_text(title)}", ""]
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + _md_text(block.text), ""]
        elif isinstance(block, Para):
            lines += [_md_text(block.text), ""]
        elif isinstance(block, Bullets):
            lines += [f"- {_md_text(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            lines.append("|" + "---|" * len(block.headers))
            lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Image):
            lines += [f"![{_md_text(block.alt)}]({block.src})", ""]
    return "\n".join(lines)


_STYLE = (
    "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%}"
)


def render_html(title: str, blocks: list[Block]) -> str:
    esc = lambda value: html.escape(_cell(value))  # noqa: E731
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            parts.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
            body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in block.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Image):
            parts.append(f'<p><img src="{esc(block.src)}" alt="{esc(block.alt)}"></p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3f}"
    return str(value)


# --- what goes in it -----------------------------------------------------------------------------


@dataclass
class Window:
    """Which judgments the report covers.

    The analytics take no end date, so `until` becomes an id bound: judgments before the first one
    created at or after `until` (ids grow with creation time, so this is the same set).
    """

    since: datetime | None = None
    until: datetime | None = None
    max_judgment_id: int | None = None
    round: Round | None = None

    def describe(self) -> str:
        if self.round is not None:
            bound = self.max_judgment_id if self.max_judgment_id is not None else "all (no snapshot taken)"
            return f"round {self.round.id} ({self.round.status}): judgments up to id {bound}"
        since = self.since.isoformat() if self.since else "the beginning"
        until = self.until.isoformat() if self.until else "now"
        return f"judgments from {since} until {until}"


@dataclass
class ReportData:
    window: Window
    by_kind: Counter
    by_annotator: dict[str, Counter]
    comments: list[tuple[str, str, str, str]]  # (when, annotator, prompt, comment)
    agreement: dict[str, dict[str, Any]]
    annotators: list[AnnotatorStats]
    leaderboard: dict[str, dict[str, float]]
    blind_votes: int
    monitoring: Monitoring
    round_metrics: dict[str, Any] = field(default_factory=dict)


def resolve_window(session: Session, *, round_id: int | None, since: datetime | None, until: datetime | None) -> Window:
    if round_id is not None:
        row = session.get(Round, round_id)
        if row is None:
            raise StoreError(f"round: no round with id {round_id} (see `rlhf round list`)")
        return Window(max_judgment_id=(row.data_snapshot or {}).get("max_judgment_id"), round=row)
    since, until = aware(since), aware(until)
    if since and until and since >= until:
        raise StoreError(f"--until: {until.isoformat()} is not after --since {since.isoformat()}")
    bound = None
    if until is not None:
        first_after = session.exec(select(func.min(Judgment.id)).where(col(Judgment.created_at) >= until)).one()
        if first_after is not None:
            bound = first_after - 1
    return Window(since=since, until=until, max_judgment_id=bound)


def _judgments_in(session: Session, window: Window) -> tuple[Counter, dict[str, Counter], list]:
    """Counts per kind and annotator, and the latest comments, from one query over the window."""
    query = (
        select(Judgment.kind, User.username, Judgment.payload, Judgment.created_at, Judgment.prompt_id)  # type: ignore[call-overload]  # over 4 columns
        .join(User, col(User.id) == Judgment.user_id)
        .order_by(col(Judgment.id).desc())
    )
    if window.since is not None:
        query = query.where(col(Judgment.created_at) >= window.since)
    if window.until is not None:
        query = query.where(col(Judgment.created_at) < window.until)
    if window.max_judgment_id is not None:
        query = query.where(col(Judgment.id) <= window.max_judgment_id)
    by_kind: Counter = Counter()
    by_annotator: dict[str, Counter] = {}
    comments: list[tuple[str, str, int, str]] = []
    for kind, username, payload, created_at, prompt_id in session.exec(query):
        by_kind[kind] += 1
        by_annotator.setdefault(username, Counter())[kind] += 1
        comment = (payload or {}).get("comment") or (payload or {}).get("reason")
        if comment and len(comments) < MAX_COMMENTS:
            comments.append((aware(created_at).strftime("%Y-%m-%d %H:%M"), username, prompt_id, _clip(comment)))
    prompts = dict(
        session.exec(select(Prompt.id, Prompt.text).where(col(Prompt.id).in_({c[2] for c in comments}))).all()
    )
    return by_kind, by_annotator, [(when, who, _clip(prompts[pid]), text) for when, who, pid, text in comments]


def _clip(text: str, limit: int = COMMENT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def collect(
    session: Session,
    *,
    round_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    n_bootstrap: int = 200,
) -> ReportData:
    window = resolve_window(session, round_id=round_id, since=since, until=until)
    by_kind, by_annotator, comments = _judgments_in(session, window)
    bounds: dict[str, Any] = {"since": window.since, "max_judgment_id": window.max_judgment_id}
    outcomes = blind_outcomes(session)
    return ReportData(
        window=window,
        by_kind=by_kind,
        by_annotator=by_annotator,
        comments=comments,
        agreement=dataset_agreement(session, **bounds),
        annotators=annotator_report(session, **bounds),
        leaderboard=bradley_terry(outcomes, n_bootstrap=n_bootstrap),
        blind_votes=len(outcomes),
        monitoring=monitor(session, since=window.since, until=window.until),
        round_metrics=dict(window.round.metrics or {}) if window.round is not None else {},
    )


# --- turning it into blocks --------------------------------------------------------------------------


def _flatten(metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += _flatten(value, name + ".")
        elif isinstance(value, (list, dict)):
            rows.append((name, json.dumps(value, default=str)))
        else:
            rows.append((name, value))
    return rows


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.0f}%"


def build_blocks(data: ReportData, plots: dict[str, str]) -> list[Block]:
    kinds = [k.value for k in JudgmentKind]
    blocks: list[Block] = [
        Para(f"Window: {data.window.describe()}. Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.")
    ]

    blocks += [
        Heading("Data"),
        Para(
            f"{sum(data.by_kind.values())} judgment(s): "
            + (", ".join(f"{data.by_kind[k]} {k}" for k in kinds if data.by_kind[k]) or "none")
            + "."
        ),
    ]
    if data.by_annotator:
        blocks.append(
            Table(
                ["annotator", *kinds, "total"],
                [
                    [name, *(counts[k] for k in kinds), sum(counts.values())]
                    for name, counts in sorted(data.by_annotator.items())
                ],
            )
        )

    blocks.append(Heading("Agreement"))
    blocks.append(
        Table(
            ["judgments", "Krippendorff's alpha", "level", "units with ≥2 annotators", "votes"],
            [
                [name, part["alpha"], part["level"], part["units"], part["judgments"]]
                for name, part in data.agreement.items()
            ],
        )
    )

    blocks.append(Heading("Annotators"))
    flagged = [row.username for row in data.annotators if row.flags]
    blocks.append(Para(f"Flagged: {', '.join(flagged)}." if flagged else "No annotator is flagged."))
    blocks.append(
        Table(
            [
                "annotator",
                "judgments",
                "median s",
                "consensus agreement",
                "rating agreement",
                "gold accuracy",
                "left picks (p)",
                "swap inconsistency",
                "weight",
                "flags",
            ],
            [
                [
                    row.username,
                    row.judgments,
                    None if row.median_ms is None else row.median_ms / 1000,
                    _with_n(_pct(row.agreement_with_consensus), row.consensus_votes),
                    _with_n(_pct(row.rating_agreement), row.rating_votes),
                    _with_n(_pct(row.gold_accuracy), row.gold_judgments),
                    None
                    if row.position_bias_rate is None
                    else f"{_pct(row.position_bias_rate)} (p={row.position_bias_p:.3g})",
                    _with_n(_pct(row.swap_inconsistency), row.swapped_pairs),
                    row.weight,
                    ", ".join(row.flags) or "–",
                ]
                for row in data.annotators
            ],
        )
    )
    if "annotators" in plots:
        blocks.append(Image(plots["annotators"], "agreement with consensus per annotator"))

    blocks.append(Heading("Leaderboard (blind votes)"))
    if data.leaderboard:
        ranked = sorted(data.leaderboard.items(), key=lambda item: -item[1]["strength"])
        blocks.append(
            Para(
                f"Bradley–Terry log-strengths from {data.blind_votes} decisive blind votes "
                "(all blind votes so far), 95% bootstrap intervals."
            )
        )
        blocks.append(
            Table(
                ["version", "strength", "95% CI", "win-rate", "votes"],
                [
                    [name, s["strength"], f"{s['ci_low']:.2f} … {s['ci_high']:.2f}", _pct(s["win_rate"]), s["n"]]
                    for name, s in ranked
                ],
            )
        )
        if "leaderboard" in plots:
            blocks.append(Image(plots["leaderboard"], "Bradley–Terry strengths with 95% intervals"))
    else:
        blocks.append(Para("No decisive blind votes yet."))

    blocks.append(Heading("Versions in use"))
    monitoring = data.monitoring
    if monitoring.alarms:
        blocks.append(
            Bullets([f"ALARM {alarm.kind} on {alarm.version}: {alarm.message}" for alarm in monitoring.alarms])
        )
    else:
        blocks.append(Para("No alarms."))
    blocks.append(
        Table(
            [
                "version",
                "parent",
                "live",
                "live periods (UTC)",
                "responses",
                "mean length (chars)",
                "ratings",
                "mean rating",
                "human win-rate (n)",
                "vs parent W/L/even",
                "reward-model win-rate",
                "mean reward",
            ],
            [
                [
                    row.name,
                    row.parent_name,
                    "yes" if row.is_live else "",
                    row.live_text(),
                    row.generations,
                    row.mean_length,
                    len(row.scores),
                    row.rating_mean,
                    _with_n(_pct(row.win_rate), row.comparisons),
                    "/".join(str(row.vs_parent[k]) for k in ("wins", "losses", "even")) if row.parent_name else None,
                    row.reward_win_rate,
                    row.mean_reward,
                ]
                for row in monitoring.series
            ],
        )
    )
    if "timeline" in plots:
        blocks.append(Image(plots["timeline"], f"human ratings and win-rates per version, by {monitoring.bucket}"))

    if data.window.round is not None:
        blocks.append(Heading(f"Round {data.window.round.id} metrics"))
        rows = _flatten(data.round_metrics)
        blocks.append(Table(["metric", "value"], rows) if rows else Para("The round recorded no metrics."))

    blocks.append(Heading("Annotator comments"))
    if data.comments:
        blocks.append(Table(["when", "annotator", "prompt", "comment"], [list(c) for c in data.comments]))
    else:
        blocks.append(Para("No comments in the window."))
    return blocks


def _with_n(text: str | None, n: int) -> str | None:
    return None if text is None else f"{text} ({n})"


# --- plots and files ------------------------------------------------------------------------------------


def _figures(data: ReportData) -> dict:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figures = {"timeline": plot_version_timeline(data.monitoring)}
    scored = [row for row in data.annotators if row.agreement_with_consensus is not None]
    if scored:
        figure = Figure(figsize=(7, 0.4 * len(scored) + 1.2), layout="constrained")
        FigureCanvasAgg(figure)
        axis = figure.subplots()
        axis.barh(
            [plain_label(row.username) for row in scored],
            [cast(float, row.agreement_with_consensus) for row in scored],
            color=["tab:red" if row.flags else "tab:blue" for row in scored],
        )
        axis.set_xlim(0, 1)
        axis.set_xlabel("agreement with the other annotators' consensus (red: flagged)")
        axis.invert_yaxis()
        figures["annotators"] = figure
    if data.leaderboard:
        ranked = sorted(data.leaderboard.items(), key=lambda item: item[1]["strength"])
        figure = Figure(figsize=(7, 0.4 * len(ranked) + 1.2), layout="constrained")
        FigureCanvasAgg(figure)
        axis = figure.subplots()
        strengths = [s["strength"] for _, s in ranked]
        errors = [[s["strength"] - s["ci_low"] for _, s in ranked], [s["ci_high"] - s["strength"] for _, s in ranked]]
        axis.errorbar(strengths, range(len(ranked)), xerr=errors, fmt="o", capsize=4)
        axis.set_yticks(range(len(ranked)), [plain_label(name) for name, _ in ranked])
        axis.set_xlabel("Bradley–Terry log-strength (95% CI)")
        figures["leaderboard"] = figure
    return figures


def write_report(
    out: str | Path,
    *,
    url: str | None = None,
    round_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    n_bootstrap: int = 200,
) -> Path:
    """Write the report to `out` (.md or .html) and its plots to `<stem>-<name>.png` beside it."""
    out = Path(out)
    fmt = {".md": "markdown", ".html": "html"}.get(out.suffix.lower())
    if fmt is None:
        raise StoreError(f"--out: {out} must end in .md or .html")
    with read_scope(url) as session:
        data = collect(session, round_id=round_id, since=since, until=until, n_bootstrap=n_bootstrap)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = _figures(data)
    plots = {name: f"{out.stem}-{name}.png" for name in figures}
    title = "Feedback quality report" + (f": round {round_id}" if round_id is not None else "")
    blocks = build_blocks(data, plots)
    text = render_html(title, blocks) if fmt == "html" else render_markdown(title, blocks)
    for name, figure in figures.items():
        save_atomically(
            out.parent / plots[name],
            partial(figure.savefig, dpi=100),
            folder=False,
            replace=True,
        )
    return save_atomically(out, lambda path: path.write_text(text, encoding="utf-8"), folder=False, replace=True)
