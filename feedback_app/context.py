"""What every tab's handlers share: the store, the settings, the role guard, the view sealer.

Handlers open their own transactions: `storage.db.read_scope` to show data,
`storage.db.session_scope` to change it (one per request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from feedback_app.config import AppConfig
from feedback_app.state import Sealer
from storage.queue import NO_EXTRAS, Extras


@dataclass
class AppContext:
    url: str
    config: AppConfig
    guard: Any  # feedback_app.roles.Guard
    sealer: Sealer = field(default_factory=Sealer)
    filler: Any = None  # feedback_app.filler.QueueFiller, when the app generates candidates
    extras: Extras = NO_EXTRAS  # gold items and swap checks mixed into the queue
    prioritizer: Any = None  # rlhf.quality.selection.Prioritizer: re-scores the queue for active selection
