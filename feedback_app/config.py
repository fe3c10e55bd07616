"""The app's settings from configs/app.yaml, checked on load by pydantic models (storage.validation).

Sections: `server` (host, port), `queue` (overlap, mix, filling, quality checks
mixed in, active selection, task guidelines per kind, the criteria Compare asks about), `ui` (timer),
`rounds` (which round configs the Rounds tab offers).
The `generation:` section belongs to rlhf.inference.generation and is read there.
Every problem of a file is reported at once, as `FILE: section.key: problem (line N)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

import configs
from rlhf.quality.selection import SCORERS
from storage.crud import MAX_CRITERIA
from storage.guidelines import MAX_GUIDELINE_CHARS
from storage.priority import SELECTIONS
from storage.queue import ITEM_KINDS
from storage.validation import ConfigError, Strict, YamlFloat, read_yaml, validate

__all__ = ["AppConfig", "ConfigError", "load_app_config"]

DEFAULT_NAME = "app.yaml"


@dataclass(frozen=True)
class AppConfig:
    """The settings the app runs with: the file's values over these defaults (built directly in tests)."""

    host: str = "127.0.0.1"
    port: int = 7860
    session_hours: float = 12.0
    trusted_origins: tuple[str, ...] = ()
    max_request_mb: float = 4.0
    max_upload_mb: float = 50.0
    login_failures_per_user: int = 10
    login_failures_per_address: int = 50
    login_window_minutes: float = 15.0
    overlap: int = 2
    mix: dict[str, float] = field(
        default_factory=lambda: {"pairwise": 0.5, "rating": 0.2, "ranking": 0.2, "correction": 0.1}
    )
    agreement_share: float = 0.0
    """Share of new items queued for `agreement_overlap` annotators instead of `overlap` (agreement needs two)."""
    agreement_overlap: int = 2
    fill_prompts: int = 16
    low_water: int = 8
    fill_interval_s: float = 30.0
    gold_rate: float = 0.0
    """Quality checks are off unless configured (configs/app.yaml: 5% each)."""
    swap_rate: float = 0.0
    selection: str = "random"
    selection_scorer: str = "reward_model"
    guidelines: dict[str, str] = field(default_factory=dict)
    """Task guidelines (Markdown) per queue kind; an engineer's edit in the app wins (storage.guidelines)."""
    questions: tuple[str, ...] = ()
    """Criteria Compare asks about besides the overall choice (e.g. helpful, harmless); `rlhf export --criterion`."""
    timer_s: float = 2.0
    log_tail_lines: int = 20
    round_configs: str = "configs/round_*.yaml"
    generation: dict[str, Any] = field(default_factory=dict)


_DEFAULT = AppConfig()

Rate = Annotated[YamlFloat, Field(ge=0.0, le=1.0)]
Share = Annotated[YamlFloat, Field(ge=0.0)]
ItemKind = Literal[ITEM_KINDS]  # type: ignore[valid-type]  # built at run time from the tuple
Selection = Literal[SELECTIONS]  # type: ignore[valid-type]  # built at run time from the tuple
Origin = Annotated[str, Field(pattern=r"^https?://[^/\s]+$")]
Criterion = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
"""A name for the export's --criterion and the payload's criteria: a letter, then letters, digits or _."""
Scorer = Literal[SCORERS]  # type: ignore[valid-type]  # built at run time from the tuple


class Section(Strict):
    """A section of the file: values as YAML gives them (no "3" for 3, no true for 1)."""

    model_config = ConfigDict(strict=True)


class Server(Section):
    host: str = _DEFAULT.host
    port: int = Field(_DEFAULT.port, ge=0, le=65535)
    session_hours: YamlFloat = Field(_DEFAULT.session_hours, ge=0.01)
    """A login lasts this long (feedback_app.sessions)."""
    trusted_origins: list[Origin] = []
    """Other origins whose pages may call the app (feedback_app.security); its own origin always may."""
    max_request_mb: YamlFloat = Field(_DEFAULT.max_request_mb, gt=0)
    max_upload_mb: YamlFloat = Field(_DEFAULT.max_upload_mb, gt=0)
    login_failures_per_user: int = Field(_DEFAULT.login_failures_per_user, ge=1)
    login_failures_per_address: int = Field(_DEFAULT.login_failures_per_address, ge=1)
    login_window_minutes: YamlFloat = Field(_DEFAULT.login_window_minutes, gt=0)


