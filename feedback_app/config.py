"""The app's settings from configs/app.yaml, checked on load; errors name the file and the key.

Sections: `server` (host, port), `queue` (overlap, mix, filling, quality checks
mixed in, active selection), `ui` (timer),
`rounds` (which round configs the Rounds tab offers).
The `generation:` section belongs to rlhf.inference.generation and is read there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rlhf.quality.selection import SCORERS
from storage.crud import StoreError
from storage.priority import SELECTIONS
from storage.queue import ITEM_KINDS

DEFAULT_PATH = Path("configs/app.yaml")


class ConfigError(StoreError):
    """A setting in the app config that is missing, unknown or out of range."""


@dataclass(frozen=True)
class AppConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    session_hours: float = 12.0  # a login lasts this long (feedback_app.sessions)
    overlap: int = 2
    mix: dict[str, float] = field(
        default_factory=lambda: {"pairwise": 0.5, "rating": 0.2, "ranking": 0.2, "correction": 0.1}
    )
    fill_prompts: int = 16
    low_water: int = 8
    fill_interval_s: float = 30.0
    gold_rate: float = 0.0  # quality checks are off unless configured (configs/app.yaml: 5% each)
    swap_rate: float = 0.0
    selection: str = "random"
    selection_scorer: str = "reward_model"
    timer_s: float = 2.0
    log_tail_lines: int = 20
    round_configs: str = "configs/round_*.yaml"
    generation: dict[str, Any] = field(default_factory=dict)


_SECTIONS = {
    "server": {"host": str, "port": int, "session_hours": float},
    "queue": {
        "overlap": int,
        "mix": dict,
        "fill_prompts": int,
        "low_water": int,
        "fill_interval_s": float,
        "gold_rate": float,
        "swap_rate": float,
        "selection": str,
        "selection_scorer": str,
    },
    "ui": {"timer_s": float, "log_tail_lines": int},
    "rounds": {"round_configs": str},
}
_MINIMUM = {
    "port": 0,
    "overlap": 1,
    "fill_prompts": 1,
    "low_water": 0,
    "fill_interval_s": 0.5,
    "timer_s": 0.2,
    "log_tail_lines": 1,
    "gold_rate": 0.0,
    "swap_rate": 0.0,
    "session_hours": 0.01,
}
_MAXIMUM = {"port": 65535, "gold_rate": 1.0, "swap_rate": 1.0}
_CHOICES = {"selection": SELECTIONS, "selection_scorer": SCORERS}


def _check(where: str, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    if key in _MINIMUM and value < _MINIMUM[key]:
        raise ConfigError(f"{where}.{key}: must be >= {_MINIMUM[key]}, got {value!r}")
    if key in _MAXIMUM and value > _MAXIMUM[key]:
        raise ConfigError(f"{where}.{key}: must be <= {_MAXIMUM[key]}, got {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"{where}.{key}: {value!r} is not one of {', '.join(_CHOICES[key])}")
    if key == "mix":
        for kind_name, share in value.items():
            if kind_name not in ITEM_KINDS:
                raise ConfigError(f"{where}.mix.{kind_name}: unknown kind (expected {', '.join(ITEM_KINDS)})")
            if isinstance(share, bool) or not isinstance(share, (int, float)) or share < 0:
                raise ConfigError(f"{where}.mix.{kind_name}: expected a share >= 0, got {share!r}")
        if not any(value.values()):
            raise ConfigError(f"{where}.mix: at least one kind needs a share above 0")
        value = {k: float(v) for k, v in value.items()}
    return value


def load_app_config(path: Path | str = DEFAULT_PATH, **overrides: Any) -> AppConfig:
    """Read and check the app config; a missing file means the defaults. `overrides` win (e.g. --port)."""
    path = Path(path)
    raw = {}
    if path.is_file():
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections")
    values: dict[str, Any] = {}
    for section, body in raw.items():
        if section == "generation":
            values["generation"] = body or {}
            continue
        if section not in _SECTIONS:
            raise ConfigError(f"{path}: {section}: unknown section (known: {', '.join([*_SECTIONS, 'generation'])})")
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: {section}: expected a mapping")
        for key, value in body.items():
            if key not in _SECTIONS[section]:
                raise ConfigError(f"{path}: {section}.{key}: unknown key (known: {', '.join(_SECTIONS[section])})")
            values[key] = _check(f"{path}: {section}", key, value, _SECTIONS[section][key])
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("gold_rate", AppConfig.gold_rate) + values.get("swap_rate", AppConfig.swap_rate) > 1.0:
        raise ConfigError(f"{path}: queue.gold_rate + queue.swap_rate: must add up to at most 1")
    return AppConfig(**values)
