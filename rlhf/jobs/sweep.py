"""`rlhf sweep`: a hyperparameter search with Optuna in which every trial is a normal round.

The trials train on one data snapshot and one parent, both fixed when the sweep starts, so their
scores differ only by the swept values. Each runs as its own round process (progress, logs and
cancel as for any round) with `gate.publish: false`, so none goes live on its own; a trial whose
evaluation raised a degeneration alarm is infeasible (`Trial.set_constraint`), and TPE and the
choice of the best trial respect that. Afterwards the best feasible trial's version stays ready
and the others' versions are retired; `live=True` then publishes the best one if its gate passed.

The study lives in the store's own database (Optuna's RDBStorage on the store URL), beside our
tables (see `storage.migrate.OPTUNA_TABLES` for how the two schemas keep apart).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import yaml
from sqlalchemy import inspect
from sqlmodel import col, select

from rlhf.jobs.lifecycle import ACTIVE
from rlhf.jobs.runner import cancel_round, get_round, start_round
from rlhf.models import registry
from rlhf.training.config import load_round_config
from storage.crud import StoreError
from storage.db import database_url, get_engine, read_scope, session_scope
from storage.models import ModelVersion, Round, RoundStatus, VersionStatus

if TYPE_CHECKING:
    import optuna

Kind = Literal["loguniform", "uniform", "int", "choice"]
KINDS: tuple[Kind, ...] = ("loguniform", "uniform", "int", "choice")
OBJECTIVES: dict[str, Callable[[dict], float | None]] = {
    "win_rate": lambda metrics: metrics.get("win_rate"),
    "reward_accuracy": lambda metrics: (metrics.get("reward_model") or {}).get("accuracy"),
}
"""What a trial scores, read from its round's metrics: the win-rate against the parent (judged by the
trial's reward model), or the reward model's agreement with the held-out human pairs."""
SAMPLERS = ("tpe", "grid")
SWEEP_ATTR = "rlhf_sweep"
"""A study user attribute: the sweep's settings; studies without it are not ours and are not listed."""
FORCED = ("gate.publish=false",)

_PARAM = re.compile(r"^\s*(?P<key>[A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*=\s*(?P<kind>\w+)\s*\((?P<args>.*)\)\s*$")


class SweepError(StoreError):
    """A sweep the user must fix (a bad --param, a grid over a range, a study name taken), as one line."""


@dataclass(frozen=True)
class Param:
    """One swept config key and where its values come from."""

    key: str
    kind: Kind
    values: tuple[Any, ...]
    spec: str

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        low, high = self.values
        if self.kind == "int":
            return trial.suggest_int(self.key, low, high)
        return trial.suggest_float(self.key, low, high, log=self.kind == "loguniform")

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return any(value == choice and type(value) is type(choice) for choice in self.values)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self.values[0] <= value <= self.values[1] and (self.kind != "int" or isinstance(value, int))

    def grid(self) -> list[Any]:
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(self.values[0], self.values[1] + 1))
        raise SweepError(
            f"--param {self.spec!r}: a grid sweep needs choice(...) or int(a,b), not a continuous {self.kind} range"
        )


