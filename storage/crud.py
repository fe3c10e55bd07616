"""Reads and writes on the store: keyword-only functions that take a session first.

Callers own the transaction (`storage.db.session_scope`); nothing here commits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, col, select

from storage.models import (
    PAIR_CHOICES,
    Generation,
    Judgment,
    JudgmentKind,
    Prompt,
    Role,
    User,
)

MAX_TEXT_BYTES = 1 << 20
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
_hasher = PasswordHasher()


class StoreError(ValueError):
    """A request the store refuses, with a message fit to show the user."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_text(text: object, *, what: str) -> str:
    if not isinstance(text, str):
        raise StoreError(f"{what}: expected text, got {type(text).__name__}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise StoreError(f"{what}: not valid Unicode text (a lone surrogate at character {error.start})") from None
    if size > MAX_TEXT_BYTES:
        raise StoreError(f"{what}: {size} bytes is over the 1 MiB limit ({MAX_TEXT_BYTES} bytes)")
    return text


def insert_or_ignore(
    session: Session,
    table: type[SQLModel],
    rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    unique: Sequence[str],
) -> list[int]:
    """The ids of the rows inserted; a row whose `unique` key is already stored is skipped.

    One `INSERT … ON CONFLICT DO NOTHING`, so requests racing with the same key
    store one row between them, with no window between a check and an insert.
    """
    if not rows:
        return []
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # type[SQLModel] declares no columns; every table passed here has an integer id.
    statement = insert(table).on_conflict_do_nothing(index_elements=list(unique)).returning(table.id)  # type: ignore[attr-defined]
    if isinstance(rows, Mapping):
        return list(session.execute(statement.values(**rows)).scalars())
    return list(session.execute(statement, list(rows)).scalars())


# --- users -------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_username(username: object) -> str:
    """Names shown in tables, logs and exports hold no markup, control characters or NUL bytes."""
    if not isinstance(username, str):
        raise StoreError(f"username: expected text, got {type(username).__name__}")
    if not username:
        raise StoreError("username: must not be empty")
    if not USERNAME.fullmatch(username):
        raise StoreError(
            f"username: {username[:70]!r} must be 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_password(password: object) -> str:
    """A password a login can be trusted with: one or two characters fall to the first guesses."""
    if not isinstance(password, str):
        raise StoreError(f"password: expected text, got {type(password).__name__}")
    if len(password) < MIN_PASSWORD:
        raise StoreError(f"password: must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise StoreError(f"password: must be at most {MAX_PASSWORD} characters")
    return password


def create_user(
    session: Session, *, username: str, role: str = Role.annotator.value, password: str | None = None
) -> User:
    """A new user; `password` None makes one who cannot log in (an imported annotator, a service name)."""
    check_username(username)
    if password is not None:
        check_password(password)
    if role not in {r.value for r in Role}:
        raise StoreError(f"role: {role!r} is not one of {', '.join(r.value for r in Role)}")
    if get_user(session, username=username) is not None:
        raise StoreError(f"username: {username!r} already exists")
    user = User(username=username, role=role, password_hash=hash_password(password) if password is not None else None)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def login_hash(session: Session, *, username: str) -> str | None:
    """The password hash of the active user with this username, else None (no such user, inactive, no password)."""
    return session.exec(select(User.password_hash).where(User.username == username, User.is_active)).first()


def password_matches(password_hash: str | None, password: str) -> bool:
    """argon2 verification: slow by design, so run it with no transaction open."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with older argon2 parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


def set_password(session: Session, *, username: str, password: str) -> User:
    """A new password, held to the same rules as at creation (argon2 is slow: a second or so)."""
    check_password(password)
    return set_password_hash(session, username=username, password_hash=hash_password(password))


def set_password_hash(session: Session, *, username: str, password_hash: str) -> User:
    user = _require_user(session, username)
    user.password_hash = password_hash
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
    return session.exec(select(User).order_by(col(User.id))).all()


def _require_user(session: Session, username: str) -> User:
    user = get_user(session, username=username)
    if user is None:
        raise StoreError(f"username: no user named {username!r}")
    return user


# --- prompts and generations ---------------------------------------------------


def add_prompt(
    session: Session, *, text: str, source: str | None = None, tags: Iterable[str] = ()
) -> tuple[Prompt, bool]:
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


def get_or_create_generation(
    session: Session,
    *,
    prompt_id: int,
    text: str,
    model_version_id: int | None = None,
    params: dict[str, Any] | None = None,
) -> Generation:
    check_text(text, what="response")
    digest = content_hash(text)
    query = select(Generation).where(
        Generation.prompt_id == prompt_id,
        Generation.text_hash == digest,
        Generation.model_version_id == model_version_id
        if model_version_id is not None
        else col(Generation.model_version_id).is_(None),
    )
    existing = session.exec(query).first()
    if existing is not None:
        return existing
    generation = Generation(
        prompt_id=prompt_id, model_version_id=model_version_id, text=text, text_hash=digest, params=params or {}
    )
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


def check_client_key(client_key: str) -> None:
    if not client_key or len(client_key) > 128:
        raise StoreError("client_key: must be 1..128 characters")


def validate_judgment_payload(kind: str, generation_ids: Sequence[int], payload: dict[str, Any]) -> None:
    """Raise StoreError naming the field when a judgment's shape is wrong for its kind."""
    if kind not in _GENERATION_COUNT:
        raise StoreError(f"kind: {kind!r} is not one of {', '.join(_GENERATION_COUNT)}")
    low, high = _GENERATION_COUNT[kind]
    if not low <= len(generation_ids) <= high:
        raise StoreError(f"generation_ids: a {kind} judgment needs {low}..{high} responses, got {len(generation_ids)}")
    if len(set(generation_ids)) != len(generation_ids):
        raise StoreError("generation_ids: the same response appears twice")
    if kind == JudgmentKind.pairwise.value and payload.get("choice") not in PAIR_CHOICES:
        raise StoreError(f"choice: {payload.get('choice')!r} is not one of {', '.join(PAIR_CHOICES)}")
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
    if payload.get("criteria") is not None:
        check_criteria(payload["criteria"])


MAX_CRITERIA = 16


def check_criteria(criteria: Any) -> None:
    """Per-criterion answers of a pairwise judgment (e.g. helpful, harmless): name → a, b, tie or both_bad."""
    if not isinstance(criteria, dict) or len(criteria) > MAX_CRITERIA:
        raise StoreError(f"criteria: expected up to {MAX_CRITERIA} named answers, got {type(criteria).__name__}")
    for name, answer in criteria.items():
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise StoreError(f"criteria: {str(name)[:64]!r} is not a name of 1..64 characters")
        if answer not in PAIR_CHOICES:
            raise StoreError(f"criteria.{name}: {answer!r} is not one of {', '.join(PAIR_CHOICES)}")


def add_judgment(
    session: Session,
    *,
    kind: str,
    user_id: int,
    prompt_id: int,
    generation_ids: Sequence[int],
    payload: dict[str, Any],
    client_key: str,
    shown_order: Sequence[int] | None = None,
    duration_ms: int | None = None,
    item_id: int | None = None,
    source: str = "app",
) -> tuple[Judgment, bool]:
    """Store one judgment; a repeated `client_key` returns the stored one and False (idempotent submit)."""
    validate_judgment_payload(kind, generation_ids, payload)
    check_client_key(client_key)
    created = insert_or_ignore(
        session,
        Judgment,
        dict(
            kind=kind,
            user_id=user_id,
            prompt_id=prompt_id,
            item_id=item_id,
            generation_ids=list(generation_ids),
            payload=payload,
            shown_order=list(shown_order) if shown_order is not None else None,
            duration_ms=duration_ms,
            client_key=client_key,
            source=source,
        ),
        unique=["client_key"],
    )
    if created:
        return session.get_one(Judgment, created[0]), True
    return session.exec(select(Judgment).where(Judgment.client_key == client_key)).one(), False


def count_judgments(session: Session, *, kind: str | None = None) -> int:
    query = select(func.count()).select_from(Judgment)
    if kind is not None:
        query = query.where(Judgment.kind == kind)
    return session.exec(query).one()
