"""Markdown of contributors, parsed once into markdown-it blocks with source lines.

Contributors' Markdown is not trusted. Raw HTML is never passed through (markdown-it
escapes it as text), and only http(s), mailto and relative URLs become links or images.
Rendering those blocks to HTML and text is the render stage's (``render.blocks``,
``render.plaintext``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from markdown_it import MarkdownIt
from markdown_it.token import Token

_SAFE_URL = re.compile(r"^(https?:|mailto:|[^:]*$)", re.IGNORECASE)


def _validate_link(url: str) -> bool:
    return bool(_SAFE_URL.match(url.strip()))


def new_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "typographer": False})
    md.enable("strikethrough")
    md.validateLink = _validate_link
    return md


PARSER = new_parser()


def parse(text: str) -> list[Token]:
    return PARSER.parse(text)


def inline_text(children: list[Token]) -> str:
    """The plain text of inline tokens (alt text, link text, titles)."""
    out = []
    for child in children:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif child.type == "image":
            out.append(child.content)
    return "".join(out)


def link_texts(children: list[Token]) -> Iterator[tuple[str, str]]:
    """(href, text) of every link among inline tokens."""
    stack: list[tuple[str, list[Token]]] = []
    for child in children:
        if child.type == "link_open":
            stack.append((child.attrs.get("href", ""), []))
        elif child.type == "link_close" and stack:
            href, inner = stack.pop()
            yield str(href), inline_text(inner)
        elif stack:
            stack[-1][1].append(child)
