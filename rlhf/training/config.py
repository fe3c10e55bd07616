"""Round configs: YAML files checked on load against TRL's and PEFT's own config dataclasses.

Every mistake is reported as `FILE: dotted.key: what is wrong (line N)`, all of a file's mistakes at
once, so a typo in a stage's TRL field fails before any model is loaded, not an hour into a run.
The file's schema is pydantic (`storage.validation`); each stage's section is a model built from
its TRL config class, so the YAML takes exactly the fields that TRL version has.
"""

from __future__ import annotations

import copy
import functools
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, StrictInt, StrictStr, ValidationError, create_model

import configs
from rlhf.quality.degeneration import DegenerationLimits
from rlhf.training.stages import POLICY_STAGES, STAGES
from storage import validation
from storage.export import DataOptions, ExportOptions
from storage.validation import Strict, YamlFloat

STAGE_ORDER = tuple(STAGES)
ROUND_OWNED = {
    "output_dir": "set by the round (each stage writes into the round's work dir)",
    "teacher_model_name_or_path": "set by the round (the teacher is the round's policy: its parent, after any warmup)",
}
"""TRL fields the round sets itself, and why."""
STAGE_EXTRAS = ("early_stopping_patience", "early_stopping_threshold", "student")
"""A stage's keys that are the round's, not its TRL config's."""
ACCELERATE_CONFIGS = configs.ACCELERATE

ConfigError = validation.ConfigError


def trl_config_class(stage: str) -> type:
    return STAGES[stage].config_class()


@dataclass
class StageSpec:
    """One stage: its name, the keyword arguments for its TRL config class, early stopping, and for a stage that
    trains a student (distill) the student to start from."""

    name: str
    trl_args: dict[str, Any]
    early_stopping_patience: int | None = None
    early_stopping_threshold: float = 0.0
    student: str | None = None

    @property
    def config_class(self) -> type:
        return trl_config_class(self.name)

    def build_args(self, output_dir: Path, *, has_eval: bool):
        """The TRL config for a run into `output_dir`: bf16 on a GPU, CPU otherwise, unless the YAML says."""
        import torch

        kwargs = dict(self.trl_args)
        if torch.cuda.is_available():
            kwargs.setdefault("bf16", torch.cuda.is_bf16_supported())
        else:
            kwargs.setdefault("bf16", False)
            kwargs.setdefault("use_cpu", True)
        kwargs.setdefault("report_to", "none")
        kwargs.setdefault("save_strategy", "no")
        if not has_eval:
            kwargs["eval_strategy"] = "no"
        if self.early_stopping_patience is not None and has_eval:
            kwargs.setdefault("load_best_model_at_end", True)
            kwargs.setdefault("metric_for_best_model", "eval_loss")
            kwargs["save_strategy"] = kwargs.get("eval_strategy", "no")
            if "eval_steps" in kwargs:
                kwargs.setdefault("save_steps", kwargs["eval_steps"])
        return self.config_class(output_dir=str(output_dir), **kwargs)


class FinetuneSpec(Strict):
    """LoRA (`lora`: keyword arguments for peft.LoraConfig, checked against its fields) or full fine-tuning."""

    method: Literal["lora", "full"] = "lora"
    lora: dict[str, Any] = Field(default_factory=dict)

    def lora_config(self, task_type: str = "CAUSAL_LM"):
        if self.method != "lora":
            return None
        from peft import LoraConfig

        kwargs = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear", **self.lora}
        return LoraConfig(task_type=task_type, **kwargs)


