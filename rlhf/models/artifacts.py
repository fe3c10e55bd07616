"""Loading a registered version's weights, and exporting it as one deployable model folder."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf.models.modeling import load_policy, load_tokenizer
from rlhf.models.registry import root_base_model
from storage.files import save_atomically
from storage.models import ModelVersion


def tokenizer_source(version: ModelVersion) -> str:
    """An adapter folder may carry its own tokenizer (TRL saves one); otherwise use its base model's."""
    if version.is_adapter and not (Path(version.artifact_path) / "tokenizer_config.json").is_file():
        return version.base_model
    return version.artifact_path


def attach_adapter(model: PreTrainedModel, path: str, adapter_name: str) -> None:
    """Load a LoRA adapter next to any already on `model`, failing if any of its own weights are missing.

    transformers lists the *other* adapters' weights as missing in its load report; that noise is
    silenced and only this adapter's keys are checked.
    """
    report_logger = logging.getLogger("transformers.integrations.peft")
    level = report_logger.level
    report_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            info = model.load_adapter(path, adapter_name=adapter_name)
    finally:
        report_logger.setLevel(level)
    missing = sorted(key for key in info.missing_keys if f".{adapter_name}." in key)
    if missing:
        model.delete_adapter(adapter_name)
        raise ValueError(f"{path}: the adapter has no weights for {missing[0]} (and {len(missing) - 1} more)")
    model.eval()


def load_version(
    version: ModelVersion, device: torch.device | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model and tokenizer for a version: its full model, or its root base with its LoRA adapter on top."""
    model, _ = load_policy(root_base_model(version), device=device)
    if version.is_adapter:
        attach_adapter(model, version.artifact_path, "default")
    return model, load_tokenizer(tokenizer_source(version))


def export_merged(version: ModelVersion, out: Path) -> Path:
    """Write `version` as a plain full model at `out` (adapters merged in), whole or not at all."""
    from peft import PeftModel

    model, tokenizer = load_policy(root_base_model(version), device=torch.device("cpu"))
    if version.is_adapter:
        model = PeftModel.from_pretrained(model, version.artifact_path).merge_and_unload()
    tokenizer = load_tokenizer(tokenizer_source(version))

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return save_atomically(Path(out), write)
