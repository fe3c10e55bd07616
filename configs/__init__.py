"""The shipped YAML configs, installed as package data so an installed `rlhf` finds them from any directory."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

ROOT = Path(str(files(__name__)))
ACCELERATE = ROOT / "accelerate"


class MissingConfig(FileNotFoundError):
    """Neither the path as given nor a shipped config of that name exists."""


def resolve(path: str | Path) -> Path:
    """`path` itself when it exists, else the shipped config it names (`configs/app.yaml`, `app.yaml` or `app`)."""
    given = Path(path)
    if given.is_file():
        return given
    name = given.name if given.suffix in (".yaml", ".yml") else f"{given.name}.yaml"
    for candidate in (
        ROOT / given,
        ROOT / Path(*given.parts[1:]) if given.parts[:1] == ("configs",) else None,
        ROOT / name,
    ):
        if candidate is not None and candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.stem for p in ROOT.glob("*.yaml")))
    raise MissingConfig(f"{path}: no such config file (shipped configs: {shipped})")
