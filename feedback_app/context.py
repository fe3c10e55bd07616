"""What every tab's handlers share: the store, the settings, the role guard, the view signer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from storage.db import session_scope

from feedback_app.config import AppConfig
from feedback_app.state import Signer
from storage.queue import NO_EXTRAS, Extras

_SQLITE_WRITER = threading.Lock()


@contextmanager
def store_session(url: str) -> Iterator[Session]:
    """A store transaction for a request handler; on SQLite, one at a time in this process.

    SQLite transactions here take the write lock up front (BEGIN IMMEDIATE), so
    concurrent handler threads would otherwise wait in SQLite's busy handler,
    which sleeps in growing steps (up to 100 ms); a Python lock hands over at once.
    """
    with _SQLITE_WRITER if url.startswith("sqlite") else nullcontext(), session_scope(url) as session:
        yield session


@dataclass
class AppContext:
    url: str
    config: AppConfig
    guard: Any                  # feedback_app.roles.Guard
    signer: Signer = field(default_factory=Signer)
    filler: Any = None          # feedback_app.filler.QueueFiller, when the app generates candidates
    extras: Extras = NO_EXTRAS  # gold items and swap checks mixed into the queue
    prioritizer: Any = None     # rlhf.quality.selection.Prioritizer: re-scores the queue for active selection
    services: dict[str, Any] = field(default_factory=dict)
