"""Per-view session state, kept in the page as a sealed token.

What an annotator is looking at (item, the order it was shown in, the client
key of this view, when it was shown) travels with each submit as a token in a
hidden textbox, encrypted and authenticated (Fernet: AES-CBC and HMAC-SHA256,
a per-process key). A double click sends the same token twice, so both requests
carry the same client key and the store keeps one judgment; the server trusts
the item and order because it sealed them, and the page cannot read them: a
blind A/B token would otherwise say which response came from which version.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken

from storage.crud import StoreError


class Sealer:
    def __init__(self, key: bytes | None = None):
        self._fernet = Fernet(key or Fernet.generate_key())

    def dump(self, data: dict) -> str:
        return self._fernet.encrypt(json.dumps(data, separators=(",", ":")).encode()).decode("ascii")

    def load(self, token: str) -> dict:
        """The data of a token this process sealed, character for character.

        Base64 decoding skips characters outside its alphabet and the unused bits of the last one,
        so an altered token could still open; only the exact encoding of the bytes is accepted.
        """
        try:
            raw = (token or "").encode("ascii")
            if base64.urlsafe_b64encode(base64.urlsafe_b64decode(raw)) != raw:
                raise InvalidToken
            return json.loads(self._fernet.decrypt(raw))
        except (InvalidToken, UnicodeError, ValueError):  # altered, foreign, not ASCII, a lone surrogate
            raise StoreError("view: this page is out of date or was altered; reload the tab") from None


def now_ms() -> int:
    return int(time.time() * 1000)


def new_client_key() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class ItemView:
    """One showing of a queue item to one user."""

    user_id: int
    item_id: int
    kind: str
    generation_ids: list[int]  # the item's canonical order
    shown_order: list[int]  # what the user saw, left to right / top to bottom
    client_key: str
    shown_at_ms: int
    replaces: int | None = None  # an edit: the user's judgment of this item that a submit withdraws

    def duration_ms(self) -> int:
        return max(0, now_ms() - self.shown_at_ms)


@dataclass(frozen=True)
class BlindView:
    """One blind A/B pair shown to a reviewer; the versions are not in the page, only in this token."""

    user_id: int
    generation_a_id: int
    generation_b_id: int
    shown_order: list[int]
    client_key: str


@dataclass(frozen=True)
class TriedResponse:
    """The live model's answer to a red-teamer's prompt, sealed in the page so a flag keeps what the model said."""

    user_id: int
    prompt: str
    response: str
    version_id: int


def dump_view(sealer: Sealer, view: ItemView | BlindView | TriedResponse) -> str:
    return sealer.dump({"type": type(view).__name__, **asdict(view)})


def load_view(sealer: Sealer, token: str, cls: type, *, user_id: int):
    data = sealer.load(token)
    if data.pop("type", None) != cls.__name__ or data.get("user_id") != user_id:
        raise StoreError("view: this page belongs to another view or user; reload the tab")
    return cls(**data)
