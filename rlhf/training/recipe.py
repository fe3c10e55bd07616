"""One alignment round, as a recipe: snapshot → export → stages → evaluate → register → publish.

Run in its own process by `rlhf.jobs.runner` (`python -m rlhf.training.recipe ROUND_ID --db URL`, or under
`accelerate launch`). Every stage's output is saved in the round's work dir before the next
stage starts, so `resume` skips completed stages and uses the same data snapshot. The version
is registered only at the end, so a failed or cancelled round leaves no ready version.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rlhf.jobs.lifecycle import mark_ended, reward_version_name, version_name
from rlhf.models import registry
from rlhf.training.config import RoundConfig, parse_round_config
from rlhf.training.progress import RoundReporter, TrainerProgress
from rlhf.training.stages import DATA_KIND, STAGES, PolicySource, StageContext, run
from storage.crud import StoreError
from storage.db import read_scope, session_scope
from storage.models import ModelVersion, Round, RoundStatus, utcnow


class RoundCancelled(Exception):
    """SIGTERM from `rlhf round cancel`."""


def source_of(version: ModelVersion) -> PolicySource:
    return PolicySource(
        path=version.artifact_path,
        is_adapter=version.is_adapter,
        base=version.base_model if version.is_adapter else None,
    )


def run_round(round_id: int, url: str) -> None:
    """The recipe. Under `accelerate launch` every process trains; only the main one touches the store."""
    from accelerate import PartialState

    state = PartialState()
    with session_scope(url) as session:
        row = session.get(Round, round_id)
        if row is None:
            raise StoreError(f"round: no round {round_id}")
        parent = session.get_one(ModelVersion, row.parent_version_id)
    assert row.work_dir is not None and row.log_path is not None  # create_round sets both
    if row.status == RoundStatus.cancelled.value:
        return
    config = parse_round_config(row.config_yaml, row.config_path or f"round {round_id}")
    work = Path(row.work_dir)
    reporter = RoundReporter(url, round_id, Path(row.log_path), enabled=state.is_main_process)

    if state.is_main_process:
        mark_running(reporter, row)
        snapshot = row.data_snapshot or take_snapshot(url)
        reporter.update(data_snapshot=snapshot, stage="export")
        export_data(config, url, work, snapshot, parent)
    state.wait_for_everyone()

    policy, reward_model, stage_metrics = run_stages(config, work, parent, row, reporter)

    if state.is_main_process:
        reporter.update(stage="evaluate", progress={"stage": "evaluate"})
        metrics = {"stages": stage_metrics, **evaluate(config, work, policy, source_of(parent), reward_model)}
        reporter.log("evaluated", metrics=metrics)
        reporter.update(metrics=metrics, stage="register")
        if reward_model is not None:
            register_reward_model(url, round_id, config, parent, reward_model, metrics)
        version = register(url, round_id, config, parent, policy, metrics)
        live = publish(url, version.name, metrics["gate"], by=f"round {round_id} gate")
        reporter.transition(
            RoundStatus.succeeded.value,
            stage=None,
            output_version_id=version.id,
            finished_at=utcnow(),
            progress={"stage": "done"},
        )
        reporter.log("done", version=version.name, live=live)
        shutil.rmtree(work / "scratch", ignore_errors=True)
    state.wait_for_everyone()


def mark_running(reporter: RoundReporter, row: Round) -> None:
    assert row.work_dir is not None  # create_round sets it
    Path(row.work_dir).mkdir(parents=True, exist_ok=True)
    fields = {"started_at": row.started_at or utcnow(), "error": None, "finished_at": None}
    if row.status == RoundStatus.queued.value:
        reporter.transition(RoundStatus.running.value, **fields)
    else:
        reporter.update(**fields)
    from accelerate import PartialState

    reporter.log(
        "start", resumed_after=list(row.completed_stages), pid=os.getpid(), processes=PartialState().num_processes
    )


def run_stages(
    config: RoundConfig, work: Path, parent: ModelVersion, row: Round, reporter: RoundReporter
) -> tuple[PolicySource, Path | None, dict]:
    """Each stage in order, starting from the previous one's saved output; completed stages are skipped."""
    completed = list(row.completed_stages)
    stage_metrics = dict(row.metrics.get("stages", {}))
    policy, reward_model = source_of(parent), None
    for name, spec in config.stages.items():
        output = work / "stages" / name
        if name not in completed:
            reporter.update(stage=name, progress={"stage": name, "step": 0, "total": None})
            reporter.log("stage_start", stage=name)
            wall, cpu = time.perf_counter(), time.process_time()
            progress = TrainerProgress(reporter, name)
            ctx = StageContext(
                policy=policy,
                finetune=config.finetune,
                data=load_data(work, DATA_KIND[name]),
                output=output,
                scratch=work / "scratch" / name,
                reward_model=reward_model,
                callbacks=[progress],
            )
            run(STAGES[name], spec, ctx)
            completed.append(name)
            stage_metrics[name] = progress.summary()
            reporter.update(completed_stages=list(completed), metrics={"stages": dict(stage_metrics)})
            reporter.log("stage_done", stage=name, wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu)
        if name == "reward":
            reward_model = output
        else:
            policy = stage_output_source(output, parent)
    return policy, reward_model, stage_metrics


