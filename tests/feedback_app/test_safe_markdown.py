"""The Markdown and chat renderer: what the text asks for is shown, nothing of it runs or loads."""

from html.parser import HTMLParser

import pytest

from feedback_app.safe_markdown import both_views, chat_turns, render
from tests.helpers import XSS

PAYLOADS = [
    XSS,
    "<svg onload=alert(1)>",
    "<iframe src=http://evil.example/></iframe>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD4=)",
    "<javascript:alert(1)>",
    "![pixel](http://evil.example/x.png)",
    '![pixel](http://evil.example/x.png "t")',
    '```js" onmouseover="alert(1)\ncode\n```',
    "${alert(1)} {{constructor.constructor('alert(1)')()}}",
]


TAGS = {"p", "h1", "h2", "strong", "em", "code", "pre", "a", "span", "div", "table", "thead", "tbody", "tr", "th", "td"}
ATTRIBUTES = {"class", "href", "target", "rel"}


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, dict(attrs)))


def tags(markup: str) -> list[tuple[str, dict]]:
    parser = Tags()
    parser.feed(markup)
    return parser.seen


@pytest.mark.parametrize("text", PAYLOADS)
def test_no_tag_attribute_or_address_of_the_text_survives(text):
    for tag, attrs in tags(both_views(text, [("user", text)])):
        assert tag in TAGS, tag
        assert set(attrs) <= ATTRIBUTES, attrs
        assert attrs.get("href", "https:").startswith(("https:", "http:", "mailto:")), attrs


def test_markdown_renders_and_safe_links_stay():
    out = render(
        "# Title\n\n**bold** and `code` and [site](https://example.org/a?b=1&c=2)\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<h1>Title</h1>" in out and "<strong>bold</strong>" in out and "<code>code</code>" in out
    assert (
        '<a href="https://example.org/a?b=1&amp;c=2" target="_blank" rel="nofollow noopener noreferrer">site</a>' in out
    )
    assert "<table>" in out


def test_a_refused_link_keeps_its_text_and_an_image_shows_its_address():
    assert "<a" not in render("[click me](javascript:alert(1))")
    assert render("[click me](ftp://example.org/x)") == "<p>click me</p>\n"
    assert "[image: pixel http://evil.example/x.png]" in render("![pixel](http://evil.example/x.png)")


def test_the_chat_escapes_roles_and_renders_each_turn():
    out = chat_turns([("user", "**hi**"), ("<b>x</b>", XSS)])
    assert "chat-user" in out and "<strong>hi</strong>" in out and "chat-other" in out
    assert "<b>" not in out and "<script" not in out and "&lt;b&gt;x&lt;/b&gt;" in out
    assert both_views("a", [("assistant", "a")]).count("<p>a</p>") == 2
