"""`rlhf db check` sees a ready version's artifact damaged or deleted, by the sha256 recorded at registration."""

from __future__ import annotations

import shutil

import pytest

from rlhf.cli import main
from rlhf.integrity import check_store
from rlhf.models.registry import register_artifact
from storage.db import session_scope


@pytest.fixture
def registered(sqlite_url, tiny_model_dir, tmp_path):
    folder = tmp_path / "v0"
    shutil.copytree(tiny_model_dir, folder)
    with session_scope(sqlite_url) as session:
        version = register_artifact(session, source=str(folder), name="v0", make_live=True)
        assert set(version.artifact_digests) >= {"config.json", "model.safetensors"}
        register_artifact(session, source="org/some-model", name="hub")
    return sqlite_url, folder


def test_an_untouched_artifact_is_consistent(registered, capsys):
    url, _ = registered
    assert check_store(url).ok
    assert main(["db", "check", "--db", url]) == 0
    assert "store is consistent" in capsys.readouterr().out


def test_one_changed_byte_is_reported_with_version_and_file(registered, capsys):
    url, folder = registered
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    assert check_store(url).problems == [
        f"version v0: model.safetensors in its artifact {folder} is changed since it was registered (sha256 differs)"
    ]
    assert main(["db", "check", "--db", url]) == 2
    captured = capsys.readouterr()
    assert "problem: version v0: model.safetensors" in captured.out
    assert captured.err == "rlhf: error: 1 problem(s) found\n"


def test_a_deleted_file_is_reported(registered):
    url, folder = registered
    (folder / "config.json").unlink()
    assert check_store(url).problems == [
        f"version v0: config.json in its artifact {folder} is missing since it was registered"
    ]
