"""Loading policies by hub id or local path, and building the offline tiny policy.

The tiny model is a random-init Llama with a byte-level BPE tokenizer trained in
process on bundled text, so tests, CI and the demo never touch a model hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from storage.files import save_atomically

CORPUS = Path(__file__).parent / "corpus.txt"

# ChatML, with {% generation %} markers so TRL can train on assistant tokens only.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|im_end|>", "<|im_start|>", "<|unk|>"]


@dataclass(frozen=True)
class TinySize:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    vocab_size: int


SIZES = {
    "tiny": TinySize(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, vocab_size=512),
    "small": TinySize(
        hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4, vocab_size=2048
    ),
    "tinier": TinySize(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=512
    ),
}
"""Built-in sizes; each also names a distillation student (`build_student`), built over its teacher's tokenizer."""


def build_tokenizer(vocab_size: int, corpus: Path = CORPUS) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `corpus`, with pad/eos tokens and a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<|unk|>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(corpus)], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<|pad|>",
        eos_token="<|im_end|>",
        bos_token=None,
        unk_token="<|unk|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def build_tiny_model(size: str = "tiny", seed: int = 0) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """A random-init Llama and its tokenizer, built in process."""
    if size not in SIZES:
        raise ValueError(f"size: {size!r} is not one of {', '.join(SIZES)}")
    tokenizer = build_tokenizer(SIZES[size].vocab_size)
    return _random_llama(SIZES[size], tokenizer, seed, len(tokenizer)), tokenizer


def build_student(size: str, tokenizer: PreTrainedTokenizerBase, vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    """A random-init Llama of a built-in size over its teacher's tokenizer and embedding rows (`vocab_size`, which
    a real model often pads beyond `len(tokenizer)`), so the two next-token distributions compare row by row."""
    if size not in SIZES:
        raise ValueError(f"size: {size!r} is not one of {', '.join(SIZES)}")
    return _random_llama(SIZES[size], tokenizer, seed, vocab_size)


def parameter_count(model: torch.nn.Module) -> int:
    """Distinct parameters (tied embeddings count once)."""
    return sum(parameter.numel() for parameter in model.parameters())


def _random_llama(spec: TinySize, tokenizer: PreTrainedTokenizerBase, seed: int, vocab_size: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def init_tiny(out: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Build the tiny policy and save it as an ordinary Hugging Face folder at `out`."""
    model, tokenizer = build_tiny_model(size=size, seed=seed)

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return save_atomically(Path(out), write)


def preferred_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def preferred_dtype() -> torch.dtype:
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_tokenizer(path_or_hub_id: str) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(path_or_hub_id)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_policy(
    path_or_hub_id: str, device: torch.device | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model and tokenizer from a local folder or a hub id (the hub needs network)."""
    tokenizer = load_tokenizer(path_or_hub_id)
    model = AutoModelForCausalLM.from_pretrained(path_or_hub_id, dtype=preferred_dtype())
    model.to(device or preferred_device())  # type: ignore[arg-type]  # transformers' @wraps(Module.to) types self
    model.eval()
    return model, tokenizer