def parse_param(spec: str) -> Param:
    """`stages.dpo.beta=choice(0.05,0.1)`, `...learning_rate=loguniform(1e-5,1e-3)`, `uniform(a,b)`, `int(a,b)`."""
    match = _PARAM.match(spec)
    if match is None:
        raise SweepError(f"--param {spec!r}: expected KEY=DISTRIBUTION(...), e.g. stages.dpo.beta=choice(0.05,0.1,0.3)")
    key, kind, raw_args = match["key"], match["kind"], match["args"]
    where = f"--param {key}"
    if kind not in KINDS:
        raise SweepError(f"{where}: unknown distribution {kind!r} (use {', '.join(k + '(...)' for k in KINDS)})")
    args = [part.strip() for part in raw_args.split(",")] if raw_args.strip() else []
    if any(not part for part in args):
        raise SweepError(f"{where}: {kind}({raw_args}) has an empty value")
    values = [_yaml_value(part) for part in args]
    if kind == "choice":
        if not values:
            raise SweepError(f"{where}: choice() needs at least one value")
        if len({repr(v) for v in values}) != len(values):
            raise SweepError(f"{where}: choice({raw_args}) repeats a value")
        if any(not isinstance(v, (int, float, str, bool)) and v is not None for v in values):
            raise SweepError(f"{where}: choice values must be numbers, strings, booleans or null")
        return Param(key, kind, tuple(values), spec)
    if len(values) != 2:
        raise SweepError(f"{where}: {kind} needs two bounds, {kind}(low,high); got {len(values)}")
    numeric = int if kind == "int" else (int, float)
    if any(isinstance(v, bool) or not isinstance(v, numeric) for v in values):
        what = "integers" if kind == "int" else "numbers"
        raise SweepError(f"{where}: {kind}({raw_args}): bounds must be {what}")
    low, high = values
    if not low < high:
        raise SweepError(f"{where}: {kind}({raw_args}): low must be below high")
    if kind == "loguniform" and low <= 0:
        raise SweepError(f"{where}: loguniform({raw_args}): bounds must be above 0")
    if kind != "int":
        low, high = float(low), float(high)
    return Param(key, kind, (low, high), spec)


def parse_params(specs: list[str] | tuple[str, ...]) -> tuple[Param, ...]:
    params = tuple(parse_param(spec) for spec in specs)
    if not params:
        raise SweepError("--param: give at least one, e.g. --param stages.dpo.beta=choice(0.05,0.1,0.3)")
    seen: set[str] = set()
    for param in params:
        if param.key in seen:
            raise SweepError(f"--param {param.key}: given twice")
        seen.add(param.key)
    return params


def _yaml_value(text: str) -> Any:
    """A value as a config override reads it (`1e-5` is a number here too)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def override(key: str, value: Any) -> str:
    """`key=value` that `load_round_config` reads back as the same value (PyYAML wants `1.0e-05`, not `1e-05`)."""
    text = yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
    return f"{key}={text}"


def grid_size(params: tuple[Param, ...]) -> int:
    return math.prod(len(param.grid()) for param in params)


# --- the study in the store ------------------------------------------------------------------

_STORAGES: dict[str, Any] = {}


def study_storage(url: str | None = None):
    """Optuna's RDBStorage on the store's URL, created once per process.

    Optuna's own version check reads `alembic_version`, which holds our revision, so it is skipped and
    the store's revision and Optuna's recorded schema version are checked here instead.
    """
    import optuna
    from optuna.storages._rdb import models as optuna_models  # SCHEMA_VERSION: no public name for it

    from storage.migrate import current_revision, head_revision

    url = database_url(url)
    if url in _STORAGES:
        return _STORAGES[url]
    if current_revision(url) != head_revision():
        raise StoreError(f"the store at {url} is not at schema {head_revision()}: run `rlhf init --db {url}` first")
    kwargs = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, skip_compatibility_check=True)
    with storage.engine.connect() as connection:
        recorded = connection.exec_driver_sql("SELECT schema_version, library_version FROM version_info").first()
    if recorded is not None and recorded[0] != optuna_models.SCHEMA_VERSION:
        raise StoreError(
            f"the store's sweep tables have Optuna schema {recorded[0]} (optuna {recorded[1]}), "
            f"this optuna {optuna.__version__} needs {optuna_models.SCHEMA_VERSION}"
        )
    _STORAGES[url] = storage
    return storage


def has_studies(url: str | None = None) -> bool:
    """Whether Optuna's tables exist in the store (the app lists sweeps without creating them)."""
    return "studies" in inspect(get_engine(url)).get_table_names()


# --- running a sweep -------------------------------------------------------------------------


@dataclass
class SweepSettings:
    config: str
    params: tuple[Param, ...]
    trials: int | None = None
    """Default: the grid's size for a grid sweep; required for TPE."""
    objective: str = "win_rate"
    sampler: str = "tpe"
    study_name: str | None = None
    live: bool = False
    seed: int = 0
    created_by: str | None = None
    overrides: tuple[str, ...] = ()
    """`key=value` set on every trial, as `rlhf round run` takes them."""
    baseline: bool = False
    """Trial 0 runs the config's own values (counted in `trials`), so the table shows what the search gained."""


