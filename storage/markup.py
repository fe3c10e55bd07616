"""User and model text inside Markdown or HTML, as data: shown literally, never rendered or fetched.

A username, a gold file's value or an annotator's comment can hold `<img src=…>`, `![t](http://…)`
or a `<form>`; everywhere such text is put into markup (toasts, "Logged in as", reports) it goes
through one of these first.
"""

from __future__ import annotations

import html
import re

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*\[\]!|~])")


def clip(text: str, limit: int = 500) -> str:
    """At most `limit` characters, saying how many were left out: an echo of input must not be the input."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def escape_html(text: str, limit: int = 500) -> str:
    """For text inside an element (a toast): quotes stay as they are, they cannot end an element."""
    return html.escape(clip(text, limit), quote=False)


def escape_markdown(text: str) -> str:
    """HTML escaped, and the characters that open links, images, emphasis, code and table cells backslash-escaped.

    Line breaks are flattened, so the text cannot start a heading or a list either.
    """
    flat = text.replace("\r", " ").replace("\n", " ").replace("\x00", "")
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(flat, quote=False))