class Queue(Section):
    overlap: int = Field(_DEFAULT.overlap, ge=1)
    mix: dict[ItemKind, Share] = _DEFAULT.mix
    agreement_share: Rate = _DEFAULT.agreement_share
    agreement_overlap: int = Field(_DEFAULT.agreement_overlap, ge=2)
    fill_prompts: int = Field(_DEFAULT.fill_prompts, ge=1)
    low_water: int = Field(_DEFAULT.low_water, ge=0)
    fill_interval_s: YamlFloat = Field(_DEFAULT.fill_interval_s, ge=0.5)
    gold_rate: Rate = _DEFAULT.gold_rate
    swap_rate: Rate = _DEFAULT.swap_rate
    selection: Selection = _DEFAULT.selection
    selection_scorer: Scorer = _DEFAULT.selection_scorer
    guidelines: dict[ItemKind, Annotated[str, Field(max_length=MAX_GUIDELINE_CHARS)]] = {}
    questions: list[Criterion] = Field([], max_length=MAX_CRITERIA)

    @field_validator("questions")
    @classmethod
    def _distinct(cls, questions: list[str]) -> list[str]:
        repeated = sorted({name for name in questions if questions.count(name) > 1})
        if repeated:
            raise ValueError(f"each criterion once: {', '.join(repeated)} repeated")
        return questions

    @field_validator("mix")
    @classmethod
    def _some_share(cls, mix: dict[str, float]) -> dict[str, float]:
        if not any(mix.values()):
            raise ValueError("at least one kind needs a share above 0")
        return mix

    @field_validator("swap_rate")
    @classmethod
    def _room_for_work(cls, swap_rate: float, info: ValidationInfo) -> float:
        """Checks are mixed into ordinary work, so together they cannot take every serving."""
        gold_rate = info.data.get("gold_rate")
        if gold_rate is not None and gold_rate + swap_rate > 1.0:
            raise ValueError(
                f"queue.gold_rate + queue.swap_rate must add up to at most 1, got {gold_rate!r} + {swap_rate!r}"
            )
        return swap_rate


class Ui(Section):
    timer_s: YamlFloat = Field(_DEFAULT.timer_s, ge=0.2)
    """Rounds tab refresh."""
    log_tail_lines: int = Field(_DEFAULT.log_tail_lines, ge=1)


class Rounds(Section):
    round_configs: str = _DEFAULT.round_configs
    """A glob: the round configs the Rounds tab offers."""


class AppFile(Strict):
    """The whole file; `generation` is only required to be a mapping here (rlhf.inference.generation checks it)."""

    server: Server = Server()
    queue: Queue = Queue()
    ui: Ui = Ui()
    rounds: Rounds = Rounds()
    generation: dict[str, Any] | None = None


_SETTINGS = ("server", "queue", "ui", "rounds")
_SECTION_OF = {
    name: section
    for section in _SETTINGS
    for name in cast(type[Section], AppFile.model_fields[section].annotation).model_fields
}


def _resolve(path: Path | str | None) -> Path:
    """The file as given, else the shipped config of that name; a missing file is an error, never the defaults."""
    try:
        return configs.resolve(DEFAULT_NAME if path is None else path)
    except configs.MissingConfig as error:
        raise ConfigError(str(error)) from None


def _overridden(file: AppFile, overrides: dict[str, Any], path: Path) -> AppFile:
    """`file` with `overrides` (setting name → value) checked as if the file had said them."""
    unknown = sorted(set(overrides) - set(_SECTION_OF))
    if unknown:
        raise TypeError(f"load_app_config: no setting {', '.join(unknown)} (known: {', '.join(_SECTION_OF)})")
    data = file.model_dump()
    for name, value in overrides.items():
        data[_SECTION_OF[name]][name] = value
    return validate(AppFile, data, path=f"{path} (with {', '.join(overrides)} overridden)")


def load_app_config(path: Path | str | None = None, **overrides: Any) -> AppConfig:
    """The checked app config (default: the shipped configs/app.yaml); `overrides` that are not None win (--port)."""
    path = _resolve(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    raw, lines = read_yaml(text, str(path))
    file = validate(AppFile, {} if raw is None else raw, path=str(path), lines=lines)
    given = {name: value for name, value in overrides.items() if value is not None}
    if given:
        file = _overridden(file, given, path)
    values: dict[str, Any] = {}
    for section in _SETTINGS:
        values.update(getattr(file, section).model_dump())
    values["trusted_origins"] = tuple(values["trusted_origins"])
    values["questions"] = tuple(values["questions"])
    return AppConfig(**values, generation=dict(file.generation or {}))