@dataclass
class TrialResult:
    study: str
    number: int
    params: dict[str, Any]
    state: str
    round_id: int | None
    score: float | None
    feasible: bool | None
    alarms: list[str] = field(default_factory=list)
    version: str | None = None
    error: str | None = None
    best: bool = False
    baseline: bool = False


@dataclass
class SweepResult:
    study: str
    trials: list[TrialResult]
    best: TrialResult | None
    live: bool
    live_refused: list[str]
    cancelled: bool


Progress = Callable[[int, int, Round | None, TrialResult | None], None]
"""Called with (trials done, trials planned, the running trial's round, the best trial so far)."""


def run_sweep(settings: SweepSettings, url: str | None = None, progress: Progress | None = None) -> SweepResult:
    """Run the study's trials one after another, then keep the best feasible trial's version (and publish it
    if `live`). Ctrl-C, SIGTERM (raised as KeyboardInterrupt by the caller) or a trial cancelled from the
    app stops the sweep after its round is marked cancelled; the trials done so far still pick a best."""
    import optuna

    url = database_url(url)
    if settings.objective not in OBJECTIVES:
        raise SweepError(f"--objective: {settings.objective!r} is not one of {', '.join(OBJECTIVES)}")
    if settings.sampler not in SAMPLERS:
        raise SweepError(f"--sampler: {settings.sampler!r} is not one of {', '.join(SAMPLERS)}")
    planned = _planned_trials(settings)
    fixed = list(settings.overrides)
    config = load_round_config(settings.config, [*fixed, *_probe_overrides(settings.params), *FORCED])
    parent, snapshot = _pin_parent_and_snapshot(url, config.parent, config.path)
    study_name = settings.study_name or f"sweep-{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            study_name=study_name, storage=study_storage(url), sampler=_sampler(settings), direction="maximize"
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise SweepError(f"--study: a study named {study_name!r} already exists in the store") from None
    study.set_user_attr(
        SWEEP_ATTR,
        {
            "config": settings.config,
            "overrides": fixed,
            "params": [param.spec for param in settings.params],
            "objective": settings.objective,
            "sampler": settings.sampler,
            "parent": parent,
            "data_snapshot": snapshot,
        },
    )
    if settings.baseline:
        own = shipped_values(settings.config, settings.params, fixed)
        study.enqueue_trial(own, user_attrs={"baseline": True})
    objective = _Objective(settings, url, parent, snapshot, planned, progress)

    def after_trial(study, trial) -> None:
        if progress:
            progress(trial.number + 1, planned, None, _best(study_name, url))

    try:
        study.optimize(objective, n_trials=planned, catch=(TrialRoundFailed,), callbacks=[after_trial])
    except KeyboardInterrupt:
        objective.cancelled = True
    return _finish(study_name, url, settings, objective.cancelled)


class TrialRoundFailed(Exception):
    """A trial's round failed or has no score: the trial is marked failed and the sweep goes on."""


@dataclass
class _Objective:
    """One trial: its values as overrides, a round on the pinned parent and snapshot, and the round's score."""

    settings: SweepSettings
    url: str
    parent: str
    snapshot: dict
    planned: int
    progress: Progress | None
    cancelled: bool = False

    def __call__(self, trial: optuna.Trial) -> float:
        values = {param.key: param.suggest(trial) for param in self.settings.params}
        swept = [override(key, value) for key, value in values.items()]
        overrides = [*self.settings.overrides, *swept, *FORCED, override("parent", self.parent)]
        trial.set_user_attr("overrides", overrides)
        try:
            round_id = start_round(
                self.settings.config,
                self.url,
                created_by=self.settings.created_by,
                overrides=tuple(overrides),
                data_snapshot=self.snapshot,
            )
        except StoreError as error:
            raise SweepError(f"trial {trial.number}: its round did not start: {error}") from None
        trial.set_user_attr("round_id", round_id)
        on_poll = partial(self.progress, trial.number, self.planned) if self.progress else None
        try:
            row = _follow(round_id, self.url, on_poll)
        except KeyboardInterrupt:
            if get_round(round_id, self.url).status in ACTIVE:
                cancel_round(round_id, self.url)
            trial.set_user_attr("error", "sweep cancelled")
            raise
        if row.status == RoundStatus.cancelled.value:
            self.cancelled = True
            trial.study.stop()
        return _score(trial, row, self.settings.objective)


