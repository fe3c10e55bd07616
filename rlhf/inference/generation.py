"""Batched candidate generation: a registered version answers the stored prompts, into the Generation table.

Prompts are left-padded and run in batches (one `generate` call per batch, not
per prompt); only the new tokens are kept. A prompt that already has enough
distinct candidates from the version is skipped, so a rerun generates nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from sqlmodel import Session, col, select
from tqdm.auto import tqdm

import configs
from rlhf.models.registry import require_version
from storage.crud import StoreError, check_text, content_hash
from storage.db import read_scope, session_scope
from storage.models import Generation, ModelVersion, Prompt, VersionStatus
from storage.redteam import is_adversarial
from storage.validation import ConfigError, read_yaml

DEFAULTS: dict[str, Any] = {
    "per_prompt": 2,
    "batch_size": 16,
    "max_new_tokens": 48,
    "temperature": 1.0,
    "top_p": 1.0,
    "seed": 0,
}
MAX_ATTEMPTS = 3


Prompted = str | list[dict[str, str]]
"""A prompt as generation takes it: a text (one user turn), or a multi-turn prompt's turns."""


def load_generation_defaults(path: Path | str | None = None) -> dict[str, Any]:
    """The `generation:` section of the app config (default: the shipped app.yaml) merged over DEFAULTS.

    A path that is neither a file nor a shipped config is an error: silent defaults would hide a typo.
    """
    try:
        path = configs.resolve("app.yaml" if path is None else path)
    except configs.MissingConfig as error:
        raise ConfigError(str(error)) from None
    raw, _ = read_yaml(path.read_text(), str(path))
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    section = (raw or {}).get("generation") or {}
    if not isinstance(section, dict):
        raise StoreError(f"{path}: generation: expected a mapping of sampling settings")
    unknown = set(section) - set(DEFAULTS)
    if unknown:
        raise StoreError(f"{path}: generation.{sorted(unknown)[0]}: unknown key (known: {', '.join(DEFAULTS)})")
    return {**DEFAULTS, **section}


def check_sampling(*, max_new_tokens: int, temperature: float, top_p: float) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise StoreError(f"max_new_tokens: {max_new_tokens!r} must be a whole number >= 1")
    if not temperature >= 0:
        raise StoreError(f"temperature: {temperature!r} must be >= 0 (0 means greedy)")
    if not 0 < top_p <= 1:
        raise StoreError(f"top_p: {top_p!r} must be in (0, 1]")


@torch.inference_mode()
def generate_texts(
    model,
    tokenizer,
    prompts: Sequence[Prompted],
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int | None,
) -> list[str]:
    """One batched `generate` call: chat template over every turn with the generation prompt, left padding,
    new tokens only."""
    conversations = [
        prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}] for prompt in prompts
    ]
    texts = tokenizer.apply_chat_template(conversations, add_generation_prompt=True, tokenize=False)
    tokenizer.padding_side = "left"
    inputs = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False).to(model.device)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    )
    if seed is not None:
        torch.manual_seed(seed)
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling)
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def _prompt_chars(job: tuple[int, Prompted]) -> int:
    """A batch is padded to its longest prompt: batching prompts of similar length wastes less compute."""
    prompt = job[1]
    return len(prompt) if isinstance(prompt, str) else sum(len(turn.get("content") or "") for turn in prompt)


@contextmanager
def _session(session_or_url: Session | str | None, *, read: bool = False) -> Iterator[Session]:
    """The caller's session as is (it owns the transaction), or a fresh one for a URL."""
    if isinstance(session_or_url, Session):
        yield session_or_url
        return
    with (read_scope if read else session_scope)(session_or_url) as session:
        yield session


def _ready_version(session: Session, name: str) -> ModelVersion:
    version = require_version(session, name=name)
    if version.status != VersionStatus.ready.value:
        raise StoreError(f"model: {name!r} is {version.status}, not ready")
    return version


def _missing(
    session: Session, version_id: int, per_prompt: int, prompt_ids: Sequence[int] | None, fresh_limit: int | None
) -> tuple[list[tuple[int, Prompted, int]], dict[int, set[str]]]:
    """(prompt id, text or turns, how many more candidates it needs) and the hashes each prompt already has."""
    query = select(Prompt.id, Prompt.text, Prompt.messages).order_by(is_adversarial().desc(), col(Prompt.id))
    if prompt_ids is not None:
        query = query.where(col(Prompt.id).in_(list(prompt_ids)))
    if fresh_limit is not None:
        answered = select(Generation.prompt_id).where(Generation.model_version_id == version_id)
        query = query.where(col(Prompt.id).not_in(answered)).limit(fresh_limit)
    rows = cast("Sequence[tuple[int, str, list | None]]", session.exec(query).all())  # stored rows: ids are set
    prompts: list[tuple[int, Prompted]] = [(pid, messages or text) for pid, text, messages in rows]
    seen: dict[int, set[str]] = {}
    if fresh_limit is None:
        for prompt_id, digest in session.exec(
            select(Generation.prompt_id, Generation.text_hash).where(Generation.model_version_id == version_id)
        ):
            seen.setdefault(prompt_id, set()).add(digest)
    missing = [(pid, text, per_prompt - len(seen.get(pid, ()))) for pid, text in prompts]
    return [job for job in missing if job[2] > 0], seen


