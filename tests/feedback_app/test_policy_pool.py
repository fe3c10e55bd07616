"""The app's policy pool: LoRA versions switched on one loaded base, LRU-bounded, live-synced, thread-safe."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

from rlhf.inference.policy_pool import TOKENIZER_FILES, PolicyPool
from rlhf.models.registry import get_version, register_artifact, set_live
from storage.db import session_scope

PROMPTS = ["Explain honey bees to a child.", "Write a short note about a rainy morning."]
SAMPLING = {"max_new_tokens": 12, "temperature": 1.0, "top_p": 1.0, "seed": 3}


@pytest.fixture
def store(sqlite_url, tiny_model_dir, tiny_lora_dir):
    with session_scope(sqlite_url) as session:
        register_artifact(session, source=str(tiny_model_dir), name="base", make_live=True)
        register_artifact(session, source=str(tiny_lora_dir), name="r1", kind="dpo", parent="base")
        register_artifact(session, source=str(tiny_lora_dir), name="r1-copy", kind="dpo", parent="base")
    return sqlite_url


def _versions(url, *names):
    with session_scope(url) as session:
        return [get_version(session, name=name) for name in names]


def test_switching_adapter_changes_output_and_switching_back_restores_it(store):
    base, r1 = _versions(store, "base", "r1")
    pool = PolicyPool(max_loaded=4, device="cpu")
    pool.activate(base)
    name, base_texts = pool.generate(PROMPTS, **SAMPLING)
    assert name == "base"
    pool.activate(r1)
    name, adapter_texts = pool.generate(PROMPTS, **SAMPLING)
    assert name == "r1" and pool.active_name() == "r1"
    assert adapter_texts != base_texts
    pool.activate(base)
    assert pool.generate(PROMPTS, **SAMPLING) == ("base", base_texts)
    pool.activate(r1)
    assert pool.generate(PROMPTS, **SAMPLING) == ("r1", adapter_texts)
    assert len(pool._bases) == 1, "the adapter must sit on the already loaded base, not a second copy"


def test_lru_bound_evicts_least_recently_used_and_deletes_its_adapter(store):
    base, r1, r1_copy = _versions(store, "base", "r1", "r1-copy")
    pool = PolicyPool(max_loaded=2, device="cpu")
    pool.activate(base)
    pool.activate(r1)
    _, r1_texts = pool.generate(PROMPTS, **SAMPLING)
    pool.activate(base)
    pool.activate(r1_copy)
    assert pool.loaded_names() == ["base", "r1-copy"]
    model = next(iter(pool._bases.values())).model
    assert list(model.peft_config) == [f"version_{r1_copy.id}"]
    assert pool.generate(PROMPTS, **SAMPLING) == ("r1-copy", r1_texts)
    pool.activate(r1)
    assert pool.loaded_names() == ["r1-copy", "r1"]
    assert pool.generate(PROMPTS, **SAMPLING) == ("r1", r1_texts)


def test_sync_with_store_serves_the_new_live_version(store):
    pool = PolicyPool(device="cpu")
    with pytest.raises(RuntimeError, match="no version is active"):
        pool.generate(PROMPTS, **SAMPLING)
    assert pool.sync_with_store(store) is True
    assert pool.active_name() == "base"
    assert pool.sync_with_store(store) is False
    with session_scope(store) as session:
        set_live(session, name="r1")
    assert pool.sync_with_store(store) is True
    assert pool.generate(PROMPTS, **SAMPLING)[0] == "r1"
    with session_scope(store) as session:
        set_live(session, name="base")
    stop = pool.watch(store, interval_s=0.05)
    try:
        for _ in range(100):
            if pool.active_name() == "base":
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
    assert pool.active_name() == "base"


def test_concurrent_requests_never_generate_with_a_half_switched_model(store):
    base, r1 = _versions(store, "base", "r1")
    pool = PolicyPool(device="cpu")
    expected = {}
    for version in (base, r1):
        expected[version.name] = pool.generate(PROMPTS, version=version, **SAMPLING)[1]
    results, errors = [], []

    def worker(version):
        try:
            for _ in range(8):
                results.append((version.name, pool.generate(PROMPTS, version=version, **SAMPLING)))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(v,)) for v in (base, r1, base, r1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 32
    for asked, (served, texts) in results:
        assert served == asked and texts == expected[asked]


def test_an_adapter_missing_weights_is_refused_and_the_current_version_keeps_serving(store, tiny_lora_dir, tmp_path):
    broken = tmp_path / "broken-lora"
    shutil.copytree(tiny_lora_dir, broken)
    config = json.loads((broken / "adapter_config.json").read_text())
    config["target_modules"] = ["q_proj", "k_proj", "v_proj"]
    (broken / "adapter_config.json").write_text(json.dumps(config))
    with session_scope(store) as session:
        register_artifact(session, source=str(broken), name="broken", kind="dpo", parent="base")
    base, r1, broken_version = _versions(store, "base", "r1", "broken")
    pool = PolicyPool(device="cpu")
    pool.activate(r1)
    _, before = pool.generate(PROMPTS, **SAMPLING)
    with pytest.raises(ValueError, match="k_proj"):
        pool.activate(broken_version)
    assert pool.loaded_names() == ["r1"]
    assert pool.generate(PROMPTS, **SAMPLING) == ("r1", before)
    pool.activate(base)
    _, base_before = pool.generate(PROMPTS, **SAMPLING)
    with pytest.raises(ValueError, match="k_proj"):
        pool.activate(broken_version)
    assert pool.generate(PROMPTS, **SAMPLING) == ("base", base_before)


def test_versions_with_the_same_tokenizer_files_share_one_tokenizer_and_a_changed_one_gets_its_own(
    sqlite_url, tiny_model_dir, tiny_lora_dir, tmp_path
):

    folders = {}
    for name in ("same-a", "same-b", "other"):
        folders[name] = tmp_path / name
        shutil.copytree(tiny_lora_dir, folders[name])
        for file in tiny_model_dir.iterdir():
            if file.name in TOKENIZER_FILES:
                shutil.copy(file, folders[name])
    template = folders["other"] / "chat_template.jinja"
    template.write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}")
    with session_scope(sqlite_url) as session:
        register_artifact(session, source=str(tiny_model_dir), name="base", make_live=True)
        for name, folder in folders.items():
            register_artifact(session, source=str(folder), name=name, kind="dpo", parent="base")
    pool = PolicyPool(max_loaded=4, device="cpu")
    for version in _versions(sqlite_url, "base", "same-a", "same-b", "other"):
        pool.activate(version)
    base, same_a, same_b, other = (pool._loaded[n].tokenizer for n in ("base", "same-a", "same-b", "other"))
    assert same_a is same_b is base  # the copies hold the base's own files
    assert other is not same_a and "[user]" in other.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    )
