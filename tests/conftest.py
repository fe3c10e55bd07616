"""Shared fixtures: a real SQLite file per test (and PostgreSQL when RLHF_TEST_PG_URL is set), the tiny model."""

from __future__ import annotations

import os
import uuid

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest
from sqlalchemy import create_engine, text

from storage.db import dispose_engines
from storage.migrate import upgrade

PG_URL = os.environ.get("RLHF_TEST_PG_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A migrated store in a real SQLite file."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    yield url
    dispose_engines()


def _fresh_pg_database() -> tuple[str, str]:
    name = f"rlhf_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{name}", name


def _drop_pg_database(name: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> str:
    """A migrated store on every backend under test: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        upgrade(url)
        yield url
        dispose_engines()
        return
    url, name = _fresh_pg_database()
    upgrade(url)
    yield url
    dispose_engines()
    _drop_pg_database(name)


@pytest.fixture
def pg_url() -> str:
    """A fresh migrated PostgreSQL database; skipped without RLHF_TEST_PG_URL (CI sets it)."""
    if not PG_URL:
        pytest.skip("RLHF_TEST_PG_URL is not set")
    url, name = _fresh_pg_database()
    upgrade(url)
    yield url
    dispose_engines()
    _drop_pg_database(name)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The offline tiny policy, built once per test session (read-only: copy it before training)."""
    from rlhf.models.modeling import init_tiny

    return init_tiny(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_lora_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter for the tiny policy with random non-zero B matrices, so it really changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    out = tmp_path_factory.mktemp("adapters") / "tiny-lora"
    peft_model.save_pretrained(out)
    return out