def _planned_trials(settings: SweepSettings) -> int:
    if settings.sampler == "grid" and settings.baseline:
        raise SweepError("--baseline: only for TPE (a grid holds the config's values if they are on it)")
    if settings.sampler == "grid":
        size = grid_size(settings.params)
        return min(settings.trials or size, size)
    if not settings.trials or settings.trials < 1:
        raise SweepError("--trials: give how many trials a TPE sweep runs (at least 1)")
    return settings.trials


def shipped_values(config_path: str, params: tuple[Param, ...], overrides: list[str] | None = None) -> dict[str, Any]:
    """Each swept key's value in the config itself, after `overrides` (a stage field left unset: TRL's default)."""
    import dataclasses

    from rlhf.training.config import STAGE_ORDER, trl_config_class

    raw = yaml.safe_load(load_round_config(config_path, overrides or []).text) or {}
    values = {}
    for param in params:
        section: Any = raw
        for part in param.key.split("."):
            section = section.get(part, _UNSET) if isinstance(section, dict) else _UNSET
        parts = param.key.split(".")
        if section is _UNSET and len(parts) == 3 and parts[0] == "stages" and parts[1] in STAGE_ORDER:
            fields = {f.name: f for f in dataclasses.fields(trl_config_class(parts[1]))}
            if parts[2] in fields and fields[parts[2]].default is not dataclasses.MISSING:
                section = fields[parts[2]].default
        if section is _UNSET:
            raise SweepError(f"--baseline: {config_path} does not set {param.key}, so it has no value of its own")
        if not param.contains(section):
            raise SweepError(f"--baseline: {config_path} has {param.key}={section!r}, outside {param.spec!r}")
        values[param.key] = section
    return values


_UNSET = object()


def _probe_overrides(params: tuple[Param, ...]) -> list[str]:
    """One point of the space as overrides, so a misspelt key fails before any round starts."""
    return [override(param.key, param.values[0]) for param in params]


def _sampler(settings: SweepSettings):
    import optuna

    if settings.sampler == "grid":
        space = {param.key: param.grid() for param in settings.params}
        return optuna.samplers.GridSampler(space, seed=settings.seed)
    return optuna.samplers.TPESampler(seed=settings.seed)


def _pin_parent_and_snapshot(url: str, parent_name: str | None, where: str) -> tuple[str, dict]:
    """The parent every trial starts from (the config's, else the live version now) and the judgments they share."""
    from storage.export import snapshot

    with session_scope(url) as session:
        parent = registry.require_version(session, name=parent_name) if parent_name else registry.live_version(session)
        if parent is None:
            raise SweepError(f"{where}: parent: not set and no version is live")
        return parent.name, snapshot(session)


def _follow(round_id: int, url: str, on_poll: Callable[[Round, None], Any] | None, poll: float = 0.5) -> Round:
    while True:
        row = get_round(round_id, url)
        if on_poll:
            on_poll(row, None)
        if row.status not in ACTIVE:
            return row
        time.sleep(poll)


def _score(trial: optuna.Trial, row: Round, objective: str) -> float:
    """The trial's score and its degeneration constraint, from how its round ended; else TrialRoundFailed."""
    metrics = row.metrics or {}
    score = OBJECTIVES[objective](metrics) if row.status == RoundStatus.succeeded.value else None
    if score is None or not math.isfinite(score):
        reason = row.error or (
            f"round {row.status}" if row.status != "succeeded" else f"its metrics have no {objective}"
        )
        trial.set_user_attr("error", reason[-500:])
        raise TrialRoundFailed(f"round {row.id}: {reason}")
    alarms = list((metrics.get("degeneration") or {}).get("alarms") or [])
    trial.set_user_attr("degeneration_alarms", alarms)
    trial.set_user_attr("version_id", row.output_version_id)
    trial.set_constraint("degeneration", float(len(alarms)))
    return float(score)


