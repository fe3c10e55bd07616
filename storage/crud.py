"""Reads and writes on the store: keyword-only functions that take a session first.

Callers own the transaction (`storage.db.session_scope`); nothing here commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from storage.models import (
    Generation,
    Judgment,
    JudgmentKind,
    ModelVersion,
    Prompt,
    Role,
    User,
)

MAX_TEXT_BYTES = 1 << 20
_hasher = PasswordHasher()


class StoreError(ValueError):
    """A request the store refuses, with a message fit to show the user."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_text(text: str, *, what: str) -> str:
    if not isinstance(text, str):
        raise StoreError(f"{what}: expected text, got {type(text).__name__}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise StoreError(f"{what}: not valid Unicode text (a lone surrogate at character {error.start})") from None
    if size > MAX_TEXT_BYTES:
        raise StoreError(f"{what}: {size} bytes is over the 1 MiB limit ({MAX_TEXT_BYTES} bytes)")
    return text


# --- users -------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(session: Session, *, username: str, role: str = Role.annotator.value,
                password: str | None = None) -> User:
    username = username.strip()
    if not username:
        raise StoreError("username: must not be empty")
    if role not in {r.value for r in Role}:
        raise StoreError(f"role: {role!r} is not one of {', '.join(r.value for r in Role)}")
    if get_user(session, username=username) is not None:
        raise StoreError(f"username: {username!r} already exists")
    user = User(username=username, role=role,
                password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def get_or_create_annotator(session: Session, *, username: str) -> User:
    """Imported judgments name annotators that may not exist yet; they get no password (no login)."""
    return get_user(session, username=username) or create_user(session, username=username)


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The active user with this username and password, else None."""
    user = get_user(session, username=username)
    if user is None or not user.is_active or not user.password_hash:
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_password(session: Session, *, username: str, password: str) -> User:
    user = _require_user(session, username)
    user.password_hash = hash_password(password)
    return user


def set_role(session: Session, *, username: str, role: str) -> User:
    if role not in {r.value for r in Role}:
        raise StoreError(f"role: {role!r} is not one of {', '.join(r.value for r in Role)}")
    user = _require_user(session, username)
    user.role = role
    return user


def deactivate_user(session: Session, *, username: str) -> User:
    user = _require_user(session, username)
    user.is_active = False
    return user


def list_users(session: Session) -> Sequence[User]:
    return session.exec(select(User).order_by(User.id)).all()


def _require_user(session: Session, username: str) -> User:
    user = get_user(session, username=username)
    if user is None:
        raise StoreError(f"username: no user named {username!r}")
    return user


# --- prompts and generations ---------------------------------------------------


def add_prompt(session: Session, *, text: str, source: str | None = None,
               tags: Iterable[str] = ()) -> tuple[Prompt, bool]:
    """The prompt with this text, and whether it was created now (same text is never stored twice)."""
    check_text(text, what="prompt")
    digest = content_hash(text)
    existing = session.exec(select(Prompt).where(Prompt.content_hash == digest)).first()
    if existing is not None:
        return existing, False
    prompt = Prompt(text=text, content_hash=digest, source=source, tags=list(tags))
    session.add(prompt)
    session.flush()
    return prompt, True


def get_or_create_generation(session: Session, *, prompt_id: int, text: str,
                             model_version_id: int | None = None,
                             params: dict[str, Any] | None = None) -> Generation:
    check_text(text, what="response")
    digest = content_hash(text)
    query = select(Generation).where(
        Generation.prompt_id == prompt_id,
        Generation.text_hash == digest,
        Generation.model_version_id == model_version_id if model_version_id is not None
        else Generation.model_version_id.is_(None),
    )
    existing = session.exec(query).first()
    if existing is not None:
        return existing
    generation = Generation(prompt_id=prompt_id, model_version_id=model_version_id, text=text,
                            text_hash=digest, params=params or {})
    session.add(generation)
    session.flush()
    return generation


def count_prompts(session: Session) -> int:
    return session.exec(select(func.count()).select_from(Prompt)).one()


# --- judgments -------------------------------------------------------------------

_GENERATION_COUNT = {
    JudgmentKind.pairwise.value: (2, 2),
    JudgmentKind.rating.value: (1, 1),
    JudgmentKind.correction.value: (1, 1),
    JudgmentKind.ranking.value: (2, 16),
    JudgmentKind.skip.value: (0, 16),
}


def validate_judgment_payload(kind: str, generation_ids: Sequence[int], payload: dict[str, Any]) -> None:
    """Raise StoreError naming the field when a judgment's shape is wrong for its kind."""
    if kind not in _GENERATION_COUNT:
        raise StoreError(f"kind: {kind!r} is not one of {', '.join(_GENERATION_COUNT)}")
    low, high = _GENERATION_COUNT[kind]
    if not low <= len(generation_ids) <= high:
        raise StoreError(f"generation_ids: a {kind} judgment needs {low}..{high} responses, got {len(generation_ids)}")
    if len(set(generation_ids)) != len(generation_ids):
        raise StoreError("generation_ids: the same response appears twice")
    if kind == JudgmentKind.pairwise.value and payload.get("choice") not in {"a", "b", "tie", "both_bad"}:
        raise StoreError(f"choice: {payload.get('choice')!r} is not one of a, b, tie, both_bad")
    if kind == JudgmentKind.rating.value:
        score = payload.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise StoreError(f"score: {score!r} is not a whole number from 1 to 5")
    if kind == JudgmentKind.correction.value:
        check_text(payload.get("corrected"), what="corrected")
        if not payload["corrected"].strip():
            raise StoreError("corrected: must not be empty")
    for key in ("comment", "reason"):
        if key in payload and payload[key] is not None:
            check_text(payload[key], what=key)


def add_judgment(session: Session, *, kind: str, user_id: int, prompt_id: int,
                 generation_ids: Sequence[int], payload: dict[str, Any], client_key: str,
                 shown_order: Sequence[int] | None = None, duration_ms: int | None = None,
                 item_id: int | None = None, source: str = "app") -> tuple[Judgment, bool]:
    """Store one judgment; a repeated `client_key` returns the stored one and False (idempotent submit)."""
    validate_judgment_payload(kind, generation_ids, payload)
    if not client_key or len(client_key) > 128:
        raise StoreError("client_key: must be 1..128 characters")
    existing = session.exec(select(Judgment).where(Judgment.client_key == client_key)).first()
    if existing is not None:
        return existing, False
    judgment = Judgment(kind=kind, user_id=user_id, prompt_id=prompt_id, item_id=item_id,
                        generation_ids=list(generation_ids), payload=payload,
                        shown_order=list(shown_order) if shown_order is not None else None,
                        duration_ms=duration_ms, client_key=client_key, source=source)
    try:
        with session.begin_nested():
            session.add(judgment)
    except IntegrityError:
        # Another request with the same key won the race between our check and our insert.
        existing = session.exec(select(Judgment).where(Judgment.client_key == client_key)).one()
        return existing, False
    return judgment, True


def count_judgments(session: Session, *, kind: str | None = None) -> int:
    query = select(func.count()).select_from(Judgment)
    if kind is not None:
        query = query.where(Judgment.kind == kind)
    return session.exec(query).one()


# --- model versions ----------------------------------------------------------------


def get_version(session: Session, *, name: str) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.name == name)).first()


def live_version(session: Session) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.is_live.is_(True))).first()