def take_snapshot(url: str) -> dict:
    from storage.export import snapshot

    with session_scope(url) as session:
        return snapshot(session)


def export_data(config: RoundConfig, url: str, work: Path, snapshot: dict, parent: ModelVersion) -> None:
    """Each dataset kind the stages need (plus preference pairs and prompts for evaluation), bounded by the snapshot."""
    from rlhf.quality.analytics import export_quality
    from storage.export import export_dataset

    missing = [kind for kind in config.data_kinds if not (work / "data" / kind).exists()]
    quality = {}
    if missing:
        with read_scope(url) as session:
            quality = export_quality(session, config.data.aggregation, snapshot["max_judgment_id"])
    for kind in missing:
        out = work / "data" / kind
        options = config.export_options(kind, parent.round_id, snapshot["max_judgment_id"], quality)
        manifest = export_dataset(out, options, url=url)
        if kind == DATA_KIND[config.policy_stage] and not manifest["counts"]["train"]:
            shutil.rmtree(out)
            raise StoreError(
                f"{config.path}: no {kind} training rows in the data snapshot "
                f"(judgments up to id {snapshot['max_judgment_id']}, filters {config.data.model_dump()})"
            )


def load_data(work: Path, kind: str):
    from storage.export import load_export

    return load_export(work / "data" / kind)


def stage_output_source(output: Path, parent: ModelVersion) -> PolicySource:
    if (output / "adapter_config.json").is_file():
        return PolicySource(path=str(output), is_adapter=True, base=registry.root_base_model(parent))
    return PolicySource(path=str(output))


def evaluate(
    config: RoundConfig, work: Path, policy: PolicySource, parent: PolicySource, reward_model: Path | None
) -> dict:
    from rlhf.models.modeling import preferred_device
    from rlhf.training import evaluation
    from storage.export import read_manifest

    held_out = [row["prompt"] for row in load_data(work, "prompt")["test"]]
    adversarial_rows = set(read_manifest(work / "data" / "prompt").get("adversarial", {}).get("test_rows", []))
    general = [prompt for i, prompt in enumerate(held_out) if i not in adversarial_rows]
    metrics = evaluation.compare_policies(
        policy,
        parent,
        reward_model,
        general,
        config.evaluation,
        config.gate.degeneration,
        samples_out=work / evaluation.EVALUATION_SAMPLES,
    )
    if adversarial_rows:
        metrics["adversarial"] = evaluation.adversarial_comparison(
            policy, parent, reward_model, [held_out[i] for i in sorted(adversarial_rows)], config.evaluation
        )
    if STAGES[config.policy_stage].trains_student:
        metrics["distillation"] = evaluation.distillation_figures(policy, parent, general, config.evaluation)
    if reward_model is not None:
        model, tokenizer = evaluation.load_reward_model(reward_model, preferred_device())
        pairs = list(load_data(work, "preference")["test"])
        metrics["reward_model"] = evaluation.reward_model_metrics(model, tokenizer, pairs, config.evaluation.seed)
    metrics["gate"] = evaluation.gate_decision(metrics, config.gate)
    return metrics


