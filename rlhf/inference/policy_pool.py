"""The policies the app generates with: loaded once, switched in milliseconds, swapped live without a restart.

Each root model is loaded once; LoRA versions are adapters on it (`load_adapter` +
`set_adapter`, a few ms to switch) instead of separate copies. At most
`max_loaded` versions stay loaded (least recently used go first). One lock covers
activate and generate, so a request never runs on a half-switched model.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf.inference.generation import Prompted, generate_texts
from rlhf.models.artifacts import attach_adapter, tokenizer_source
from rlhf.models.modeling import load_policy, load_tokenizer, preferred_device
from rlhf.models.registry import live_version, root_base_model
from storage.db import read_scope
from storage.models import ModelVersion


@dataclass
class _Base:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    users: set[str] = field(default_factory=set)


@dataclass
class _Loaded:
    version_id: int
    base_key: str
    adapter_name: str | None
    tokenizer: PreTrainedTokenizerBase


class PolicyPool:
    def __init__(self, max_loaded: int = 4, device: torch.device | str | None = None):
        if max_loaded < 1:
            raise ValueError(f"max_loaded: {max_loaded} must be >= 1")
        self.max_loaded = max_loaded
        self.device = torch.device(device) if device is not None else preferred_device()
        self._lock = threading.RLock()
        self._bases: dict[str, _Base] = {}
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()
        self._tokenizers: dict[str, PreTrainedTokenizerBase] = {}
        self._active: str | None = None

    def active_name(self) -> str | None:
        return self._active

    def loaded_names(self) -> list[str]:
        """Loaded versions, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def activate(self, version: ModelVersion) -> None:
        """Load `version` if needed (an adapter on its shared base, or a full model) and make it current."""
        with self._lock:
            loaded = self._loaded.get(version.name)
            if loaded is None or loaded.version_id != version.id:
                if loaded is not None:
                    self._evict(version.name)
                try:
                    self._load(version)
                except Exception:
                    if self._active is not None:
                        self._apply(self._active)
                    raise
            self._loaded.move_to_end(version.name)
            self._evict_beyond_limit(keep=version.name)
            self._apply(version.name)
            self._active = version.name

    def generate(
        self,
        prompts: list[Prompted],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int | None,
        version: ModelVersion | None = None,
    ) -> tuple[str, list[str]]:
        """Answer `prompts` with the current version (or `version`, activated first); returns (version name, texts)."""
        with self._lock:
            if version is not None:
                self.activate(version)
            if self._active is None:
                raise RuntimeError("policy pool: no version is active; activate one or sync with the store first")
            loaded = self._loaded[self._active]
            model = self._bases[loaded.base_key].model
            texts = generate_texts(
                model,
                loaded.tokenizer,
                prompts,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                seed=seed,
            )
            return self._active, texts

    def sync_with_store(self, url: str | None) -> bool:
        """Activate the store's live version if it is not the current one; True if the pool switched."""
        with read_scope(url) as session:
            live = live_version(session)
        if live is None:
            return False
        with self._lock:
            current = self._loaded.get(self._active) if self._active else None
            if self._active == live.name and current is not None and current.version_id == live.id:
                return False
            self.activate(live)
            return True

    def watch(self, url: str | None, interval_s: float = 0.25) -> threading.Event:
        """Poll the store for a new live version in a daemon thread; set the returned event to stop."""
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(interval_s):
                try:
                    self.sync_with_store(url)
                except Exception as error:  # keep serving the current version; report and retry
                    print(f"policy pool: sync failed: {error}")

        threading.Thread(target=poll, name="policy-pool-sync", daemon=True).start()
        return stop

    def _load(self, version: ModelVersion) -> _Loaded:
        key = root_base_model(version)
        base = self._bases.get(key)
        if base is None:
            model, tokenizer = load_policy(key, device=self.device)
            base = self._bases[key] = _Base(model=model, tokenizer=tokenizer)
            if (digest := _tokenizer_digest(key)) is not None:
                self._tokenizers.setdefault(digest, tokenizer)  # adapters that carry the base's copy reuse it
        adapter_name = None
        tokenizer = base.tokenizer
        if version.is_adapter:
            adapter_name = f"version_{version.id}"
            try:
                attach_adapter(base.model, version.artifact_path, adapter_name)
            except Exception:
                if not base.users:
                    del self._bases[key]
                raise
            tokenizer = self._tokenizer(tokenizer_source(version))
        base.users.add(version.name)
        assert version.id is not None  # a registered version
        loaded = self._loaded[version.name] = _Loaded(
            version_id=version.id, base_key=key, adapter_name=adapter_name, tokenizer=tokenizer
        )
        return loaded

    def _tokenizer(self, source: str) -> PreTrainedTokenizerBase:
        """One tokenizer per distinct set of tokenizer files: every round saves a copy of its parent's into its
        adapter folder, and loading SmolLM2's takes ~150 ms of the time a new version takes to be served."""
        digest = _tokenizer_digest(source)
        if digest is None:
            return load_tokenizer(source)
        if digest not in self._tokenizers:
            self._tokenizers[digest] = load_tokenizer(source)
        return self._tokenizers[digest]

    def _apply(self, name: str) -> None:
        """Point the shared model at `name`: its adapter, or no adapter for a full model."""
        loaded = self._loaded[name]
        model = self._bases[loaded.base_key].model
        if loaded.adapter_name is not None:
            model.enable_adapters()
            model.set_adapter(loaded.adapter_name)
        elif getattr(model, "_hf_peft_config_loaded", False):
            model.disable_adapters()

    def _evict_beyond_limit(self, keep: str) -> None:
        for name in list(self._loaded):
            if len(self._loaded) <= self.max_loaded:
                break
            if name != keep:
                self._evict(name)

    def _evict(self, name: str) -> None:
        loaded = self._loaded.pop(name)
        base = self._bases[loaded.base_key]
        base.users.discard(name)
        if loaded.adapter_name is not None:
            base.model.delete_adapter(loaded.adapter_name)
        if not base.users:
            del self._bases[loaded.base_key]
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        if self._active == name:
            self._active = None


TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)


def _tokenizer_digest(source: str) -> str | None:
    """sha256 over a local folder's tokenizer files (None for a hub id or a folder with none of them)."""
    folder = Path(source)
    files = [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()] if folder.is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()
