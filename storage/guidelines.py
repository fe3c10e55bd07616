"""Task guidelines per queue kind: the app config's Markdown, unless an engineer saved an edit in the app."""

from __future__ import annotations

from sqlmodel import Session

from storage.crud import StoreError
from storage.models import Guideline, utcnow
from storage.queue import ITEM_KINDS

MAX_GUIDELINE_CHARS = 20_000


def current(session: Session, *, kind: str, default: str = "") -> str:
    """The kind's guidelines: the saved edit if there is one, else `default` (the app config's)."""
    if kind not in ITEM_KINDS:
        return default
    saved = session.get(Guideline, kind)
    return saved.text if saved is not None else default


def save(session: Session, *, kind: str, text: str, username: str) -> Guideline:
    """Store the engineer's guidelines for `kind`; an empty text is kept too (it hides the config's)."""
    if kind not in ITEM_KINDS:
        raise StoreError(f"kind: {kind!r} is not one of {', '.join(ITEM_KINDS)}")
    text = (text or "").strip()
    if len(text) > MAX_GUIDELINE_CHARS:
        raise StoreError(f"guidelines: at most {MAX_GUIDELINE_CHARS} characters, got {len(text)}")
    row = session.get(Guideline, kind) or Guideline(kind=kind, text=text)
    row.text, row.updated_by, row.updated_at = text, username, utcnow()
    session.add(row)
    session.flush()
    return row