def _finish(study_name: str, url: str, settings: SweepSettings, cancelled: bool) -> SweepResult:
    """Keep the best feasible trial's version, retire the other trials' versions, publish the best if asked."""
    import optuna

    trials = sweep_trials(url, study_name)
    best = next((trial for trial in trials if trial.best), None)
    live, refused = False, []
    with session_scope(url) as session:
        keep = {version.id for version in _versions_of_round(session, best.round_id if best else None)}
        for trial in trials:
            for version in _versions_of_round(session, trial.round_id):
                if version.id not in keep and version.status == VersionStatus.ready.value and not version.is_live:
                    registry.retire(session, name=version.name)
        if best is not None and best.version and settings.live:
            gate = registry.require_version(session, name=best.version).metrics.get("gate") or {}
            refused = [str(reason) for reason in gate.get("reasons") or []]
            if gate.get("passed"):
                registry.set_live(session, name=best.version, by=f"sweep {study_name}")
                live = True
    if best is not None:
        optuna.load_study(study_name=study_name, storage=study_storage(url)).set_user_attr(
            "best", {"trial": best.number, "round_id": best.round_id, "version": best.version}
        )
    return SweepResult(study_name, trials, best, live, refused, cancelled)


def _versions_of_round(session, round_id: int | None) -> list[ModelVersion]:
    """The versions a trial's round registered: its policy and its reward model."""
    if round_id is None:
        return []
    return list(session.exec(select(ModelVersion).where(ModelVersion.round_id == round_id)).all())


# --- reading sweeps back -----------------------------------------------------------------------


def _best(study_name: str, url: str) -> TrialResult | None:
    return next((trial for trial in sweep_trials(url, study_name) if trial.best), None)


def sweep_trials(url: str | None = None, study_name: str | None = None) -> list[TrialResult]:
    """Every trial of the store's sweeps (or of one), oldest study first, each marked best or not."""
    import optuna
    from optuna.trial import TrialState

    url = database_url(url)
    if not has_studies(url):
        return []
    storage = study_storage(url)
    names = [study_name] if study_name else optuna.get_all_study_names(storage)
    rows = []
    with read_scope(url) as session:
        query = select(ModelVersion).where(col(ModelVersion.round_id).is_not(None))
        versions = {version.id: version.name for version in session.exec(query).all()}
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        if SWEEP_ATTR not in study.user_attrs:
            continue
        trials = study.get_trials(deepcopy=False)
        try:
            best_number = study.best_trial.number
        except ValueError:  # no complete (feasible) trial yet
            best_number = None
        for trial in trials:
            attrs = trial.user_attrs
            constraints = trial.constraints
            rows.append(
                TrialResult(
                    study=name,
                    number=trial.number,
                    params=dict(trial.params),
                    state=trial.state.name.lower(),
                    round_id=attrs.get("round_id"),
                    score=trial.value if trial.state == TrialState.COMPLETE else None,
                    feasible=all(v <= 0 for v in constraints.values()) if constraints else None,
                    alarms=list(attrs.get("degeneration_alarms") or []),
                    version=versions.get(attrs.get("version_id")),
                    error=attrs.get("error"),
                    best=trial.number == best_number,
                    baseline=bool(attrs.get("baseline")),
                )
            )
    return rows


SWEEP_COLUMNS = ("study", "trial", "params", "score", "feasible", "round", "version", "best")


def sweep_table(url: str | None = None) -> list[list[Any]]:
    """The Rounds tab's Sweeps table as plain values: newest study first, its trials in order, the best starred."""
    trials = sweep_trials(url)
    studies = list(dict.fromkeys(trial.study for trial in trials))[::-1]
    return [_table_row(trial) for study in studies for trial in trials if trial.study == study]


def _table_row(trial: TrialResult) -> list[Any]:
    params = ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in trial.params.items()
    )
    if trial.baseline:
        params += " (the config's own)"
    if trial.score is not None:
        score = f"{trial.score:.3f}"
    else:
        score = trial.state + (f": {trial.error}" if trial.error else "")
    feasible = "—" if trial.feasible is None else ("yes" if trial.feasible else "no: " + "; ".join(trial.alarms))
    return [
        trial.study,
        trial.number,
        params,
        score,
        feasible,
        trial.round_id,
        trial.version or "—",
        "★" if trial.best else "",
    ]
