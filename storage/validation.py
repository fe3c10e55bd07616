"""The one validation layer: pydantic models for every file a user hands us, errors that say where.

Round configs, the app config, import records and export options are all pydantic models
(`Strict`: unknown keys are refused). `validate` turns every problem pydantic finds into one line
`FILE: dotted.key: what is wrong (line N)`, with "did you mean" for a misspelt key, and reports
all of a file's problems at once in one `ConfigError`.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError

from storage.crud import StoreError

MAX_SHOWN_VALUE = 80


class Strict(BaseModel):
    """A section of a file: unknown keys are errors, values are checked as given (YAML's own types)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(StoreError):
    """Every problem of one file, each `FILE: key: problem (line N)`; `str()` is all of them, one per line."""

    def __init__(self, problems: str | Iterable[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def shown(value: Any) -> str:
    """`value` as a short repr, so a 20 MB field is never echoed whole into a message or a log."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_VALUE else f"{text[:MAX_SHOWN_VALUE]}… ({len(text)} characters)"


def read_yaml(text: str, path: str) -> tuple[Any, dict[str, int]]:
    """The parsed document and the line of every dotted key in it."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError([f"{path}: not valid YAML: {getattr(error, 'problem', None) or error}{where}"]) from None
    return raw, key_lines(root)


def key_lines(node, prefix: str = "") -> dict[str, int]:
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            lines[key] = key_node.start_mark.line + 1
            lines.update(key_lines(value_node, key))
    return lines


def validate(
    model: type[BaseModel],
    raw: Any,
    *,
    path: str,
    lines: Mapping[str, int] | None = None,
    line: int | None = None,
    prefix: str = "",
    context: dict | None = None,
):
    """`model` built from `raw`, or a ConfigError naming every problem (`line`: one record's line in its file)."""
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as error:
        raise ConfigError(problems(error, model=model, path=path, lines=lines, line=line, prefix=prefix)) from None


def problems(
    error: ValidationError,
    *,
    model: type | None,
    path: str,
    lines: Mapping[str, int] | None = None,
    line: int | None = None,
    prefix: str = "",
) -> list[str]:
    """One `FILE: key: problem (line N)` per pydantic error (`FILE:LINE: key: problem` for a record)."""
    out = []
    for key, message in located(error, model=model, prefix=prefix):
        where_line = nearest_line(lines or {}, key)
        if line is not None:
            out.append(f"{path}:{line}: {key}: {message}")
        else:
            out.append(f"{path}: {key}: {message}" + (f" (line {where_line})" if where_line else ""))
    return out


def located(error: ValidationError, *, model: type | None, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, problem) per pydantic error, for callers that place the key themselves (e.g. overrides)."""
    out = []
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"] if not _is_union_tag(part)]
        key = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
        out.append((key, describe(item, model, loc)))
    return out


def nearest_line(lines: Mapping[str, int], key: str) -> int | None:
    """The line of `key`, else of the closest enclosing key that is in the file (a missing key's section)."""
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return None


def describe(item: dict, model: type | None, loc: list[str]) -> str:
    kind, value = item["type"], item.get("input")
    if kind == "extra_forbidden":
        known = field_names(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1) if known else []
        return "unknown key" + (f" (did you mean {close[0]}?)" if close else "")
    if kind == "missing":
        return "missing"
    message = item["msg"]
    if message.startswith("Value error, "):
        return message[len("Value error, ") :]
    if kind in ("literal_error", "enum"):
        expected = item.get("ctx", {}).get("expected", "")
        return f"{shown(value)} is not one of {expected.replace(chr(39), '')}"
    return f"{message[0].lower()}{message[1:]}, got {shown(value)}"


def field_names(model: type | None, loc: list[str]) -> list[str]:
    """The keys allowed at `loc` inside `model` (for "did you mean"), walking nested models and dicts."""
    current: Any = model
    for part in loc:
        current = _inner_model(current, part)
        if current is None:
            return []
    current = _as_model(current)
    if current is None:
        return []
    return [f.alias or name for name, f in current.model_fields.items()]


def _inner_model(annotation: Any, part: str):
    origin = typing.get_origin(annotation)
    if origin in (dict, Mapping):
        return typing.get_args(annotation)[1]
    if origin in (list, tuple) and part.isdigit():
        return typing.get_args(annotation)[0]
    model = _as_model(annotation)
    if model is not None:
        field = model.model_fields.get(part) or next((f for f in model.model_fields.values() if f.alias == part), None)
        return field.annotation if field is not None else None
    return None


def _as_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arm in typing.get_args(annotation):
        if isinstance(arm, type) and issubclass(arm, BaseModel):
            return arm
    return None


def _is_union_tag(part: Any) -> bool:
    """pydantic puts the chosen arm of a union in `loc` (`'function-after[...]'`, a tag value): not a key."""
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def yaml_float(value: Any) -> Any:
    """YAML 1.1 reads `1e-3` (no dot) as text: such text is the float it spells; anything else is left as given."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


YamlFloat = Annotated[float, BeforeValidator(yaml_float)]
"""A float field of a YAML file, where `1e-3` counts as a number."""


def check_field(annotation: Any, value: Any, *, strict: bool = False):
    """`value` validated against one annotation (e.g. a TRL config field's type), or a ValueError saying why.

    `strict`: no coercion (true is not 1, "3" is not 3), as a YAML file's values must be given.
    """
    config = ConfigDict(strict=True) if strict else None
    try:
        return TypeAdapter(annotation, config=config).validate_python(value)
    except ValidationError as error:
        raise ValueError("; ".join(item["msg"] for item in error.errors(include_url=False))) from None
