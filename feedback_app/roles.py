"""Who may do what, checked on the server inside every handler.

Gradio runs any registered handler for any logged-in user (hidden buttons
included), so each handler is wrapped by `Guard.requires`: it reads the
caller's username from gr.Request, looks up their current role in the store on
every call (a demoted or deactivated user loses access at once) and raises
gr.Error before the handler runs. A handler that writes gets the session the
role was checked in, so a submit is one transaction: role, insert, next item.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
from sqlalchemy import bindparam
from sqlmodel import Session, select

from storage.crud import StoreError, hash_password, login_hash, needs_rehash, password_matches, set_password_hash
from storage.db import read_scope, session_scope
from storage.markup import escape_html
from storage.models import Role, User

ANNOTATE, REVIEW, ENGINEER, ANYONE = "annotate", "review", "engineer", "anyone"
CAPABILITIES: dict[str, frozenset[str]] = {
    ANNOTATE: frozenset({Role.annotator.value, Role.admin.value}),
    REVIEW: frozenset({Role.reviewer.value, Role.engineer.value, Role.admin.value}),
    ENGINEER: frozenset({Role.engineer.value, Role.admin.value}),
    ANYONE: frozenset(r.value for r in Role),
}


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
_BY_NAME = select(User.id, User.username, User.role, User.is_active).where(User.username == bindparam("username"))


@dataclass(frozen=True)
class Caller:
    """The user behind a request, as the store has them now."""

    id: int
    username: str
    role: str
    is_active: bool


def allowed(role: str, capability: str) -> bool:
    return role in CAPABILITIES[capability]


class Guard:
    """Login and per-call role checks against one store."""

    def __init__(self, url: str):
        self.url = url

    def authenticate(self, username: str, password: str) -> str | None:
        """The role of the active user these credentials are for, else None; slow on purpose, so run it off the loop.

        The hash is read in a read session and verified with none open (argon2 is slow on purpose).
        A username with no usable hash is checked against a dummy hash, so it costs as long to
        refuse as a wrong password and does not tell who has an account.
        """
        with read_scope(self.url) as session:
            stored = login_hash(session, username=username)
        if not password_matches(stored or _DUMMY_HASH, password) or stored is None:
            return None
        if needs_rehash(stored):
            fresh = hash_password(password)
            with session_scope(self.url) as session:
                set_password_hash(session, username=username, password_hash=fresh)
        return self.current_role(username)

    def current_role(self, username: str) -> str | None:
        """The user's role if they are active, else None: what a login token is checked against."""
        with read_scope(self.url) as session:
            row = session.execute(_BY_NAME, {"username": username}).first()
        return row.role if row is not None and row.is_active else None

    def caller(self, session: Session, request: gr.Request | None, capability: str = ANYONE) -> Caller:
        """The user behind `request` as `session` sees them; gr.Error unless active and allowed `capability`."""
        username = getattr(request, "username", None) if request is not None else None
        if not username:
            raise gr.Error("Please log in.", print_exception=False)
        row = session.connection().execute(_BY_NAME, {"username": username}).first()  # Core: on every call
        user = Caller(*row) if row is not None else None
        if user is None or not user.is_active:
            raise gr.Error("Your account is not active.", print_exception=False)
        if not allowed(user.role, capability):
            raise gr.Error(f"Not allowed: a {user.role} cannot do this ({capability} only).", print_exception=False)
        return user

    def user(self, request: gr.Request | None, capability: str = ANYONE) -> Caller:
        with read_scope(self.url) as session:
            return self.caller(session, request, capability)

    def requires(self, capability: str, *, writes: bool = False) -> Callable[[Callable], Callable]:
        """Wrap a handler that takes `user` (keyword): Gradio sees a leading `request: gr.Request` instead.

        With `writes`, the handler also takes `session`: the write transaction the role was checked in.
        StoreError from the handler (bad input) is shown to the user as gr.Error.
        """
        hidden = {"user", "session"} if writes else {"user"}

        def wrap(fn: Callable) -> Callable:
            signature = inspect.signature(fn)
            request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
            params = [request, *(p for name, p in signature.parameters.items() if name not in hidden)]

            def guarded(request: gr.Request, *args, **kwargs):
                try:
                    if not writes:
                        return fn(*args, **kwargs, user=self.user(request, capability))
                    with session_scope(self.url) as session:
                        return fn(*args, **kwargs, user=self.caller(session, request, capability), session=session)
                except StoreError as error:
                    raise gr.Error(escape_html(str(error)), print_exception=False) from None  # toasts render HTML

            guarded.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]  # gradio reads it
            guarded.__name__ = fn.__name__
            guarded.__doc__ = fn.__doc__
            guarded.capability = capability  # type: ignore[attr-defined]  # a function attribute, read by the tests
            return guarded

        return wrap
