"""The arrows allowed between the parts (ARCHITECTURE.md), checked by parsing every import.

Imports inside functions count too: a lazy import of the training recipe from the app still
ties the app to torch, TRL and the recipe's release cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("storage", "rlhf", "feedback_app", "configs")


@dataclass(frozen=True)
class Rule:
    importer: str
    forbidden: str
    why: str
    allowed_in: tuple[str, ...] = ()


RULES = (
    Rule("storage", "rlhf", "the store is the bottom layer: it knows tables, not training"),
    Rule("storage", "feedback_app", "the store is the bottom layer: it knows tables, not the UI"),
    Rule("configs", "rlhf", "configs are data"),
    Rule("configs", "storage", "configs are data"),
    Rule("configs", "feedback_app", "configs are data"),
    Rule(
        "rlhf",
        "feedback_app",
        "training, models and quality never depend on the UI",
        allowed_in=("rlhf.cli", "rlhf.demo"),
    ),
    Rule("feedback_app", "rlhf.training.recipe", "the app controls rounds as jobs (rlhf.jobs), never runs the recipe"),
    Rule("feedback_app", "rlhf.training.stages", "the app never builds trainers"),
    Rule("feedback_app", "trl", "the app never builds trainers"),
    Rule("rlhf.jobs", "rlhf.training.recipe", "a round runs in its own process; job control only launches it"),
    Rule("rlhf.jobs", "rlhf.training.stages", "job control never builds trainers"),
    Rule("rlhf.models", "rlhf.training", "models and the registry are below training"),
    Rule("rlhf.inference", "rlhf.training", "serving a policy never needs the training code"),
    Rule("rlhf.quality", "rlhf.training.recipe", "quality figures read the store, they do not run rounds"),
    Rule("feedback_app.http_client", "rlhf", "the app's HTTP client serves any script: the demo, tests, benchmarks"),
    *(Rule(package, "tests", "product code never imports the tests") for package in PACKAGES),
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> list[tuple[str, int]]:
    """Every module `path` imports (absolute names, relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
            found.append((base, node.lineno))
    return found


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    out = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            importer = module_name(path, root)
            for imported, line in imported_modules(path, root):
                for rule in RULES:
                    if (
                        within(importer, rule.importer)
                        and within(imported, rule.forbidden)
                        and not any(within(importer, allowed) for allowed in rule.allowed_in)
                    ):
                        out.append(f"{path.relative_to(root)}:{line}: {importer} imports {imported}: {rule.why}")
    return sorted(set(out))


def test_no_forbidden_import_in_the_tree():
    assert violations(ROOT) == []


def test_a_forbidden_import_is_caught_with_file_and_line(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "storage" / "export.py").write_text("import json\n\n\ndef f():\n    from rlhf.models import registry\n")
    (tmp_path / "feedback_app" / "tabs.py").write_text("from rlhf.training import recipe\n")
    (tmp_path / "rlhf" / "jobs").mkdir()
    (tmp_path / "rlhf" / "jobs" / "runner.py").write_text("from ..training.stages import STAGES\n")

    found = violations(tmp_path)

    assert any(v.startswith("storage/export.py:5: storage.export imports rlhf.models") for v in found)
    assert any(v.startswith("feedback_app/tabs.py:1: feedback_app.tabs imports rlhf.training.recipe") for v in found)
    assert any(v.startswith("rlhf/jobs/runner.py:1: rlhf.jobs.runner imports rlhf.training.stages") for v in found)


def test_the_cli_and_demo_may_drive_the_app(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "rlhf" / "demo").mkdir()
    (tmp_path / "rlhf" / "cli.py").write_text("from feedback_app.app import launch\n")
    (tmp_path / "rlhf" / "demo" / "loop.py").write_text("from feedback_app.app import launch\n")
    (tmp_path / "rlhf" / "registry.py").write_text("import feedback_app\n")

    assert [v.split(":")[0] for v in violations(tmp_path)] == ["rlhf/registry.py"]