class EvalSpec(Strict):
    """How the child is compared with its parent on held-out prompts."""

    model_config = ConfigDict(strict=True)

    max_prompts: int = Field(64, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    temperature: YamlFloat = Field(1.0, gt=0)
    top_p: YamlFloat = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    """top_p / top_k (0: no cut) of the compared answers (win-rate, degeneration, examples): set them to what the
    app serves. With either cut, the KL is estimated from separate samples of the whole distribution."""
    batch_size: int = Field(16, ge=1)
    seed: int = 0


class GateSpec(Strict):
    """The new version goes live only if it beats its parent by this much (and, optionally, the RM is good enough)."""

    model_config = ConfigDict(strict=True)

    min_win_rate: YamlFloat = Field(0.55, ge=0, le=1)
    min_reward_accuracy: YamlFloat | None = Field(None, ge=0, le=1)
    min_speedup: YamlFloat | None = Field(None, gt=0)
    """A distilled student must decode at least this many times faster than its teacher (None: not checked)."""
    block_on_length_bias: bool = False
    degeneration: DegenerationLimits = Field(default_factory=DegenerationLimits)
    publish: bool = True
    """False: a version that passes stays ready, not live (a sweep's trials; `rlhf sweep --live` picks one)."""


@dataclass
class RoundConfig:
    path: str
    text: str
    name: str
    parent: str | None
    finetune: FinetuneSpec
    data: DataOptions
    stages: dict[str, StageSpec]
    evaluation: EvalSpec
    gate: GateSpec
    accelerate: str | None = None
    description: str | None = None
    """One line for whoever picks a config in the app (`description:` in the YAML)."""

    @property
    def policy_stage(self) -> str:
        return next(name for name in self.stages if name in POLICY_STAGES)

    @property
    def data_kinds(self) -> list[str]:
        """The exports a round takes: each stage's kind, plus preference pairs and prompts for evaluation."""
        return sorted({self.data_kind(name) for name in self.stages} | {"preference", "prompt"})

    def data_kind(self, stage: str) -> str:
        return STAGES[stage].data_kind

    def export_options(
        self, kind: str, parent_round_id: int | None, max_judgment_id: int | None, quality: dict
    ) -> ExportOptions:
        """The export of `kind` a round of this config takes (the Rounds tab previews the same one)."""
        since_round = parent_round_id if self.data.since_round == "parent" else self.data.since_round
        return ExportOptions(
            kind=kind,
            test_fraction=self.data.test_fraction,
            seed=self.data.seed,
            aggregation=self.data.aggregation,
            min_annotators=self.data.min_annotators,
            since_round=since_round,
            max_judgment_id=max_judgment_id,
            criterion=self.data.criterion if kind == "preference" else None,  # the other kinds have no criteria
            adversarial_weight=self.data.adversarial_weight,
            **quality,
        )


# --- the file's schema ------------------------------------------------------------------------


@functools.cache
def round_file_model():
    """The whole file as one pydantic model; built on first use because it imports TRL and PEFT."""
    from peft import LoraConfig

    stage_extras = {
        "early_stopping_patience": (StrictInt | None, Field(None, ge=1)),
        "early_stopping_threshold": (YamlFloat, Field(0.0, ge=0)),
    }
    student = {"student": (StrictStr | None, Field(None, min_length=1))}
    stage_models = {
        name: validation.dataclass_model(
            trl_config_class(name),
            name=f"stages.{name}",
            exclude=ROUND_OWNED,
            **stage_extras,
            **(student if stage.trains_student else {}),
        )
        for name, stage in STAGES.items()
    }
    stages = create_model(
        "stages", __base__=Strict, **{name: (model | None, None) for name, model in stage_models.items()}
    )
    lora = validation.dataclass_model(LoraConfig, name="finetune.lora", exclude={"task_type"})
    finetune = create_model(
        "finetune", __base__=Strict, method=(Literal["lora", "full"], "lora"), lora=(lora | None, None)
    )
    return create_model(
        "round",
        __base__=Strict,
        name=(StrictStr | None, None),
        description=(StrictStr | None, Field(None, min_length=1, max_length=200, pattern=r"^[^\n]*$")),
        parent=(StrictStr | None, None),
        finetune=(finetune | None, None),
        data=(DataOptions | None, None),
        stages=(stages, ...),
        evaluation=(EvalSpec | None, None),
        gate=(GateSpec | None, None),
        accelerate=(StrictStr | None, None),
    )


# --- loading ---------------------------------------------------------------------------------


def load_round_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RoundConfig:
    """The round config in `path` (or the shipped one of that name), with `key=value` overrides applied."""
    try:
        resolved = configs.resolve(path)
        text = Path(resolved).read_text()
    except configs.MissingConfig as error:
        raise ConfigError(f"{path}: cannot read ({error})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    return parse_round_config(text, str(path), overrides)


def parse_round_config(text: str, path: str = "<config>", overrides: list[str] | tuple[str, ...] = ()) -> RoundConfig:
    """Check the whole file and raise one ConfigError listing every problem, or return the config.

    With `overrides` (`stages.dpo.beta=0.3`, values read as YAML), the returned config's `text` is the
    merged YAML, so the round stored in the database replays exactly what ran.
    """
    raw, lines = validation.read_yaml(text, path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of sections, got {type(raw).__name__}")
    notes: dict[str, str] = {}
    if overrides:
        raw, notes = apply_overrides(raw, overrides, path)
        text = f"# {path} with {' '.join(overrides)}\n" + yaml.safe_dump(raw, sort_keys=False)
    found = _cross_checks(raw)
    model = round_file_model()
    parsed = None
    try:
        parsed = model.model_validate(_without_round_owned(raw))
    except ValidationError as error:
        found = validation.located(error, model=model) + found
    if parsed is not None and not found:
        found = _library_checks(parsed)
    if found:
        raise ConfigError(validation.problem_lines(found, path=path, lines=lines, notes=notes))
    return _round_config(parsed, path, text)


def apply_overrides(raw: dict, overrides, path: str) -> tuple[dict, dict[str, str]]:
    """`raw` with each `dotted.key=value` set (value read as YAML, so `0.3` is a number, `null` is None)."""
    merged = copy.deepcopy(raw)
    notes, problems = {}, []
    for override in overrides:
        key, sep, value = override.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(
                f"{path}: override {validation.shown(override)}: expected key=value, e.g. stages.dpo.beta=0.3"
            )
            continue
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        section = merged
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = section.setdefault(part, {})
            if child is None:
                child = section[part] = {}
            if not isinstance(child, dict):
                problems.append(f"{path}: {'.'.join(parts[: depth + 1])}: is not a section, cannot set {key}")
                break
            section = child
        else:
            section[parts[-1]] = parsed
            notes[key] = f"set by {key}={value} on the command line"
    if problems:
        raise ConfigError(problems)
    return merged, notes


def _without_round_owned(raw: dict) -> dict:
    stages = raw.get("stages")
    if not isinstance(stages, dict):
        return raw
    cleaned = {
        name: {k: v for k, v in body.items() if k not in ROUND_OWNED} if isinstance(body, dict) else body
        for name, body in stages.items()
    }
    return {**raw, "stages": cleaned}


def _cross_checks(raw: dict) -> list[tuple[str, str]]:
    """Problems across keys, found on the raw file so they are reported with the type errors."""
    found = []
    stages = raw.get("stages")
    if isinstance(stages, dict):
        for name, body in stages.items():
            if not isinstance(body, dict):
                continue
            for key in sorted(set(ROUND_OWNED) & set(body)):
                found.append((f"stages.{name}.{key}", ROUND_OWNED[key]))
            if body.get("early_stopping_patience") is not None and body.get("eval_strategy", "no") == "no":
                found.append(
                    (f"stages.{name}.early_stopping_patience", "needs eval_strategy steps or epoch in the same stage")
                )
        policy = [name for name in stages if name in POLICY_STAGES]
        if len(policy) != 1:
            found.append(
                (
                    "stages",
                    "needs exactly one policy stage of "
                    + ", ".join(POLICY_STAGES)
                    + (f", got {', '.join(policy)}" if policy else ""),
                )
            )
        for name in policy:
            if STAGES[name].takes_reward_funcs and "reward" not in stages:
                found.append((f"stages.{name}", "needs a reward stage before it (its reward model scores completions)"))
            body = stages[name]
            if STAGES[name].trains_student and isinstance(body, dict | None):
                found += _student_problems(name, (body or {}).get("student"))
    gate = raw.get("gate")
    trains_student = isinstance(stages, dict) and any(STAGES[n].trains_student for n in stages if n in STAGES)
    if isinstance(gate, dict) and gate.get("min_speedup") is not None and not trains_student:
        found.append(("gate.min_speedup", "only a round that distils a student (stages.distill) measures a speed-up"))
    accelerate = raw.get("accelerate")
    if isinstance(accelerate, str) and not (ACCELERATE_CONFIGS / f"{accelerate}.yaml").is_file():
        known = sorted(p.stem for p in ACCELERATE_CONFIGS.glob("*.yaml"))
        found.append(("accelerate", f"no configs/accelerate/{accelerate}.yaml (have: {', '.join(known)})"))
    return found


def _student_problems(stage: str, student: object) -> list[tuple[str, str]]:
    """A distill stage names its student: a built-in size, a model folder here, or a hub id (not looked up)."""
    from rlhf.models.modeling import SIZES
    from rlhf.models.registry import HUB_ID

    key = f"stages.{stage}.student"
    sizes = ", ".join(SIZES)
    if student is None:
        return [
            (
                key,
                "missing: the model to distil the teacher into, a built-in size "
                f"({sizes}), a model folder or a hub id sharing the teacher's vocabulary",
            )
        ]
    if not isinstance(student, str) or not student or student in SIZES:
        return []  # the schema reports a wrong type
    folder = Path(student).expanduser()
    if folder.is_dir():
        return [] if (folder / "config.json").is_file() else [(key, f"{student}: the folder has no config.json")]
    if student.startswith((".", "/", "~")) or not HUB_ID.fullmatch(student):
        return [(key, f"{student!r} is not a built-in size ({sizes}), a model folder or a hub id like 'org/name'")]
    return []


def _library_checks(parsed) -> list[tuple[str, str]]:
    """What TRL's and PEFT's own constructors refuse (their __post_init__ checks values against each other)."""
    found = []
    for name, spec in _stage_specs(parsed).items():
        try:
            with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TRL's own defaults use deprecated aliases
                spec.build_args(Path(scratch), has_eval=True)
        except (ValueError, TypeError) as error:
            found.append((f"stages.{name}", f"{spec.config_class.__name__} rejects it: {error}"))
    finetune = _finetune(parsed)
    if finetune.lora:
        try:
            finetune.lora_config()
        except (ValueError, TypeError) as error:
            found.append(("finetune.lora", str(error)))
    return found


def _stage_specs(parsed) -> dict[str, StageSpec]:
    specs = {}
    for name in STAGE_ORDER:
        section = getattr(parsed.stages, name)
        if section is None:
            continue
        args = section.model_dump(exclude_unset=True)
        extras = {key: args.pop(key) for key in STAGE_EXTRAS if key in args}
        specs[name] = StageSpec(name=name, trl_args=args, **extras)
    return specs


def _finetune(parsed) -> FinetuneSpec:
    if parsed.finetune is None:
        return FinetuneSpec()
    lora = parsed.finetune.lora.model_dump(exclude_unset=True) if parsed.finetune.lora is not None else {}
    return FinetuneSpec(method=parsed.finetune.method, lora=lora)


def _round_config(parsed, path: str, text: str) -> RoundConfig:
    stages = _stage_specs(parsed)
    policy = next(name for name in stages if name in POLICY_STAGES)
    return RoundConfig(
        path=path,
        text=text,
        name=parsed.name or policy,
        parent=parsed.parent,
        finetune=_finetune(parsed),
        data=parsed.data or DataOptions(),
        stages=stages,
        evaluation=parsed.evaluation or EvalSpec(),
        gate=parsed.gate or GateSpec(),
        accelerate=parsed.accelerate,
        description=parsed.description,
    )
