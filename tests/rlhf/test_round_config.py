"""Round configs: every shipped one loads; every mistake names the file and the key; launch commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trl
import yaml

from rlhf.jobs.runner import launch_command
from rlhf.training.config import ConfigError, load_round_config, parse_round_config
from storage.crud import StoreError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "configs").glob("round_*.yaml"))
TINY = (ROOT / "configs" / "round_dpo_tiny.yaml").read_text()


def test_every_kind_of_round_ships_with_a_tiny_variant():
    names = {p.stem for p in SHIPPED}
    for kind in ("dpo", "kto", "rlhf", "rloo", "distill"):
        assert f"round_{kind}" in names and f"round_{kind}_tiny" in names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_loads_into_trl_config_classes(path, tmp_path):
    config = load_round_config(path)
    assert config.text == path.read_text()
    assert config.policy_stage in {"dpo", "kto", "grpo", "rloo", "distill"}
    for name, spec in config.stages.items():
        args = spec.build_args(tmp_path / name, has_eval=True)
        assert type(args) is spec.config_class
        for key, value in spec.trl_args.items():
            assert getattr(args, key) == value or key == "loss_type"
        assert args.output_dir == str(tmp_path / name)
        assert args.use_cpu is True and not args.bf16  # no GPU on the test machine
    if config.policy_stage in {"grpo", "rloo"}:
        assert "reward" in config.stages


def test_every_shipped_config_says_in_one_line_what_it_does():
    for path in SHIPPED:
        description = load_round_config(path).description
        assert description and "\n" not in description and len(description) <= 200, path


def test_rlhf_config_is_sft_then_reward_then_grpo():
    config = load_round_config(ROOT / "configs" / "round_rlhf.yaml")
    assert list(config.stages) == ["sft", "reward", "grpo"]
    assert config.stages["grpo"].trl_args["beta"] > 0
    assert isinstance(config.stages["grpo"].build_args(Path("/tmp/x"), has_eval=False), trl.GRPOConfig)


def test_lora_config_reaches_peft():
    config = parse_round_config(TINY)
    lora = config.finetune.lora_config()
    assert lora.r == 8 and lora.lora_alpha == 16 and lora.task_type == "CAUSAL_LM"
    assert parse_round_config(TINY.replace("method: lora", "method: full")).finetune.lora_config() is None


def test_scientific_notation_that_yaml_reads_as_text_becomes_a_float():
    config = parse_round_config(TINY.replace("learning_rate: 1.0e-3,\n    beta", "x"), "c.yaml")
    text = TINY.replace("    learning_rate: 1.0e-3\n    beta", "    learning_rate: 5e-4\n    beta")
    assert "5e-4" in text and yaml.safe_load(text)["stages"]["dpo"]["learning_rate"] == "5e-4"
    assert parse_round_config(text).stages["dpo"].trl_args["learning_rate"] == 5e-4
    assert config.stages["dpo"].trl_args["learning_rate"] == 1e-3


BAD = [
    (
        "    beta: 0.1",
        "    beta: 0.1\n    learning_rat: 0.1",
        "configs/round_dpo.yaml: stages.dpo.learning_rat: unknown key (did you mean learning_rate?)",
    ),
    ("    beta: 0.1", "    beta: high", "stages.dpo.beta: input should be a valid number, got 'high'"),
    (
        "num_train_epochs: 2, per_device",
        "num_train_epochs: yes, per_device",
        "stages.reward.num_train_epochs: input should be a valid number, got True",
    ),
    (
        "    max_length: 128\n",
        "    max_length: [1]\n",
        "stages.dpo.max_length: input should be a valid integer, got [1]",
    ),
    ("stages:", "stagez:", "stagez: unknown key (did you mean stages?)"),
    ("  dpo:", "  dpoo:", "stages.dpoo: unknown key (did you mean dpo?)"),
    ("  sft:", "  kto: {}\n  sft:", "stages: needs exactly one policy stage"),
    ("method: lora", "method: qlora", "finetune.method: 'qlora' is not one of lora or full"),
    ("r: 8", "rank: 8", "finetune.lora.rank: unknown key"),
    ("r: 8", "r: eight", "finetune.lora.r: input should be a valid integer, got 'eight'"),
    ("eval_strategy: epoch", "eval_strategy: sometimes", "stages.dpo: DPOConfig rejects it"),
    ("    eval_strategy: epoch\n", "", "stages.dpo.early_stopping_patience: needs eval_strategy"),
    ("min_annotators: 1", "min_annotator: 1", "data.min_annotator: unknown key (did you mean min_annotators?)"),
    ("test_fraction: 0.2", "test_fraction: 2", "data.test_fraction: input should be less than 1, got 2"),
    (
        "gate: {min_win_rate: 0.55}",
        "gate: {min_win_rate: high}",
        "gate.min_win_rate: input should be a valid number, got 'high'",
    ),
    ("gate: {", "accelerate: eight_gpus\ngate: {", "accelerate: no configs/accelerate/eight_gpus.yaml"),
    (
        "logging_steps: 1}\n  reward",
        "logging_steps: 1, output_dir: x}\n  reward",
        "stages.sft.output_dir: set by the round",
    ),
    ("  dpo:", "  grpo: {num_generations: 2}\n  dpo:", "stages: needs exactly one policy stage"),
    ("gate: {", "description: 3\ngate: {", "description: input should be a valid string, got 3"),
    ("gate: {", "description: ''\ngate: {", "description: string should have at least 1 character"),
]


@pytest.mark.parametrize(
    "old,new,message", BAD, ids=[b[2].split(":")[0 if "configs/" not in b[2] else 1].strip() for b in BAD]
)
def test_bad_config_names_the_file_and_the_key(old, new, message):
    assert old in TINY
    with pytest.raises(ConfigError) as caught:
        parse_round_config(TINY.replace(old, new, 1), "configs/round_dpo.yaml")
    text = str(caught.value)
    assert text.startswith("configs/round_dpo.yaml: ")
    assert message.removeprefix("configs/round_dpo.yaml: ") in text


def test_error_gives_the_line_of_the_bad_key():
    text = TINY.replace("    beta: 0.1", "    beta: 0.1\n    learning_rat: 0.1")
    line = text.splitlines().index("    learning_rat: 0.1") + 1
    with pytest.raises(ConfigError, match=rf"\(line {line}\)$"):
        parse_round_config(text, "r.yaml")


def test_missing_stages_and_missing_file_and_broken_yaml():
    with pytest.raises(ConfigError, match=r"^x.yaml: stages: missing"):
        parse_round_config("name: a\n", "x.yaml")
    with pytest.raises(ConfigError, match=r"nope.yaml: cannot read"):
        load_round_config("nope.yaml")
    with pytest.raises(ConfigError, match=r"^y.yaml: not valid YAML.*\(line 2\)"):
        parse_round_config("stages:\n  dpo: x: y\n", "y.yaml")
    with pytest.raises(ConfigError, match=r"stages.grpo: needs a reward stage"):
        parse_round_config("stages:\n  grpo: {num_generations: 2}\n", "z.yaml")


@pytest.mark.parametrize("name", ["single_gpu", "deepspeed_zero3", "fsdp2"])
def test_accelerate_configs_parse_and_the_runner_launches_them(name):
    from accelerate.commands.config.config_args import load_config_from_file

    path = ROOT / "configs" / "accelerate" / f"{name}.yaml"
    loaded = load_config_from_file(str(path))
    assert loaded.mixed_precision == "bf16"
    assert (
        str(loaded.distributed_type).split(".")[-1]
        == {"single_gpu": "NO", "deepspeed_zero3": "DEEPSPEED", "fsdp2": "FSDP"}[name]
    )
    config = parse_round_config(TINY + f"accelerate: {name}\n")
    command = launch_command(config, 7, "sqlite:////tmp/s.db")
    assert command == [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(path),
        "-m",
        "rlhf.training.recipe",
        "7",
        "--db",
        "sqlite:////tmp/s.db",
    ]


def test_a_cpu_setup_of_several_processes_launches_through_torchrun_on_gloo(monkeypatch):
    from accelerate.commands.config.config_args import load_config_from_file

    from rlhf.jobs.runner import launch_environment

    path = ROOT / "configs" / "accelerate" / "cpu_two_processes.yaml"
    loaded = load_config_from_file(str(path))
    assert str(loaded.distributed_type).endswith("MULTI_CPU") and loaded.num_processes == 2
    config = parse_round_config(TINY + "accelerate: cpu_two_processes\n")
    assert launch_command(config, 4, "sqlite:///a.db") == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "rlhf.training.recipe",
        "4",
        "--db",
        "sqlite:///a.db",
    ]
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    assert launch_environment(config)["ACCELERATE_USE_CPU"] == "true"
    assert "ACCELERATE_USE_CPU" not in launch_environment(parse_round_config(TINY + "accelerate: single_gpu\n"))


def test_plain_launch_without_accelerate():
    assert launch_command(parse_round_config(TINY), 3, "sqlite:///a.db") == [
        sys.executable,
        "-m",
        "rlhf.training.recipe",
        "3",
        "--db",
        "sqlite:///a.db",
    ]


@pytest.mark.parametrize("value, ok", [("parent", True), (3, True), ("latest", False), (2.5, False)])
def test_since_round_is_a_round_id_or_parent(value, ok):
    text = TINY.replace("data: {", f"data: {{since_round: {value}, ")
    if ok:
        assert parse_round_config(text).data.since_round == value
    else:
        with pytest.raises(ConfigError, match="data.since_round"):
            parse_round_config(text)


def test_since_parent_exports_only_judgments_made_after_the_parents_round(sqlite_url, tiny_model_dir, tmp_path):
    import json

    from rlhf.training.recipe import export_data, take_snapshot
    from storage.crud import add_judgment, create_user
    from storage.db import session_scope
    from storage.models import Judgment, ModelVersion, Round
    from tests.helpers import seed_round_store

    seed_round_store(sqlite_url, tiny_model_dir, tmp_path, n_prompts=10)  # 20 judgments before round 1
    with session_scope(sqlite_url) as session:
        first = Round(config_yaml="", status="succeeded", data_snapshot=take_snapshot(sqlite_url))
        session.add(first)
        session.flush()
        parent = ModelVersion(
            name="r1", base_model="tiny", artifact_path=str(tiny_model_dir), status="ready", round_id=first.id
        )
        session.add(parent)
        user = create_user(session, username="fresh")
        for old in session.query(Judgment).filter(Judgment.user_id != user.id).limit(6).all():
            add_judgment(
                session,
                kind="pairwise",
                user_id=user.id,
                prompt_id=old.prompt_id,
                generation_ids=old.generation_ids,
                payload=old.payload,
                client_key=f"new-{old.id}",
            )
    for since, expected in (("parent", 6), (None, 26)):
        config = parse_round_config(TINY.replace("data: {", f"data: {{since_round: {since or 'null'}, "))
        work = tmp_path / f"work-{since}"
        export_data(config, sqlite_url, work, take_snapshot(sqlite_url), parent)
        manifest = json.loads((work / "data" / "preference" / "manifest.json").read_text())
        assert manifest["judgments"]["count"] == expected
        assert manifest["judgments"]["since_round"] == (first.id if since else None)


def test_gate_degeneration_limits_are_read_and_checked_with_did_you_mean():
    text = (ROOT / "configs" / "round_dpo_demo.yaml").read_text()
    opened = text.replace(
        "gate: {min_win_rate: 0.55}", "gate: {min_win_rate: 0.55, degeneration: {max_truncated_increase: null}}"
    )
    assert parse_round_config(opened, "x.yaml").gate.degeneration.max_truncated_increase is None
    misspelt = text.replace("gate: {min_win_rate: 0.55}", "gate: {degeneration: {max_repetitio: 0.2}}")
    with pytest.raises(
        StoreError,
        match=r"x.yaml: gate.degeneration.max_repetitio: unknown key "
        r"\(did you mean max_repetition\?\)",
    ):
        parse_round_config(misspelt, "x.yaml")


def test_every_problem_of_a_file_is_reported_at_once_each_with_its_line():
    text = (
        TINY.replace("    beta: 0.1", "    beta: high\n    learning_rat: 0.1")
        .replace("min_annotators: 1", "min_annotator: 1")
        .replace("gate: {min_win_rate: 0.55}", "gate: {min_win_rate: 2}")
    )
    with pytest.raises(ConfigError) as caught:
        parse_round_config(text, "r.yaml")
    problems = caught.value.problems
    lines = text.splitlines()
    expected = {
        "stages.dpo.beta": next(i for i, line in enumerate(lines, 1) if "beta: high" in line),
        "stages.dpo.learning_rat": next(i for i, line in enumerate(lines, 1) if "learning_rat:" in line),
        "data.min_annotator": next(i for i, line in enumerate(lines, 1) if "min_annotator:" in line),
        "gate.min_win_rate": next(i for i, line in enumerate(lines, 1) if "min_win_rate" in line),
    }
    assert len(problems) == len(expected), problems
    for key, line in expected.items():
        assert any(p.startswith(f"r.yaml: {key}: ") and p.endswith(f"(line {line})") for p in problems), (key, problems)


def test_an_old_key_name_points_to_the_new_one():
    with pytest.raises(ConfigError, match=r"data.eval_fraction: unknown key \(did you mean test_fraction\?\)"):
        parse_round_config(TINY.replace("test_fraction: 0.2", "eval_fraction: 0.2"), "r.yaml")


def test_overrides_are_checked_like_the_file_and_the_merged_yaml_replays_them():
    config = parse_round_config(TINY, "r.yaml", ["stages.dpo.beta=0.3", "stages.dpo.learning_rate=5e-4", "name=swept"])
    assert config.stages["dpo"].trl_args["beta"] == 0.3
    assert config.stages["dpo"].trl_args["learning_rate"] == 5e-4
    assert config.name == "swept"
    replayed = parse_round_config(config.text, "stored")
    assert replayed.stages["dpo"].trl_args == config.stages["dpo"].trl_args and replayed.name == "swept"
    assert config.text.startswith("# r.yaml with stages.dpo.beta=0.3")
    with pytest.raises(ConfigError) as caught:
        parse_round_config(TINY, "r.yaml", ["stages.dpo.bta=0.3", "stages.dpo.beta=high", "data.seed"])
    text = str(caught.value)
    assert "r.yaml: override 'data.seed': expected key=value" in text
    with pytest.raises(ConfigError) as caught:
        parse_round_config(TINY, "r.yaml", ["stages.dpo.bta=0.3", "stages.dpo.beta=high"])
    problems = caught.value.problems
    assert (
        "r.yaml: stages.dpo.bta: unknown key (did you mean beta?) (set by stages.dpo.bta=0.3 on the command line)"
        in problems
    )
    assert any(
        p.startswith("r.yaml: stages.dpo.beta: input should be a valid number, got 'high' (set by") for p in problems
    )


def test_load_round_config_finds_a_shipped_config_by_name_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_round_config("configs/round_dpo_tiny.yaml").policy_stage == "dpo"
    assert load_round_config("round_kto_tiny.yaml", ["stages.kto.beta=0.2"]).stages["kto"].trl_args["beta"] == 0.2


DISTILL = (ROOT / "configs" / "round_distill_tiny.yaml").read_text()


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("    student: tinier\n", "", "stages.distill.student: missing: the model to distil the teacher into"),
        (
            "student: tinier",
            "student: ./no/such/folder",
            "stages.distill.student: './no/such/folder' is not a built-in",
        ),
        ("student: tinier", "student: 'not a hub id!'", "is not a built-in size (tiny, small, tinier), a model folder"),
        ("student: tinier", "student: [tiny]", "stages.distill.student: input should be a valid string"),
        ("student: tinier", "teacher_model_name_or_path: x", "stages.distill.teacher_model_name_or_path: set by the"),
        ("  reward: {", "  sft: {student: tiny}\n  reward: {", "stages.sft.student: unknown key"),
        ("  distill:\n", "  dpo: {}\n  distill:\n", "stages: needs exactly one policy stage"),
        ("beta: 0.5", "beta: 2.0", "stages.distill: DistillationConfig rejects it: beta must be in [0.0, 1.0]"),
        ("min_speedup: 1.0", "min_speedup: 0", "gate.min_speedup: input should be greater than 0"),
    ],
)
def test_a_distill_stage_names_its_student_and_leaves_the_teacher_to_the_round(old, new, message):
    assert old in DISTILL
    with pytest.raises(ConfigError) as caught:
        parse_round_config(DISTILL.replace(old, new, 1), "d.yaml")
    assert str(caught.value).startswith("d.yaml: ") and message in str(caught.value)


def test_a_student_is_a_built_in_size_a_model_folder_or_a_hub_id(tiny_model_dir):
    for student in ("tiny", str(tiny_model_dir), "HuggingFaceTB/SmolLM2-135M-Instruct"):
        config = parse_round_config(DISTILL.replace("student: tinier", f"student: {student}"), "d.yaml")
        assert config.policy_stage == "distill" and config.stages["distill"].student == student
        assert "student" not in config.stages["distill"].trl_args  # the round's key, not DistillationConfig's
    with pytest.raises(ConfigError, match="the folder has no config.json"):
        parse_round_config(DISTILL.replace("student: tinier", f"student: {tiny_model_dir.parent}"), "d.yaml")


def test_only_a_distill_round_can_ask_for_a_speed_up():
    with pytest.raises(ConfigError, match="gate.min_speedup: only a round that distils a student"):
        parse_round_config(TINY.replace("gate: {min_win_rate: 0.55}", "gate: {min_speedup: 2}"), "c.yaml")