def unanswered_prompts(session: Session, version_id: int) -> int:
    """Prompts `version_id` has no candidate for yet: what a fresh fill can still answer."""
    answered = select(Generation.prompt_id).where(Generation.model_version_id == version_id)
    return len(session.exec(select(Prompt.id).where(col(Prompt.id).not_in(answered))).all())


Generate = Callable[[list[Prompted], int | None], list[str]]
"""Answers for a batch of prompts, sampled with the given seed (None: unseeded)."""


@dataclass(frozen=True)
class Answered:
    created: int  # Generation rows stored
    prompt_ids: list[int]  # the prompts that were asked for candidates


def answer_prompts(
    session_or_url: Session | str | None,
    *,
    version: ModelVersion,
    generate: Generate,
    per_prompt: int,
    params: dict[str, Any],
    prompt_ids: Sequence[int] | None = None,
    fresh_limit: int | None = None,
    batch_size: int = 16,
    seed: int | None = None,
    attempts: int = MAX_ATTEMPTS,
    progress: bool = False,
) -> Answered:
    """Give prompts `per_prompt` distinct candidates from `version`, one `generate` call per batch.

    Prompts are batched by length (shortest first). Blank and repeated answers are dropped and asked for
    again, up to `attempts` rounds. `fresh_limit` takes only prompts the version never answered, the
    first that many (the adversarial set first). With a URL each batch commits on its own (an interrupted run
    keeps finished batches, and a rerun fills in the rest) and no transaction is
    open while the model runs; with a session the caller owns the transaction.
    """
    assert version.id is not None  # a registered version
    with _session(session_or_url, read=True) as session:
        missing, seen = _missing(session, version.id, per_prompt, prompt_ids, fresh_limit)
    asked = [pid for pid, _, _ in missing]
    created = 0
    for attempt in range(attempts):
        if not missing:
            break
        jobs = sorted(((pid, text) for pid, text, need in missing for _ in range(need)), key=_prompt_chars)
        bar = tqdm(
            total=len(jobs),
            disable=not progress,
            unit="text",
            desc=f"generating with {version.name}" + (f" (retry {attempt})" if attempt else ""),
        )
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start : start + batch_size]
            batch_seed = None if seed is None else seed + attempt * 1_000_003 + start
            outputs = generate([text for _, text in batch], batch_seed)
            batch_params = params if batch_seed is None else {**params, "seed": batch_seed}
            with _session(session_or_url) as session:
                for (prompt_id, _), output in zip(batch, outputs):
                    digest = content_hash(output)
                    if not output.strip() or digest in seen.setdefault(prompt_id, set()):
                        continue
                    seen[prompt_id].add(digest)
                    session.add(
                        Generation(
                            prompt_id=prompt_id,
                            model_version_id=version.id,
                            text=check_text(output, what="response"),
                            text_hash=digest,
                            params=batch_params,
                        )
                    )
                    created += 1
                session.flush()
            bar.update(len(batch))
        bar.close()
        missing = [(pid, text, per_prompt - len(seen.get(pid, ()))) for pid, text, _ in missing]
        missing = [job for job in missing if job[2] > 0]
    return Answered(created=created, prompt_ids=asked)


def generate_candidates(
    session_or_url: Session | str | None,
    *,
    version_name: str,
    per_prompt: int = 2,
    prompt_ids: Sequence[int] | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> int:
    """Give every prompt `per_prompt` distinct candidates from `version_name`; returns the rows created."""
    from rlhf.models.artifacts import load_version

    if per_prompt < 1 or batch_size < 1:
        raise StoreError(f"per_prompt and batch_size must be >= 1 (got {per_prompt}, {batch_size})")
    check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
    if temperature == 0 and per_prompt > 1:
        raise StoreError(f"temperature: 0 (greedy) gives one answer per prompt, but per_prompt is {per_prompt}")
    with _session(session_or_url, read=True) as session:
        version = _ready_version(session, version_name)
    load = functools.cache(lambda: load_version(version))  # only once there is something to generate

    def generate(texts: list[Prompted], batch_seed: int | None) -> list[str]:
        model, tokenizer = load()
        return generate_texts(
            model,
            tokenizer,
            texts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=batch_seed,
        )

    params = {
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "do_sample": temperature > 0,
        "batch_size": batch_size,
    }
    return answer_prompts(
        session_or_url,
        version=version,
        generate=generate,
        per_prompt=per_prompt,
        params=params,
        prompt_ids=prompt_ids,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    ).created
