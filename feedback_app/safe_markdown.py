"""Model, user and guideline text as sanitised Markdown and as a chat, for gr.HTML.

markdown-it-py (which Gradio ships) renders with raw HTML off, so every `<tag>` in the text is
shown as text. On top of that: an image is never loaded (it is shown as its alt text and
address), and a link keeps its `href` only for http, https and mailto addresses; any other
link (javascript:, data:, relative) is shown as its text. Nothing else in the output comes
from the text except escaped character data and a code block's escaped language class.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

_SAFE_SCHEMES = {"http", "https", "mailto"}


def _safe_href(href: str) -> bool:
    try:
        return urlsplit(href.strip()).scheme.lower() in _SAFE_SCHEMES
    except ValueError:
        return False


def _image(renderer, tokens, idx, options, env):
    token = tokens[idx]
    alt = "".join(child.content for child in token.children or [])
    src = token.attrGet("src") or ""
    return f'<span class="md-image">[image: {html.escape(alt)} {html.escape(str(src))}]</span>'


def _link_open(renderer, tokens, idx, options, env):
    token = tokens[idx]
    href = str(token.attrGet("href") or "")
    safe = _safe_href(href)
    env.setdefault("links", []).append(safe)
    if not safe:
        return ""
    return f'<a href="{html.escape(href)}" target="_blank" rel="nofollow noopener noreferrer">'


def _link_close(renderer, tokens, idx, options, env):
    links = env.get("links") or [False]
    return "</a>" if links.pop() else ""


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    return md


_MD = _parser()


@functools.lru_cache(maxsize=4096)
def render(text: str) -> str:
    """`text` as Markdown, in HTML that runs nothing, loads nothing and carries no HTML of the text's own.

    Cached: every vote shows a response in two views, and overlapping annotators see the same texts.
    """
    return _MD.render(text or "", {})


def markdown_block(text: str) -> str:
    return f'<div class="as-markdown md-body">{render(text)}</div>'


def chat_turns(turns: Sequence[tuple[str, str]]) -> str:
    """(role, text) turns as chat bubbles, each rendered as Markdown; the role is escaped too."""
    bubbles = "".join(
        f'<div class="chat-turn chat-{html.escape(role) if role in ("user", "assistant", "system") else "other"}">'
        f'<div class="chat-role">{html.escape(role)}</div><div class="md-body">{render(text)}</div></div>'
        for role, text in turns
    )
    return f'<div class="as-chat">{bubbles}</div>'


def both_views(text: str, turns: Sequence[tuple[str, str]]) -> str:
    """The Markdown view and the chat view of one text; CSS shows the one the panel's mode picks."""
    return markdown_block(text) + chat_turns(turns)
