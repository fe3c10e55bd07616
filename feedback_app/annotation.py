"""The annotator's loop, shared by the four annotation tabs: show the next item, submit, skip.

Queue rules live in storage.queue; this module turns them into what a tab
shows (prompt, responses in a random order, a counter) and back.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from feedback_app.roles import Caller
from feedback_app.state import ItemView, Sealer, dump_view, load_view, new_client_key, now_ms
from storage import queue
from storage.crud import StoreError
from storage.db import session_scope

_shuffle = random.SystemRandom()


@dataclass(frozen=True)
class Shown:
    token: str  # "" when the queue is empty
    prompt: str
    responses: list[str]  # in the order shown
    counter: str
    item_id: int | None = None


def _counter(progress: queue.Progress) -> str:
    return f"**Done {progress.done}** · skipped {progress.skipped} · remaining {progress.remaining}"


def open_next(session, *, sealer: Sealer, user: Caller, kind: str, extras: queue.Extras = queue.NO_EXTRAS) -> Shown:
    """The next item, shown in a random order; a swap check keeps its order (the sides the user saw, swapped)."""
    item = queue.next_item(session, user_id=user.id, kind=kind, extras=extras)
    progress = queue.progress(session, user_id=user.id, kind=kind)
    if item is None:
        return Shown(token="", prompt="", responses=[], counter=_counter(progress) + " — the queue is empty for now")
    shown_order = list(item.generation_ids)
    if item.purpose != queue.SWAP_CHECK:
        _shuffle.shuffle(shown_order)
    texts = queue.texts(session, prompt_id=item.prompt_id, generation_ids=shown_order)
    prompt_text = texts.pop(None)
    view = ItemView(
        user_id=user.id,
        item_id=item.id,
        kind=kind,
        generation_ids=list(item.generation_ids),
        shown_order=shown_order,
        client_key=new_client_key(),
        shown_at_ms=now_ms(),
    )
    return Shown(
        token=dump_view(sealer, view),
        prompt=prompt_text,
        responses=[texts[g] for g in shown_order],
        counter=_counter(progress),
        item_id=item.id,
    )


def show_next(url: str, *, sealer: Sealer, user: Caller, kind: str, extras: queue.Extras = queue.NO_EXTRAS) -> Shown:
    """`open_next` in a write transaction of its own (serving claims the item)."""
    with session_scope(url) as session:
        return open_next(session, sealer=sealer, user=user, kind=kind, extras=extras)


def read_view(sealer: Sealer, token: str, *, user: Caller, kind: str) -> ItemView:
    if not token:
        raise StoreError("Nothing to submit: the queue is empty. Try again later.")
    view = load_view(sealer, token, ItemView, user_id=user.id)
    if view.kind != kind:
        raise StoreError(f"view: this is a {view.kind} item, not {kind}")
    return view


def submit_and_next(
    session,
    *,
    sealer: Sealer,
    user: Caller,
    kind: str,
    token: str,
    judge: Callable[[ItemView], tuple[list[int], dict]],
    extras: queue.Extras = queue.NO_EXTRAS,
) -> Shown:
    """Store the judgment `judge` builds from the view, then open the next item, in the caller's transaction."""
    view = read_view(sealer, token, user=user, kind=kind)
    generation_ids, payload = judge(view)
    queue.submit(
        session,
        item_id=view.item_id,
        user_id=user.id,
        generation_ids=generation_ids,
        payload=payload,
        client_key=view.client_key,
        shown_order=view.shown_order,
        duration_ms=view.duration_ms(),
    )
    return open_next(session, sealer=sealer, user=user, kind=kind, extras=extras)


def skip_and_next(
    session, *, sealer: Sealer, user: Caller, kind: str, token: str, reason: str, extras: queue.Extras = queue.NO_EXTRAS
) -> Shown:
    view = read_view(sealer, token, user=user, kind=kind)
    queue.skip(
        session,
        item_id=view.item_id,
        user_id=user.id,
        reason=reason,
        client_key=view.client_key,
        shown_order=view.shown_order,
        duration_ms=view.duration_ms(),
    )
    return open_next(session, sealer=sealer, user=user, kind=kind, extras=extras)
