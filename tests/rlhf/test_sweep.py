"""`rlhf sweep`: --param parsing, the study in the store beside our migrations, trial bookkeeping, a tiny sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel, select

from rlhf.cli import main as cli
from rlhf.jobs import sweep
from rlhf.jobs.lifecycle import create_round, transition
from rlhf.models import registry
from rlhf.training.config import apply_overrides, load_round_config
from storage.crud import StoreError
from storage.db import get_engine, session_scope
from storage.migrate import OPTUNA_TABLES, current_revision, head_revision, include_name, upgrade
from storage.models import ModelVersion, Round
from tests.helpers import seed_round_store, seed_store

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "configs" / "round_dpo_tiny.yaml")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("stages.dpo.beta", "expected KEY=DISTRIBUTION(...)"),
        ("stages.dpo.beta=normal(0,1)", "--param stages.dpo.beta: unknown distribution 'normal'"),
        ("stages.dpo.beta=uniform(0.1)", "--param stages.dpo.beta: uniform needs two bounds"),
        ("stages.dpo.beta=uniform(0.3,0.1)", "low must be below high"),
        ("stages.dpo.learning_rate=loguniform(0,1e-3)", "bounds must be above 0"),
        ("stages.dpo.num_train_epochs=int(1,2.5)", "bounds must be integers"),
        ("stages.dpo.beta=uniform(a,b)", "bounds must be numbers"),
        ("stages.dpo.beta=choice()", "choice() needs at least one value"),
        ("stages.dpo.beta=choice(0.1,0.1)", "repeats a value"),
        ("stages.dpo.beta=choice(0.1,,0.2)", "has an empty value"),
    ],
)
def test_a_bad_param_is_refused_naming_it(spec, problem):
    with pytest.raises(sweep.SweepError) as error:
        sweep.parse_param(spec)
    assert problem in str(error.value)


def test_params_parse_to_their_distributions_and_overrides_read_back_the_same_values():
    learning_rate, beta, epochs, method = sweep.parse_params(
        [
            "stages.dpo.learning_rate=loguniform(1e-5, 1e-3)",
            "stages.dpo.beta=choice(0.05,0.1,0.3)",
            "stages.dpo.num_train_epochs=int(1,3)",
            "finetune.method=choice(lora,full)",
        ]
    )
    assert (learning_rate.kind, learning_rate.values) == ("loguniform", (1e-5, 1e-3))
    assert beta.values == (0.05, 0.1, 0.3) and beta.grid() == [0.05, 0.1, 0.3]
    assert epochs.grid() == [1, 2, 3] and method.grid() == ["lora", "full"]
    with pytest.raises(sweep.SweepError, match="a grid sweep needs choice"):
        learning_rate.grid()
    overrides = [sweep.override("stages.dpo.learning_rate", 1e-05), sweep.override("finetune.method", "full")]
    merged, _ = apply_overrides({}, overrides, "x.yaml")
    assert merged == {"stages": {"dpo": {"learning_rate": 1e-05}}, "finetune": {"method": "full"}}
    with pytest.raises(sweep.SweepError, match="given twice"):
        sweep.parse_params(["a.b=choice(1)", "a.b=choice(2)"])


def test_optuna_tables_named_in_storage_are_the_ones_optuna_creates():
    from optuna.storages._rdb import models

    assert set(models.BaseModel.metadata.tables) == OPTUNA_TABLES


def test_the_study_lives_in_the_store_and_our_migrations_leave_it_alone(sqlite_url):
    import optuna

    study = optuna.create_study(study_name="s", storage=sweep.study_storage(sqlite_url), direction="maximize")
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.5)

    assert upgrade(sqlite_url) == head_revision() == current_revision(sqlite_url)
    with get_engine(sqlite_url).connect() as connection:
        tables = set(inspect(connection).get_table_names())
        context = MigrationContext.configure(connection, opts={"include_name": include_name})
        assert compare_metadata(context, SQLModel.metadata) == []
        unfiltered = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert tables >= OPTUNA_TABLES | {"round", "modelversion"}
    assert {diff[1].name for diff in unfiltered if diff[0] == "remove_table"} == OPTUNA_TABLES  # the filter's job
    assert optuna.load_study(study_name="s", storage=sweep.study_storage(sqlite_url)).best_value == 0.5


def test_a_store_not_yet_migrated_gets_no_study_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'blank.db'}"
    with pytest.raises(StoreError, match="run `rlhf init"):
        sweep.study_storage(url)
    assert not sweep.has_studies(url)


def test_a_round_held_back_by_its_config_stays_ready_when_its_gate_passes(sqlite_url):
    from rlhf.training.recipe import publish

    seed_store(sqlite_url, users=["ann"], version="base")
    seed_store(sqlite_url, version="trial", live=False)
    assert load_round_config(TINY, list(sweep.FORCED)).gate.publish is False
    assert publish(sqlite_url, "trial", {"passed": True, "reasons": [], "publish": False}, by="test") is False
    with session_scope(sqlite_url) as session:
        assert registry.live_version(session).name == "base"
    assert publish(sqlite_url, "trial", {"passed": True, "reasons": [], "publish": True}, by="test") is True


# --- trial bookkeeping, with a stand-in for the round process --------------------------------


def fake_round_process(monkeypatch, tmp_path, score, alarms=lambda config: [], end=True):
    """Each trial's round is recorded and (with `end`) ended at once with the metrics `score` gives its config,
    plus a version; without `end` it stays running (no process: pid None)."""
    started = []

    def start_round(config_path, url, created_by=None, overrides=(), data_snapshot=None):
        config = load_round_config(config_path, overrides)
        with session_scope(url) as session:
            row = create_round(session, config=config, url=url, created_by=created_by, data_snapshot=data_snapshot)
            transition(row, "running")
            started.append((row.id, config))
            if not end:
                session.flush()
                return row.id
            gate = {"passed": True, "reasons": [], "publish": config.gate.publish}
            version = registry.register_version(
                session,
                name=f"trial-r{row.id}",
                base_model="tiny",
                kind="dpo",
                artifact_path=str(tmp_path),
                parent_id=row.parent_version_id,
                round_id=row.id,
                metrics={"gate": gate},
            )
            metrics = {"win_rate": score(config), "gate": gate, "degeneration": {"alarms": alarms(config)}}
            transition(row, "succeeded", metrics=metrics, output_version_id=version.id)
            return row.id

    monkeypatch.setattr(sweep, "start_round", start_round)
    return started


def beta(config) -> float:
    return config.stages["dpo"].trl_args["beta"]


def test_a_grid_sweep_enumerates_the_grid_keeps_the_best_feasible_trial_and_retires_the_rest(
    sqlite_url, tmp_path, monkeypatch
):
    seed_store(sqlite_url, users=["ann"], prompts=1, version="base")
    started = fake_round_process(
        monkeypatch,
        tmp_path,
        score=lambda config: {0.05: 0.6, 0.1: 0.7, 0.3: 0.9}[beta(config)],
        alarms=lambda config: ["repetition 0.50 > 0.30"] if beta(config) == 0.3 else [],
    )
    settings = sweep.SweepSettings(
        config=TINY,
        params=sweep.parse_params(["stages.dpo.beta=choice(0.05,0.1,0.3)", "stages.dpo.num_train_epochs=int(1,2)"]),
        sampler="grid",
        study_name="grid",
    )
    result = sweep.run_sweep(settings, url=sqlite_url)

    points = sorted((beta(c), c.stages["dpo"].trl_args["num_train_epochs"]) for _, c in started)
    assert points == [(b, e) for b in (0.05, 0.1, 0.3) for e in (1, 2)]
    assert all(c.gate.publish is False and c.parent == "base" for _, c in started)
    assert result.best is not None and result.best.params["stages.dpo.beta"] == 0.1  # 0.3 scored higher, degenerate
    assert [t.feasible for t in result.trials].count(False) == 2 and not result.live
    with session_scope(sqlite_url) as session:
        statuses = {v.name: v.status for v in session.exec(select(ModelVersion).where(ModelVersion.kind == "dpo"))}
        live = registry.live_version(session)
    assert statuses.pop(result.best.version) == "ready" and set(statuses.values()) == {"retired"}
    assert live is not None and live.name == "base"
    table = sweep.sweep_table(sqlite_url)
    assert [row[1] for row in table] == list(range(6)) and [row[7] for row in table].count("★") == 1
    assert next(row for row in table if row[7])[3] == "0.700"


def test_tpe_trials_share_one_snapshot_and_live_publishes_the_best_through_its_gate(sqlite_url, tmp_path, monkeypatch):
    seed_store(sqlite_url, users=["ann"], prompts=1, version="base")
    started = fake_round_process(monkeypatch, tmp_path, score=lambda config: 1 - abs(beta(config) - 0.2))
    settings = sweep.SweepSettings(
        config=TINY, params=sweep.parse_params(["stages.dpo.beta=uniform(0.01,0.5)"]), trials=4, live=True
    )
    result = sweep.run_sweep(settings, url=sqlite_url)

    with session_scope(sqlite_url) as session:
        rows = [session.get_one(Round, round_id) for round_id, _ in started]
        live = registry.live_version(session)
    assert len(rows) == 4 and len({repr(row.data_snapshot) for row in rows}) == 1 and rows[0].data_snapshot
    assert [t.round_id for t in result.trials] == [row.id for row in rows]
    best = max(result.trials, key=lambda t: t.score or 0)
    assert result.best == best and result.live and live is not None and live.name == best.version


def test_the_baseline_trial_runs_the_configs_own_values_first(sqlite_url, tmp_path, monkeypatch):
    seed_store(sqlite_url, users=["ann"], prompts=1, version="base")
    started = fake_round_process(monkeypatch, tmp_path, score=lambda config: beta(config))
    params = sweep.parse_params(
        [
            "stages.dpo.beta=uniform(0.01,0.5)",
            "stages.dpo.learning_rate=loguniform(1e-5,1e-3)",
            "stages.dpo.seed=int(0,99)",
        ]
    )
    fixed = ("stages.dpo.beta=0.2", "evaluation.max_prompts=3")
    settings = sweep.SweepSettings(config=TINY, params=params, trials=3, baseline=True, overrides=fixed)
    result = sweep.run_sweep(settings, url=sqlite_url)

    first = started[0][1].stages["dpo"].trl_args
    assert (first["beta"], first["learning_rate"], first["seed"]) == (0.2, 1e-3, 42)  # seed: TRL's default
    assert [t.baseline for t in result.trials] == [True, False, False]
    assert result.trials[0].params == {"stages.dpo.beta": 0.2, "stages.dpo.learning_rate": 1e-3, "stages.dpo.seed": 42}
    assert [c.evaluation.max_prompts for _, c in started] == [3, 3, 3]
    assert "(the config's own)" in sweep.sweep_table(sqlite_url)[0][2]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("stages.dpo.beta=choice(0.05,0.3)", "has stages.dpo.beta=0.1, outside"),
        ("evaluation.temperature=uniform(0.5,1.5)", "does not set evaluation.temperature"),
    ],
)
def test_a_baseline_outside_the_space_is_refused(spec, problem):
    with pytest.raises(sweep.SweepError, match=problem):
        sweep.shipped_values(TINY, sweep.parse_params([spec]))


def test_ctrl_c_during_a_trial_cancels_its_round_and_stops_the_sweep(sqlite_url, tmp_path, monkeypatch):
    seed_store(sqlite_url, users=["ann"], prompts=1, version="base")
    started = fake_round_process(monkeypatch, tmp_path, score=lambda config: 0.5, end=False)

    def interrupt(done, planned, row, best):
        if row is not None:
            raise KeyboardInterrupt

    settings = sweep.SweepSettings(
        config=TINY, params=sweep.parse_params(["stages.dpo.beta=uniform(0.01,0.5)"]), trials=3
    )
    result = sweep.run_sweep(settings, url=sqlite_url, progress=interrupt)

    assert result.cancelled and result.best is None and len(started) == 1
    assert [(t.state, t.error) for t in result.trials] == [("fail", "sweep cancelled")]
    with session_scope(sqlite_url) as session:
        assert session.get_one(Round, started[0][0]).status == "cancelled"


def test_a_trial_cancelled_from_the_app_stops_the_sweep(sqlite_url, tmp_path, monkeypatch):
    seed_store(sqlite_url, users=["ann"], prompts=1, version="base")
    started = fake_round_process(monkeypatch, tmp_path, score=lambda config: 0.5, end=False)

    def cancel_from_the_app(done, planned, row, best):
        if row is not None and row.status == "running":
            with session_scope(sqlite_url) as session:
                transition(session.get_one(Round, row.id), "cancelled", error="cancelled by user")

    settings = sweep.SweepSettings(
        config=TINY, params=sweep.parse_params(["stages.dpo.beta=uniform(0.01,0.5)"]), trials=3
    )
    result = sweep.run_sweep(settings, url=sqlite_url, progress=cancel_from_the_app)
    assert result.cancelled and len(started) == 1 and result.trials[0].state == "fail"


def test_the_cli_reports_a_bad_param_as_one_line(sqlite_url, capsys):
    assert cli(["sweep", TINY, "--param", "stages.dpo.beta=choice()", "--trials", "2", "--db", sqlite_url]) == 2
    assert "choice() needs at least one value" in capsys.readouterr().err


def test_a_misspelt_key_fails_before_any_round_starts(sqlite_url, tmp_path, monkeypatch):
    seed_store(sqlite_url, users=["ann"], prompts=1, version="base")
    started = fake_round_process(monkeypatch, tmp_path, score=lambda config: 0.5)
    settings = sweep.SweepSettings(config=TINY, params=sweep.parse_params(["stages.dpo.betta=choice(0.1)"]), trials=1)
    with pytest.raises(StoreError, match="betta"):
        sweep.run_sweep(settings, url=sqlite_url)
    assert started == [] and not sweep.sweep_trials(sqlite_url)


# --- the real thing ------------------------------------------------------------------------------


@pytest.mark.slow  # two tiny rounds, each in its own process
def test_a_tiny_sweep_runs_real_rounds_on_one_snapshot_and_none_goes_live(sqlite_url, tiny_model_dir, tmp_path):
    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    code = cli(
        [
            "sweep",
            TINY,
            "--param",
            "stages.dpo.beta=choice(0.05,0.3)",
            "--sampler",
            "grid",
            "--study",
            "tiny",
            "--db",
            sqlite_url,
        ]
    )
    assert code == 0
    trials = sweep.sweep_trials(sqlite_url, "tiny")
    with session_scope(sqlite_url) as session:
        rows = [session.get_one(Round, t.round_id) for t in trials]
        live = registry.live_version(session)
        versions = {v.round_id: v for v in session.exec(select(ModelVersion).where(ModelVersion.kind == "dpo"))}
    assert sorted(t.params["stages.dpo.beta"] for t in trials) == [0.05, 0.3]
    assert all(row.status == "succeeded" for row in rows), [row.error for row in rows]
    assert rows[0].data_snapshot == rows[1].data_snapshot and rows[0].data_snapshot["judgments"] == 40
    assert all("publish: false" in row.config_yaml for row in rows)
    assert live is not None and live.name == "base"
    best = next(t for t in trials if t.best)
    assert versions[best.round_id].status == "ready" and versions[best.round_id].name == best.version
    assert all(versions[t.round_id].status == "retired" for t in trials if not t.best)
    with get_engine(sqlite_url).connect() as connection:
        names = [r[0] for r in connection.exec_driver_sql("SELECT study_name FROM studies")]
    assert names == ["tiny"]
