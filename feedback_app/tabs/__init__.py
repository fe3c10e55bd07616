"""One module per tab; each `build(ctx)` makes its components inside the current Blocks and returns a TabView."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class TabView:
    """A built tab: who may use it, and how to fill it for a user (on select, or on page load if it opens first)."""

    tab: Any
    capability: str
    outputs: list
    fill: Callable[..., list]  # fill(user) -> values for outputs; callers check the role first
