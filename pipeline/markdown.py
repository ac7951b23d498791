"""Markdown of contributors: parsed once, rendered to email HTML and to plain text.

Contributors' Markdown is not trusted. Raw HTML is never passed through (markdown-it
escapes it as text), and only http(s), mailto and relative URLs become links or images.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from .textwrap import wrap

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


# --- email HTML --------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A piece of an item's body in the email: HTML for mj-text, or a lone image."""

    kind: str  # "html" | "image"
    html: str = ""
    src: str = ""  # for images: the src as written
    alt: str = ""


def html_blocks(tokens: list[Token], image_url: Callable[[str], str]) -> list[Block]:
    """Split a body into HTML runs and paragraphs that hold only an image.

    A lone image becomes an mj-image (full column width, sized); everything else is
    HTML rendered by markdown-it, with image URLs rewritten to where they are hosted.
    """
    blocks: list[Block] = []
    run: list[Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "paragraph_open" and token.level == 0 and _lone_image(tokens[i + 1]):
            if run:
                blocks.append(Block("html", render_html(run, image_url)))
                run = []
            for child in tokens[i + 1].children or []:
                if child.type == "image":
                    blocks.append(Block("image", src=str(child.attrs.get("src", "")),
                                        alt=child.content))
            i += 3
            continue
        run.append(token)
        i += 1
    if run:
        blocks.append(Block("html", render_html(run, image_url)))
    return blocks


def _lone_image(inline: Token) -> bool:
    children = [c for c in inline.children or [] if c.type != "softbreak"
                and not (c.type == "text" and not c.content.strip())]
    return bool(children) and all(c.type == "image" for c in children)


def render_html(tokens: list[Token], image_url: Callable[[str], str]) -> str:
    return PARSER.renderer.render(tokens, PARSER.options, {"image_url": image_url}).strip()


def _render_image(self, tokens, idx, options, env):
    token = tokens[idx]
    src = env["image_url"](str(token.attrs.get("src", "")))
    alt = html.escape(self.renderInlineAsText(token.children or [], options, env))
    return f'<img src="{html.escape(src)}" alt="{alt}" style="max-width:100%;height:auto;">'


PARSER.add_render_rule("image", _render_image)


# --- plain text --------------------------------------------------------------------


class References:
    """Numbered link references shared by the whole plain-text part."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def number(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1


def render_text(tokens: list[Token], refs: References, width: int = 78,
                image_url: Callable[[str], str] = str) -> str:
    if not tokens:
        return ""
    root = SyntaxTreeNode(tokens)
    return "\n\n".join(_blocks_text(root.children, refs, width, image_url)).rstrip()


def _blocks_text(nodes, refs: References, width: int, image_url) -> list[str]:
    out = []
    for node in nodes:
        out.append(_block_text(node, refs, width, image_url))
    return [b for b in out if b]


def _block_text(node, refs, width, image_url) -> str:
    kind = node.type
    if kind == "paragraph":
        return wrap(_inline_text(node.children[0], refs, image_url), width)
    if kind == "heading":
        return wrap(_inline_text(node.children[0], refs, image_url), width)
    if kind in ("code_block", "fence"):
        return "\n".join("    " + line for line in node.content.rstrip("\n").split("\n"))
    if kind == "hr":
        return "-" * min(width, 20)
    if kind == "blockquote":
        inner = "\n\n".join(_blocks_text(node.children, refs, width - 2, image_url))
        return "\n".join(("> " + line).rstrip() for line in inner.split("\n"))
    if kind in ("bullet_list", "ordered_list"):
        start = int(node.attrs.get("start", 1)) if kind == "ordered_list" else 1
        items = []
        for n, item in enumerate(node.children, start):
            marker = f"{n}. " if kind == "ordered_list" else "- "
            inner = "\n\n".join(_blocks_text(item.children, refs, width - len(marker),
                                             image_url))
            lines = inner.split("\n")
            pad = " " * len(marker)
            items.append("\n".join([marker + lines[0]]
                                   + [(pad + line).rstrip() for line in lines[1:]]))
        return "\n".join(items)
    return ""


def _inline_text(inline, refs: References, image_url) -> str:
    out: list[str] = []
    for child in inline.children:
        kind = child.type
        if kind == "text":
            out.append(child.content)
        elif kind == "code_inline":
            out.append(child.content)
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "link":
            href = str(child.attrs.get("href", ""))
            text = _inline_text(child, refs, image_url)
            if text.strip() == href or href.startswith("mailto:") and text in href:
                out.append(href)
            else:
                out.append(f"{text} [{refs.number(href)}]")
        elif kind == "image":
            alt = child.content or "image"
            out.append(f"[{alt}] [{refs.number(image_url(str(child.attrs.get('src', ''))))}]")
        elif child.children:
            out.append(_inline_text(child, refs, image_url))
    return "".join(out)
