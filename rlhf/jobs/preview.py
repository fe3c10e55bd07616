"""What a round of a config would take if started now: its parent, the rows each export would give, a duration.

The counts come from the same exports the round takes (`RoundConfig.export_options`, storage.export), built
in memory without writing; the duration from the config's past rounds, else a rough per-row figure.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from rlhf.models import registry
from rlhf.training.config import RoundConfig, load_round_config
from storage.db import read_scope
from storage.export import build_export, snapshot
from storage.models import ModelVersion, Round, RoundStatus

ROUGH_SECONDS_PER_ROW = 0.5
"""Seconds per training row per stage, used only before any round of the config has succeeded. A rough
figure for the tiny model on CPU (its rounds take tens of seconds for tens of rows); a real model on a GPU
is slower per row, so the first round of such a config is an underestimate and later ones use its time."""
EVALUATION_SECONDS = 10.0
"""The rough fixed part: loading models, sampling the held-out prompts, registering the version."""
ROW_NAMES = {"preference": "pairs", "unpaired": "KTO rows", "sft": "SFT rows", "prompt": "prompts"}


@dataclass
class RoundPreview:
    name: str
    description: str | None
    parent: str | None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # kind → {"train": n, "test": n}
    estimate_s: float | None = None
    estimate_basis: str = ""
    problems: list[str] = field(default_factory=list)  # why starting it now would be refused or fail

    def summary(self) -> str:
        """A few plain-text lines for the Rounds tab."""
        lines = [self.name + (f": {self.description}" if self.description else "")]
        lines.append(f"parent: {self.parent or '-'}")
        if self.counts:
            lines.append(
                "data now: "
                + ", ".join(
                    f"{c['train']} train / {c['test']} test {ROW_NAMES.get(kind, kind)}"
                    for kind, c in self.counts.items()
                )
            )
        if self.estimate_s is not None:
            lines.append(f"estimated time: about {_duration(self.estimate_s)} ({self.estimate_basis})")
        lines += [f"cannot start now: {problem}" for problem in self.problems]
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _parent(session: Session, config: RoundConfig) -> ModelVersion | None:
    if config.parent:
        return registry.get_version(session, name=config.parent)
    return registry.live_version(session)


def past_durations(session: Session, config_path: str) -> list[float]:
    """Seconds from start to finish of each succeeded round of `config_path`."""
    rows = session.exec(
        select(Round).where(Round.config_path == config_path, Round.status == RoundStatus.succeeded.value)
    ).all()
    return [(r.finished_at - r.started_at).total_seconds() for r in rows if r.started_at and r.finished_at]


def preview_round(config_path: str, url: str | None = None) -> RoundPreview:
    """The preview of a round of `config_path` on the store at `url` as it is now (nothing is written)."""
    from rlhf.quality.analytics import export_quality

    config = load_round_config(config_path)
    with read_scope(url) as session:
        parent = _parent(session, config)
        preview = RoundPreview(name=config.name, description=config.description, parent=parent.name if parent else None)
        if parent is None:
            preview.problems.append(
                f"parent {config.parent!r} is not registered" if config.parent else "no version is live"
            )
        else:
            busy = session.exec(
                select(Round)
                .where(Round.parent_version_id == parent.id, col(Round.status).in_(("queued", "running")))
                .order_by(col(Round.id))
            ).first()
            if busy is not None:
                preview.problems.append(f"round {busy.id} is {busy.status} on parent {parent.name!r}")
        max_id = snapshot(session)["max_judgment_id"]
        quality = export_quality(session, config.data.aggregation, max_id)
        for kind in config.data_kinds:
            options = config.export_options(kind, parent.round_id if parent else None, max_id, quality)
            preview.counts[kind] = build_export(session, options)[1]["counts"]
        past = past_durations(session, str(config_path))
    policy_kind = config.data_kind(config.policy_stage)
    if not preview.counts.get(policy_kind, {}).get("train"):
        preview.problems.append(f"no {policy_kind} training rows yet")
    if past:
        preview.estimate_s = statistics.median(past)
        preview.estimate_basis = f"median of {len(past)} past round{'s' if len(past) > 1 else ''} of this config"
    else:
        rows = sum(preview.counts.get(config.data_kind(stage), {}).get("train", 0) for stage in config.stages)
        preview.estimate_s = EVALUATION_SECONDS + ROUGH_SECONDS_PER_ROW * rows
        preview.estimate_basis = f"rough guess, {ROUGH_SECONDS_PER_ROW} s per training row per stage; no past round"
    return preview


def config_label(config_path: str | Path) -> str:
    """`file.yaml: description` for the config dropdown (the file name alone when it has none or is broken)."""
    name = Path(config_path).name
    try:
        description = load_round_config(config_path).description
    except Exception:  # a broken file is still offered; starting it reports the problem with its key
        return f"{name} (does not load)"
    return f"{name}: {description}" if description else name
