"""The annotator's loop, shared by the four annotation tabs: show the next item, submit, skip.

Queue rules live in storage.queue; this module turns them into what a tab
shows (prompt, responses in a random order, progress, the prompt's source and tags) and back.
An edit from the annotator's history shows their judged item again; its submit replaces the
old judgment (storage.history).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from feedback_app.roles import Caller
from feedback_app.state import ItemView, Sealer, dump_view, load_view, new_client_key, now_ms
from storage import history, queue
from storage.crud import StoreError
from storage.db import session_scope
from storage.records import conversation

_shuffle = random.SystemRandom()


@dataclass(frozen=True)
class Shown:
    token: str  # "" when the queue is empty
    prompt: str
    responses: list[str]  # in the order shown
    progress: queue.Progress
    team: queue.TeamProgress
    item_id: int | None = None
    source: str | None = None
    tags: tuple[str, ...] = ()
    turns: tuple[dict[str, str], ...] = ()  # the prompt as chat turns (one user turn unless multi-turn)
    editing: int | None = None  # the judgment an edit replaces
    history: tuple[history.Entry, ...] = ()


def _empty(session, *, user: Caller, kind: str) -> Shown:
    return Shown(
        token="",
        prompt="",
        responses=[],
        progress=queue.progress(session, user_id=user.id, kind=kind),
        team=queue.team_progress(session, kind=kind),
        history=tuple(history.recent(session, user_id=user.id, kind=kind)),
    )


def open_next(session, *, sealer: Sealer, user: Caller, kind: str, extras: queue.Extras = queue.NO_EXTRAS) -> Shown:
    """The next item, shown in a random order; a swap check keeps its order (the sides the user saw, swapped)."""
    item = queue.next_item(session, user_id=user.id, kind=kind, extras=extras)
    if item is None:
        return _empty(session, user=user, kind=kind)
    shown_order = list(item.generation_ids)
    if item.purpose != queue.SWAP_CHECK:
        _shuffle.shuffle(shown_order)
    return _show(session, sealer=sealer, user=user, kind=kind, item=item, shown_order=shown_order)


def open_edit(session, *, sealer: Sealer, user: Caller, kind: str, judgment_id: int) -> Shown:
    """The item of the user's judgment `judgment_id` again, in the order they saw it, to answer anew."""
    judgment = history.own_judgment(session, user_id=user.id, judgment_id=judgment_id, kind=kind)
    assert judgment.item_id is not None  # own_judgment refuses judgments without an item
    item = queue.item_row(session, item_id=judgment.item_id)
    seen = judgment.shown_order
    shown_order = list(seen) if seen and sorted(seen) == sorted(item.generation_ids) else list(item.generation_ids)
    return _show(session, sealer=sealer, user=user, kind=kind, item=item, shown_order=shown_order, replaces=judgment_id)


def _show(
    session,
    *,
    sealer: Sealer,
    user: Caller,
    kind: str,
    item: queue.QueuedItem,
    shown_order: list[int],
    replaces: int | None = None,
) -> Shown:
    texts = queue.texts(session, prompt_id=item.prompt_id, generation_ids=shown_order)
    details = queue.prompt_details(session, prompt_id=item.prompt_id)
    prompt_text = texts.pop(None)
    view = ItemView(
        user_id=user.id,
        item_id=item.id,
        kind=kind,
        generation_ids=list(item.generation_ids),
        shown_order=shown_order,
        client_key=new_client_key(),
        shown_at_ms=now_ms(),
        replaces=replaces,
    )
    return Shown(
        token=dump_view(sealer, view),
        prompt=prompt_text,
        responses=[texts[g] for g in shown_order],
        progress=queue.progress(session, user_id=user.id, kind=kind),
        team=queue.team_progress(session, kind=kind),
        item_id=item.id,
        source=details.source,
        tags=tuple(details.tags),
        turns=tuple(conversation(prompt_text, details.messages)),
        editing=replaces,
        history=tuple(history.recent(session, user_id=user.id, kind=kind)),
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
    _withdraw_replaced(session, view=view, user=user, kind=kind)
    judgment_id, created = queue.submit(
        session,
        item_id=view.item_id,
        user_id=user.id,
        generation_ids=generation_ids,
        payload=payload,
        client_key=view.client_key,
        shown_order=view.shown_order,
        duration_ms=view.duration_ms(),
    )
    if created and view.replaces is not None:
        history.record_replacement(session, judgment_id=view.replaces, replaced_by_id=judgment_id)
    return open_next(session, sealer=sealer, user=user, kind=kind, extras=extras)


def _withdraw_replaced(session, *, view: ItemView, user: Caller, kind: str) -> None:
    """An edit's old judgment leaves first (in the submit's transaction); a repeated submit finds it gone."""
    if view.replaces is not None and not queue.stored(session, client_key=view.client_key):
        history.withdraw(session, user_id=user.id, judgment_id=view.replaces, kind=kind)


def undo_and_show(session, *, sealer: Sealer, user: Caller, kind: str, judgment_id: int) -> Shown:
    """Withdraw the user's judgment and show its item again, claimed for them, to answer anew or skip."""
    item = queue.item_row(session, item_id=history.undo(session, user_id=user.id, judgment_id=judgment_id, kind=kind))
    shown_order = list(item.generation_ids)
    if item.purpose != queue.SWAP_CHECK:
        _shuffle.shuffle(shown_order)
    return _show(session, sealer=sealer, user=user, kind=kind, item=item, shown_order=shown_order)


def skip_and_next(
    session, *, sealer: Sealer, user: Caller, kind: str, token: str, reason: str, extras: queue.Extras = queue.NO_EXTRAS
) -> Shown:
    view = read_view(sealer, token, user=user, kind=kind)
    _withdraw_replaced(session, view=view, user=user, kind=kind)
    judgment_id, created = queue.skip(
        session,
        item_id=view.item_id,
        user_id=user.id,
        reason=reason,
        client_key=view.client_key,
        shown_order=view.shown_order,
        duration_ms=view.duration_ms(),
    )
    if created and view.replaces is not None:
        history.record_replacement(session, judgment_id=view.replaces, replaced_by_id=judgment_id)
    return open_next(session, sealer=sealer, user=user, kind=kind, extras=extras)
