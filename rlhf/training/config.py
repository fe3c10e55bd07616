"""Round configs: YAML files checked on load against TRL's and PEFT's own config dataclasses.

Every mistake is reported as `FILE: dotted.key: what is wrong (line N)`, so a typo in a
stage's TRL field fails before any model is loaded, not an hour into a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import configs
from rlhf.quality.degeneration import DegenerationLimits
from rlhf.training.stages import POLICY_STAGES, STAGES
from storage import validation

STAGE_ORDER = tuple(STAGES)
# Keys a stage may carry besides its TRL config's fields.
STAGE_EXTRAS = {"early_stopping_patience": int, "early_stopping_threshold": float}
# TRL fields the round sets itself.
ROUND_OWNED = {"output_dir"}
ACCELERATE_CONFIGS = configs.ACCELERATE


ConfigError = validation.ConfigError


def trl_config_class(stage: str) -> type:
    return STAGES[stage].config_class()


@dataclass
class StageSpec:
    """One stage: its name, the keyword arguments for its TRL config class, and early stopping."""

    name: str
    trl_args: dict[str, Any]
    early_stopping_patience: int | None = None
    early_stopping_threshold: float = 0.0

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


@dataclass
class FinetuneSpec:
    """LoRA (kwargs for peft.LoraConfig) or full fine-tuning."""

    method: str = "lora"
    lora: dict[str, Any] = field(default_factory=dict)

    def lora_config(self, task_type: str = "CAUSAL_LM"):
        if self.method != "lora":
            return None
        from peft import LoraConfig

        kwargs = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear", **self.lora}
        return LoraConfig(task_type=task_type, **kwargs)


@dataclass
class DataSpec:
    """Which judgments feed the round (storage.export.ExportOptions fields)."""

    min_annotators: int = 1
    since_round: int | str | None = None
    """Only judgments made after that round's snapshot; "parent": after the round that made the parent
    (all judgments when the parent came from no round). Later rounds train on fresh, on-policy pairs."""
    aggregation: str = "majority"
    eval_fraction: float = 0.1
    seed: int = 0


@dataclass
class EvalSpec:
    max_prompts: int = 64
    max_new_tokens: int = 48
    temperature: float = 1.0
    bootstrap: int = 1000
    batch_size: int = 16
    seed: int = 0


@dataclass
class GateSpec:
    """The new version goes live only if it beats its parent by this much (and, optionally, the RM is good enough)."""

    min_win_rate: float = 0.55
    min_reward_accuracy: float | None = None
    block_on_length_bias: bool = False
    degeneration: DegenerationLimits = field(default_factory=DegenerationLimits)


@dataclass
class RoundConfig:
    path: str
    text: str
    name: str
    parent: str | None
    finetune: FinetuneSpec
    data: DataSpec
    stages: dict[str, StageSpec]
    evaluation: EvalSpec
    gate: GateSpec
    accelerate: str | None = None

    @property
    def policy_stage(self) -> str:
        return next(name for name in self.stages if name in POLICY_STAGES)


# --- loading ---------------------------------------------------------------------------


def load_round_config(path: str | Path) -> RoundConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    return parse_round_config(text, str(path))


def parse_round_config(text: str, path: str = "<config>") -> RoundConfig:
    raw, lines = validation.read_yaml(text, path)
    config = _Checker(path, lines).round(raw)
    config.text = text
    return config


class _Checker:
    def __init__(self, path: str, lines: dict[str, int]):
        self.path = path
        self.lines = lines

    def fail(self, key: str, problem: str) -> typing.NoReturn:
        line = self.lines.get(key)
        where = f" (line {line})" if line else ""
        raise ConfigError(f"{self.path}: {key}: {problem}{where}")

    def mapping(self, value, key: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {_describe(value)}")
        return value

    def known_keys(self, value: dict, allowed, key: str) -> None:
        for name in value:
            if name in ROUND_OWNED and key.startswith("stages."):
                self.fail(f"{key}.{name}", "set by the round (each stage writes into the round's work dir)")
            if name not in allowed:
                close = difflib.get_close_matches(str(name), list(allowed), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.fail(f"{key}.{name}" if key else str(name), f"unknown key{hint}")

    def dataclass_section(self, cls, value, key: str):
        value = self.mapping(value, key)
        hints = typing.get_type_hints(cls)
        self.known_keys(value, [f.name for f in dataclasses.fields(cls)], key)
        value = {name: self.typed(item, hints[name], f"{key}.{name}") for name, item in value.items()}
        return cls(**value)

    def typed(self, value, annotation, key: str):
        """`value` if it fits `annotation`; YAML 1.1 reads `1e-3` as text, so such text becomes a float."""
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return validation.validate(annotation, value or {}, path=self.path, lines=self.lines, prefix=key)
        if _matches(value, annotation):
            return value
        if isinstance(value, str) and _matches(0.5, annotation):
            try:
                return float(value)
            except ValueError:
                pass
        self.fail(key, f"expected {_type_name(annotation)}, got {_describe(value)}")

    def round(self, raw) -> RoundConfig:
        raw = self.mapping(raw, "(top level)")
        sections = {"name", "parent", "finetune", "data", "stages", "evaluation", "gate", "accelerate"}
        self.known_keys(raw, sections, "")
        if "stages" not in raw:
            self.fail("stages", "missing (give sft and/or reward, and one of " + ", ".join(POLICY_STAGES) + ")")
        for key in ("name", "parent", "accelerate"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                self.fail(key, f"expected text, got {_describe(raw[key])}")
        finetune = self.finetune(raw.get("finetune"))
        data = self.dataclass_section(DataSpec, raw.get("data"), "data")
        if data.aggregation not in {"majority", "weighted", "drop_flagged"}:
            self.fail("data.aggregation", f"{data.aggregation!r} is not one of majority, weighted, drop_flagged")
        if not 0 < data.eval_fraction < 1:
            self.fail("data.eval_fraction", f"{data.eval_fraction} is not between 0 and 1")
        if data.min_annotators < 1:
            self.fail("data.min_annotators", "must be at least 1")
        if isinstance(data.since_round, str) and data.since_round != "parent":
            self.fail("data.since_round", f"{data.since_round!r} is neither a round id nor 'parent'")
        stages = self.stages(raw["stages"])
        evaluation = self.dataclass_section(EvalSpec, raw.get("evaluation"), "evaluation")
        gate = self.dataclass_section(GateSpec, raw.get("gate"), "gate")
        if not 0 <= gate.min_win_rate <= 1:
            self.fail("gate.min_win_rate", f"{gate.min_win_rate} is not between 0 and 1")
        accelerate = raw.get("accelerate")
        if accelerate is not None and not (ACCELERATE_CONFIGS / f"{accelerate}.yaml").is_file():
            known = sorted(p.stem for p in ACCELERATE_CONFIGS.glob("*.yaml"))
            self.fail("accelerate", f"no configs/accelerate/{accelerate}.yaml (have: {', '.join(known)})")
        policy = next(name for name in stages if name in POLICY_STAGES)
        return RoundConfig(
            path=self.path,
            text="",
            name=raw.get("name") or policy,
            parent=raw.get("parent"),
            finetune=finetune,
            data=data,
            stages=stages,
            evaluation=evaluation,
            gate=gate,
            accelerate=accelerate,
        )

    def finetune(self, value) -> FinetuneSpec:
        value = self.mapping(value, "finetune")
        self.known_keys(value, {"method", "lora"}, "finetune")
        method = value.get("method", "lora")
        if not isinstance(method, str) or method not in {"lora", "full"}:
            self.fail("finetune.method", f"{method!r} is not one of lora, full")
        lora = self.mapping(value.get("lora"), "finetune.lora")
        if lora:
            from peft import LoraConfig

            hints = typing.get_type_hints(LoraConfig)
            fields = [f.name for f in dataclasses.fields(LoraConfig) if f.init]
            self.known_keys(lora, [f for f in fields if f != "task_type"], "finetune.lora")
            lora = {name: self.typed(item, hints[name], f"finetune.lora.{name}") for name, item in lora.items()}
            try:
                FinetuneSpec(method="lora", lora=lora).lora_config()
            except (ValueError, TypeError) as error:
                self.fail("finetune.lora", str(error))
        return FinetuneSpec(method=method, lora=lora)

    def stages(self, value) -> dict[str, StageSpec]:
        value = self.mapping(value, "stages")
        self.known_keys(value, STAGE_ORDER, "stages")
        policy = [name for name in value if name in POLICY_STAGES]
        if len(policy) != 1:
            self.fail(
                "stages",
                "needs exactly one policy stage of "
                + ", ".join(POLICY_STAGES)
                + (f", got {', '.join(policy)}" if policy else ""),
            )
        if policy[0] in {"grpo", "rloo"} and "reward" not in value:
            self.fail(f"stages.{policy[0]}", "needs a reward stage before it (its reward model scores completions)")
        specs = {}
        for name in STAGE_ORDER:
            if name in value:
                specs[name] = self.stage(name, value[name])
        return specs

    def stage(self, name: str, value) -> StageSpec:
        key = f"stages.{name}"
        value = dict(self.mapping(value, key))
        cls = trl_config_class(name)
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        self.known_keys(value, (fields | set(STAGE_EXTRAS)) - ROUND_OWNED, key)
        extras = {}
        for extra, kind in STAGE_EXTRAS.items():
            if extra in value:
                extras[extra] = self.typed(value.pop(extra), kind, f"{key}.{extra}")
        value = {item_key: self.typed(item, hints[item_key], f"{key}.{item_key}") for item_key, item in value.items()}
        spec = StageSpec(name=name, trl_args=value, **extras)
        if spec.early_stopping_patience is not None and value.get("eval_strategy", "no") == "no":
            self.fail(f"{key}.early_stopping_patience", "needs eval_strategy steps or epoch in the same stage")
        try:
            import tempfile
            import warnings

            with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TRL's own defaults use deprecated aliases
                spec.build_args(Path(scratch), has_eval=True)
        except (ValueError, TypeError) as error:
            self.fail(key, f"{cls.__name__} rejects it: {error}")
        return spec


# --- type checks ------------------------------------------------------------------------


def _matches(value, annotation) -> bool:
    if annotation is Any or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return all(_matches(item, args[0]) for item in value) if args else True
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return any(value == member.value for member in annotation)
        if annotation is bool:
            return isinstance(value, bool)
        if annotation is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if annotation is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, annotation)
    return True


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arm) for arm in typing.get_args(annotation))
    if annotation is None or annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in annotation)
    if isinstance(annotation, type):
        return {
            "bool": "true/false",
            "int": "a whole number",
            "float": "a number",
            "str": "text",
            "dict": "a mapping",
            "list": "a list",
        }.get(annotation.__name__, annotation.__name__)
    return str(annotation).replace("typing.", "")


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    if isinstance(value, (dict, list)):
        return type(value).__name__
    return f"{value!r} ({type(value).__name__})"
