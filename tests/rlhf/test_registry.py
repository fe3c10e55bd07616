"""The registry: versions, lineage, the single live flag, crash-safe artifacts, and the `rlhf model` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sqlmodel import select

from rlhf.cli import main
from rlhf.models.registry import (
    artifacts_root,
    get_version,
    lineage,
    live_version,
    publish_version,
    register_artifact,
    register_version,
    retire,
    set_live,
)
from storage.crud import StoreError
from storage.db import session_scope
from storage.models import ModelVersion


def test_artifacts_root_prefers_env_then_sqlite_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("RLHF_ARTIFACTS", raising=False)
    assert artifacts_root(f"sqlite:///{tmp_path}/x/store.db") == tmp_path / "x" / "artifacts"
    assert artifacts_root("postgresql://u@h/db") == Path("artifacts")
    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path / "elsewhere"))
    assert artifacts_root(f"sqlite:///{tmp_path}/store.db") == tmp_path / "elsewhere"


def test_register_records_paths_without_copying(sqlite_url, tiny_model_dir, tiny_lora_dir):
    with session_scope(sqlite_url) as session:
        base = register_artifact(session, source=str(tiny_model_dir), name="base", make_live=True)
        lora = register_artifact(session, source=str(tiny_lora_dir), name="lora", kind="dpo", parent="base")
        hub = register_artifact(session, source="Qwen/Qwen2.5-0.5B-Instruct", name="hub")
    with session_scope(sqlite_url) as session:
        base, lora, hub = (get_version(session, name=n) for n in ("base", "lora", "hub"))
        assert (base.artifact_path, base.base_model, base.is_adapter) == (
            str(tiny_model_dir),
            str(tiny_model_dir),
            False,
        )
        assert (lora.artifact_path, lora.base_model, lora.is_adapter) == (str(tiny_lora_dir), str(tiny_model_dir), True)
        assert lora.parent_id == base.id and lora.kind == "dpo" and lora.status == "ready"
        assert hub.artifact_path == hub.base_model == "Qwen/Qwen2.5-0.5B-Instruct"
        assert live_version(session).name == "base"


def test_register_refuses_bad_sources_and_duplicates(sqlite_url, tiny_model_dir, tmp_path):
    not_a_model = tmp_path / "notes"
    not_a_model.mkdir()
    (not_a_model / "readme.txt").write_text("hello")
    with session_scope(sqlite_url) as session:
        with pytest.raises(StoreError, match="config.json"):
            register_artifact(session, source=str(not_a_model), name="x")
        with pytest.raises(StoreError, match="does not exist"):
            register_artifact(session, source=str(tmp_path / "missing"), name="x")
        with pytest.raises(StoreError, match="hub id"):
            register_artifact(session, source="a/b/c d", name="x")
        register_artifact(session, source=str(tiny_model_dir), name="base")
        with pytest.raises(StoreError, match="already exists"):
            register_artifact(session, source=str(tiny_model_dir), name="base")
        with pytest.raises(StoreError, match="parent"):
            register_artifact(session, source=str(tiny_model_dir), name="child", parent="nosuch")


def _live_names(url):
    with session_scope(url) as session:
        return [v.name for v in session.exec(select(ModelVersion).where(ModelVersion.is_live.is_(True)))]


def test_set_live_moves_the_single_live_flag(db_url, tiny_model_dir):
    with session_scope(db_url) as session:
        for name in ("a", "b", "c"):
            register_version(session, name=name, base_model=str(tiny_model_dir), artifact_path=str(tiny_model_dir))
    assert _live_names(db_url) == []
    for name in ("b", "c", "a", "a"):
        with session_scope(db_url) as session:
            assert set_live(session, name=name).is_live
        assert _live_names(db_url) == [name]


def test_only_ready_versions_go_live_and_live_cannot_be_retired(sqlite_url, tiny_model_dir):
    with session_scope(sqlite_url) as session:
        register_version(session, name="a", base_model="m", artifact_path="m", make_live=True)
        register_version(session, name="b", base_model="m", artifact_path="m")
        with pytest.raises(StoreError, match="live"):
            retire(session, name="a")
        retire(session, name="b")
        with pytest.raises(StoreError, match="retired"):
            set_live(session, name="b")
    assert _live_names(sqlite_url) == ["a"]


def _save_tiny(tiny_model_dir):
    def write(folder: Path) -> None:
        for file in Path(tiny_model_dir).iterdir():
            (folder / file.name).write_bytes(file.read_bytes())

    return write


def test_publish_writes_then_records_ready(sqlite_url, tiny_model_dir, tmp_path):
    root = tmp_path / "artifacts"
    with session_scope(sqlite_url) as session:
        base = register_artifact(session, source=str(tiny_model_dir), name="base")
        version = publish_version(
            session,
            name="sft-1",
            write=_save_tiny(tiny_model_dir),
            root=root,
            base_model=str(tiny_model_dir),
            kind="sft",
            is_adapter=False,
            parent_id=base.id,
            round_id=7,
            data_snapshot={"max_judgment_id": 3},
            metrics={"loss": 1.5},
            make_live=True,
        )
    with session_scope(sqlite_url) as session:
        version = get_version(session, name="sft-1")
        assert version.status == "ready" and version.is_live and version.round_id == 7
        assert version.data_snapshot == {"max_judgment_id": 3} and version.metrics == {"loss": 1.5}
        assert Path(version.artifact_path) == root.resolve() / "sft-1"
        assert (Path(version.artifact_path) / "config.json").is_file()
    assert sorted(p.name for p in root.iterdir()) == ["sft-1"]


def test_crash_mid_write_leaves_no_ready_version_and_no_folder(sqlite_url, tiny_model_dir, tmp_path):
    root = tmp_path / "artifacts"

    def crashing_write(folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    # The caller keeps the failure record (commits after catching).
    with session_scope(sqlite_url) as session, pytest.raises(OSError, match="disk full"):
        publish_version(
            session,
            name="r1",
            write=crashing_write,
            root=root,
            base_model=str(tiny_model_dir),
            kind="dpo",
            is_adapter=True,
            make_live=True,
        )
    with session_scope(sqlite_url) as session:
        failed = get_version(session, name="r1")
        assert failed.status == "failed" and not failed.is_live
        assert "disk full" in failed.metrics["error"]
        assert not Path(failed.artifact_path).exists()
        assert live_version(session) is None
    assert list(root.iterdir()) == []

    # The caller rolls back: nothing at all is recorded.
    with pytest.raises(OSError), session_scope(sqlite_url) as session:
        publish_version(
            session,
            name="r2",
            write=crashing_write,
            root=root,
            base_model=str(tiny_model_dir),
            kind="dpo",
            is_adapter=True,
        )
    with session_scope(sqlite_url) as session:
        assert get_version(session, name="r2") is None
    assert list(root.iterdir()) == []


def test_lineage_is_parents_first(sqlite_url):
    with session_scope(sqlite_url) as session:
        base = register_version(session, name="base", base_model="m", artifact_path="m")
        other = register_version(session, name="other-base", base_model="n", artifact_path="n")
        r1 = register_version(session, name="r1", base_model="m", artifact_path="a1", kind="dpo", parent_id=base.id)
        register_version(session, name="r2", base_model="m", artifact_path="a2", kind="kto", parent_id=r1.id)
        register_version(session, name="r1b", base_model="m", artifact_path="a3", kind="sft", parent_id=base.id)
        register_version(session, name="o1", base_model="n", artifact_path="a4", kind="sft", parent_id=other.id)
        order = [(depth, v.name) for depth, v in lineage(session)]
    assert order == [(0, "base"), (1, "r1"), (2, "r2"), (1, "r1b"), (0, "other-base"), (1, "o1")]


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_model_commands(sqlite_url, tiny_model_dir, tiny_lora_dir, tmp_path, capsys):
    code, out, _ = _run(
        capsys, "model", "register", str(tiny_model_dir), "--name", "base", "--live", "--db", sqlite_url
    )
    assert code == 0 and "registered 'base'" in out and "live" in out
    code, out, _ = _run(
        capsys,
        "model",
        "register",
        str(tiny_lora_dir),
        "--name",
        "r1",
        "--kind",
        "dpo",
        "--parent",
        "base",
        "--db",
        sqlite_url,
    )
    assert code == 0 and "adapter" in out
    code, _, err = _run(capsys, "model", "register", str(tmp_path / "nope"), "--name", "x", "--db", sqlite_url)
    assert code == 2 and "nope" in err and "does not exist" in err

    code, out, _ = _run(capsys, "model", "list", "--db", sqlite_url)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith("base [base] LIVE ready")
    assert lines[1].startswith("└─ r1 [dpo, adapter] ready")

    code, out, _ = _run(capsys, "model", "set-live", "r1", "--db", sqlite_url)
    assert code == 0 and "r1 is now live" in out
    assert _live_names(sqlite_url) == ["r1"]
    code, out, _ = _run(capsys, "model", "list", "--db", sqlite_url)
    assert "LIVE" not in out.splitlines()[0] and "r1 [dpo, adapter] LIVE ready" in out
    code, _, err = _run(capsys, "model", "set-live", "nosuch", "--db", sqlite_url)
    assert code == 2 and "nosuch" in err
    assert _live_names(sqlite_url) == ["r1"]


def test_merge_export_equals_base_plus_adapter(sqlite_url, tiny_model_dir, tiny_lora_dir, tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    with session_scope(sqlite_url) as session:
        register_artifact(session, source=str(tiny_model_dir), name="base")
        register_artifact(session, source=str(tiny_lora_dir), name="r1", kind="dpo", parent="base")
    out = tmp_path / "deploy" / "r1-merged"
    code, stdout, _ = _run(capsys, "model", "export", "r1", "--merge", str(out), "--db", sqlite_url)
    assert code == 0 and str(out) in stdout
    assert not (out / "adapter_config.json").exists()
    assert json.loads((out / "config.json").read_text())["model_type"] == "llama"

    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tiny_lora_dir).eval()
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.arange(3, 40).unsqueeze(0)
    with torch.no_grad():
        merged_logits, reference_logits = merged(ids).logits, reference(ids).logits
        plain_logits = plain(ids).logits
    torch.testing.assert_close(merged_logits, reference_logits, atol=1e-4, rtol=1e-4)
    assert (merged_logits - plain_logits).abs().max() > 1e-2

    code, _, err = _run(capsys, "model", "export", "r1", "--merge", str(out), "--db", sqlite_url)
    assert code == 2 and "already exists" in err


def test_version_kinds_are_base_and_the_stage_table():
    """storage cannot import rlhf, so its VersionKind is a hand-kept copy of the stage names; keep them equal."""
    from rlhf.training.stages import STAGES as table
    from storage.models import VersionKind

    assert {kind.value for kind in VersionKind} == {"base"} | set(table)