def register(
    url: str, round_id: int, config: RoundConfig, parent: ModelVersion, policy: PolicySource, metrics: dict
) -> ModelVersion:
    """Copy the policy into the registry as a ready (not yet live) version; once only, even across resumes.

    The copy is made before the write transaction (a big model would hold the store's write lock
    for as long as it takes); inside it the files are only moved. A folder left by a register
    killed before it committed is this round's own, and is replaced.
    """
    with session_scope(url) as session:
        row = session.get_one(Round, round_id)
        if row.output_version_id is not None:
            return session.get_one(ModelVersion, row.output_version_id)
    name = version_name(config, round_id)
    note, base_model = None, None
    if STAGES[config.policy_stage].trains_student:
        params = metrics["distillation"]["params"]
        note = f"distilled from {parent.name} ({params['teacher']:,} params → {params['student']:,} params)"
        base_model = str(registry.artifacts_root(url).resolve() / name)
    return _publish_folder(
        url, round_id, name, Path(policy.path), config.policy_stage, parent, config, metrics, note, base_model
    )


def register_reward_model(
    url: str, round_id: int, config: RoundConfig, parent: ModelVersion, folder: Path, metrics: dict
) -> ModelVersion:
    """The round's reward model as a `reward` version (never live): active selection and later rounds find it
    through the registry, and it outlives the round's work dir."""
    name = reward_version_name(config, round_id)
    with read_scope(url) as session:
        existing = registry.get_version(session, name=name)
    if existing is not None:
        return existing
    reward_metrics = {"reward_model": metrics["reward_model"]} if "reward_model" in metrics else {}
    return _publish_folder(url, round_id, name, folder, "reward", parent, config, reward_metrics)


def _publish_folder(
    url: str,
    round_id: int,
    name: str,
    source: Path,
    kind: str,
    parent: ModelVersion,
    config: RoundConfig,
    metrics: dict,
    note: str | None = None,
    base_model: str | None = None,
) -> ModelVersion:
    """Copy `source` beside the round, then move it into the registry as `name` in one transaction; the policy
    version is recorded on the round in that same transaction, so a crash never leaves it registered but unowned.

    `note`: a line for the lineage (a distilled student's origin); `base_model`: the full model it is built on,
    when that is not its parent's (a distilled student is its own base)."""
    with session_scope(url) as session:
        work_dir = session.get_one(Round, round_id).work_dir
        assert work_dir is not None  # create_round sets it
        staged = Path(work_dir) / "scratch" / f"register-{kind}"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(source, staged)
    is_adapter = (source / "adapter_config.json").is_file()
    leftover = registry.artifacts_root(url).resolve() / name
    with session_scope(url) as session:
        row = session.get_one(Round, round_id)
        if leftover.exists() and registry.get_version(session, name=name) is None:
            shutil.rmtree(leftover)
        version = registry.publish_version(
            session,
            name=name,
            write=lambda folder: [shutil.move(str(entry), str(folder / entry.name)) for entry in staged.iterdir()],
            root=registry.artifacts_root(url),
            base_model=base_model or (registry.root_base_model(parent) if is_adapter else parent.base_model),
            kind=kind,
            is_adapter=is_adapter,
            parent_id=parent.id,
            round_id=round_id,
            data_snapshot=row.data_snapshot,
            config={"path": config.path, "yaml": config.text, "stages": list(config.stages)}
            | ({"note": note} if note else {}),
            metrics=metrics,
        )
        if kind == config.policy_stage:
            row.output_version_id = version.id
        return version


def publish(url: str, name: str, gate: dict, by: str) -> bool:
    """The gate decides: a version that passed goes live; one that did not, or whose config holds it back
    (`gate.publish: false`), stays ready, not live."""
    if not gate["passed"] or not gate.get("publish", True):
        return False
    with session_scope(url) as session:
        registry.set_live(session, name=name, by=by)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlhf.training.recipe", description="run one alignment round")
    parser.add_argument("round_id", type=int)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)

    def cancel(_signum, _frame):
        raise RoundCancelled("cancelled")

    signal.signal(signal.SIGTERM, cancel)
    try:
        run_round(args.round_id, args.db)
    except RoundCancelled:
        mark_ended(args.db, args.round_id, RoundStatus.cancelled.value, "cancelled")
        return 130
    except BaseException as error:
        traceback.print_exc()
        reason = f"{type(error).__name__}: {error}".strip()
        if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
            reason = f"out of memory: {reason}"
        mark_ended(args.db, args.round_id, RoundStatus.failed.value, reason[-2000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
