"""Per-view session state, kept in the page as a signed token.

What an annotator is looking at (item, the order it was shown in, the client
key of this view, when it was shown) travels with each submit as an HMAC-signed
token in a hidden textbox. A double click sends the same token twice, so both
requests carry the same client key and the store keeps one judgment; the server
trusts the item and order because it signed them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from storage.crud import StoreError


class Signer:
    def __init__(self, secret: bytes | None = None):
        self._secret = secret or secrets.token_bytes(32)

    def dump(self, data: dict) -> str:
        body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{body}.{self._mac(body)}"

    def load(self, token: str) -> dict:
        body, _, mac = (token or "").partition(".")
        try:
            genuine = bool(body) and hmac.compare_digest(mac.encode("ascii"), self._mac(body).encode("ascii"))
        except UnicodeError:  # not ASCII, or a lone surrogate: no token we signed
            genuine = False
        if not genuine:
            raise StoreError("view: this page is out of date or was altered; reload the tab")
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))

    def _mac(self, body: str) -> str:
        return hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:32]


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


def dump_view(signer: Signer, view: ItemView | BlindView) -> str:
    return signer.dump({"type": type(view).__name__, **asdict(view)})


def load_view(signer: Signer, token: str, cls: type, *, user_id: int):
    data = signer.load(token)
    if data.pop("type", None) != cls.__name__ or data.get("user_id") != user_id:
        raise StoreError("view: this page belongs to another view or user; reload the tab")
    return cls(**data)
