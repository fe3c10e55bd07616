"""The one validation layer: pydantic models for every file a user hands us, errors that say where.

Round configs, the app config, import records and export options are all pydantic models
(`Strict`: unknown keys are refused). `validate` turns every problem pydantic finds into one line
`FILE: dotted.key: what is wrong (line N)`, with "did you mean" for a misspelt key, and reports
all of a file's problems at once in one `ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from collections import abc
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PydanticUserError,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic import Strict as PydanticStrict

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
    return problem_lines(located(error, model=model, prefix=prefix), path=path, lines=lines, line=line)


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


def describe(item: Mapping[str, Any], model: type | None, loc: list[str]) -> str:
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


def yaml_typed(annotation: Any) -> Any:
    """`annotation` as a YAML file's value must meet it: no coercion (true is not 1, "3" is not 3), except
    that `1e-3` text is a float and an enum takes its values. Containers keep their shape; leaves turn strict."""
    if annotation is bool:
        return StrictBool
    if annotation is int:
        return StrictInt
    if annotation is str:
        return StrictStr
    if annotation is float:
        return Annotated[float, PydanticStrict(), BeforeValidator(yaml_float)]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return Literal[tuple(member.value for member in annotation)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(yaml_typed(arm) for arm in args)]  # noqa: UP007 (built at run time)
    if origin in (list, abc.Sequence) and len(args) == 1:
        return list[yaml_typed(args[0])]  # type: ignore[misc]  # built at run time
    if origin is dict and len(args) == 2:
        return dict[args[0], yaml_typed(args[1])]  # type: ignore[misc,valid-type]  # built at run time
    return annotation


class _LibraryFields(Strict):
    """Base of `dataclass_model`s: a library's fields may be typed with its own classes."""

    model_config = ConfigDict(arbitrary_types_allowed=True)


def dataclass_model(cls: type, *, name: str | None = None, exclude: Iterable[str] = (), **extra: Any):
    """A Strict pydantic model of a library's config dataclass (e.g. a TRL config): one optional field per
    init field, typed as a YAML value must be (`yaml_typed`). `extra`: more fields, as `create_model` takes them.

    Fields pydantic cannot build a schema for take any value; the dataclass's own `__post_init__`
    still judges them when the caller constructs it. Dump with `exclude_unset=True` for what was given.
    """
    hints = typing.get_type_hints(cls)
    skipped = set(exclude)
    fields: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if not item.init or item.name in skipped:
            continue
        annotation = yaml_typed(hints[item.name])
        try:
            TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
        except PydanticUserError:
            annotation = Any
        fields[item.name] = (annotation, None)
    return create_model(name or cls.__name__, __base__=_LibraryFields, **fields, **extra)


def problem_lines(
    found: Iterable[tuple[str, str]],
    *,
    path: str,
    lines: Mapping[str, int] | None = None,
    line: int | None = None,
    notes: Mapping[str, str] | None = None,
) -> list[str]:
    """`FILE: key: problem (line N)` for (key, problem) pairs, `FILE:LINE: key: problem` for one record at
    `line`; `notes`: key prefix → where it came from instead of a line (e.g. a command-line override)."""
    out = []
    for key, message in found:
        note = next(
            (text for prefix, text in (notes or {}).items() if key == prefix or key.startswith(prefix + ".")), None
        )
        if line is not None:
            out.append(f"{path}:{line}: {key}: {message}")
        elif note is not None:
            out.append(f"{path}: {key}: {message} ({note})")
        else:
            key_line = nearest_line(lines or {}, key)
            out.append(f"{path}: {key}: {message}" + (f" (line {key_line})" if key_line else ""))
    return out


def check_field(annotation: Any, value: Any, *, strict: bool = False):
    """`value` validated against one annotation (e.g. a TRL config field's type), or a ValueError saying why.

    `strict`: no coercion (true is not 1, "3" is not 3), as a YAML file's values must be given.
    """
    config = ConfigDict(strict=True) if strict else None
    try:
        return TypeAdapter(annotation, config=config).validate_python(value)
    except ValidationError as error:
        raise ValueError("; ".join(item["msg"] for item in error.errors(include_url=False))) from None


MAX_DEPTH = 20
"""How deep lists and objects may nest in a free-form value of a user's file."""


def nesting_depth(value: Any, *, limit: int = MAX_DEPTH) -> int:
    """How deep lists, tuples and dicts nest in `value`, counting no further than `limit + 1`.

    Iterative, so a value nested thousands deep is measured rather than crashing with a RecursionError.
    """
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _shallow(value: Any) -> Any:
    if nesting_depth(value) > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return value


FreeForm = Annotated[Any, AfterValidator(_shallow)]
"""A field that takes any JSON value, nested at most MAX_DEPTH levels."""


def located_union(error: ValidationError, *, tag: str, arms: Mapping[str, type[BaseModel]]) -> list[tuple[str, str]]:
    """(dotted key, problem) per error of a union discriminated on the key `tag` (arms: tag value → model).

    The arm pydantic chose is not a key; a missing or unknown tag is the tag's own problem; an unknown
    key says which arm refused it, with "did you mean" or the keys that arm takes.
    """
    out = []
    for item in error.errors(include_url=False):
        if item["type"] == "union_tag_not_found":
            out.append((tag, "missing"))
            continue
        if item["type"] == "union_tag_invalid":
            given = item["input"].get(tag) if isinstance(item["input"], Mapping) else item["input"]
            out.append((tag, f"{shown(given)} is not one of {', '.join(arms)}"))
            continue
        loc = [str(part) for part in item["loc"] if not _is_union_tag(part)]
        arm = arms.get(loc[0]) if loc else None
        if arm is not None:
            name, loc = loc[0], loc[1:]
        key = ".".join(loc) or "(top level)"
        if arm is not None and item["type"] == "extra_forbidden":
            known = field_names(arm, loc[:-1])
            close = difflib.get_close_matches(loc[-1], known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"expected one of: {', '.join(sorted(known))}"
            out.append((key, f"unknown key for {tag} {name!r} ({hint})"))
            continue
        out.append((key, describe(item, arm, loc)))
    return out
