"""An item's Markdown body as email HTML: runs of HTML for mj-text, and lone images
that become mj-image at full column width."""

from __future__ import annotations

import copy
import html
from collections.abc import Callable
from dataclasses import dataclass

from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

from ..issue.commonmark import PARSER
from .columns import joins_without_space


@dataclass(frozen=True)
class Block:
    """A piece of an item's body in the email: HTML for mj-text, or a lone image."""

    kind: str  # "html" | "image"
    html: str = ""
    src: str = ""  # for images: the src as written
    alt: str = ""


Size = Callable[[str], "tuple[int, int] | None"]  # src -> width, height as shown


def _no_size(src: str) -> None:
    return None


def html_blocks(body: list[Token], image_url: Callable[[str], str],
                image_size: Size = _no_size, link_url: Callable[[str], str] = str
                ) -> list[Block]:
    """Split a body into HTML runs and paragraphs that hold only an image.

    A lone image becomes an mj-image (full column width, sized); everything else is
    HTML rendered by markdown-it, with image URLs rewritten to where they are hosted.
    """
    blocks: list[Block] = []
    run: list[Token] = []
    i = 0
    while i < len(body):
        node = body[i]
        if node.type == "paragraph_open" and node.level == 0 and _lone_image(body[i + 1]):
            if run:
                blocks.append(Block("html", render_html(run, image_url, image_size, link_url)))
                run = []
            for child in body[i + 1].children or []:
                if child.type == "image":
                    blocks.append(Block("image", src=str(child.attrs.get("src", "")),
                                        alt=child.content))
            i += 3
            continue
        run.append(node)
        i += 1
    if run:
        blocks.append(Block("html", render_html(run, image_url, image_size, link_url)))
    return blocks


def _lone_image(inline: Token) -> bool:
    children = [c for c in inline.children or [] if c.type != "softbreak"
                and not (c.type == "text" and not c.content.strip())]
    return bool(children) and all(c.type == "image" for c in children)


def _render_image(self, nodes, idx, options, env):
    node = nodes[idx]
    written = str(node.attrs.get("src", ""))
    src = env["image_url"](written)
    alt = html.escape(self.renderInlineAsText(node.children or [], options, env))
    size = env["image_size"](written)  # Outlook shows an image without one at natural size
    sized = f' width="{size[0]}" height="{size[1]}"' if size else ""
    return (f'<img src="{html.escape(src)}" alt="{alt}"{sized} '
            'style="max-width:100%;height:auto;">')


def _render_link_open(self, nodes, idx, options, env):
    """A link, its href as the email carries it (UTM-tagged when external)."""
    node = copy.copy(nodes[idx])  # the issue's tokens are shared: never rewritten
    node.attrs = {**node.attrs, "href": env["link_url"](str(node.attrs.get("href", "")))}
    return self.renderToken([node], 0, options, env)


def _render_softbreak(self, nodes, idx, options, env):
    """A line break inside a paragraph: a space between words, nothing between two CJK
    characters (a browser would show a space in the middle of a Chinese sentence)."""
    return "" if joins_without_space(_text_before(nodes, idx), _text_after(nodes, idx)) \
        else "\n"


def _text_before(nodes: list[Token], idx: int) -> str:
    """The last character written before nodes[idx] (markup such as ** skipped)."""
    for node in reversed(nodes[:idx]):
        if node.type in ("text", "code_inline") and node.content:
            return node.content[-1]
        if node.type in ("softbreak", "hardbreak", "image"):
            return ""
    return ""


def _text_after(nodes: list[Token], idx: int) -> str:
    for node in nodes[idx + 1:]:
        if node.type in ("text", "code_inline") and node.content:
            return node.content[0]
        if node.type in ("softbreak", "hardbreak", "image"):
            return ""
    return ""


RENDERER = RendererHTML()
RENDERER.rules["image"] = _render_image.__get__(RENDERER)
RENDERER.rules["link_open"] = _render_link_open.__get__(RENDERER)
RENDERER.rules["softbreak"] = _render_softbreak.__get__(RENDERER)


def render_html(body: list[Token], image_url: Callable[[str], str],
                image_size: Size = _no_size, link_url: Callable[[str], str] = str) -> str:
    """Markdown blocks as HTML, images pointing where they are hosted (and sized, when
    image_size knows them), links where link_url says."""
    return RENDERER.render(body, PARSER.options, {"image_url": image_url,
                                                  "image_size": image_size,
                                                  "link_url": link_url}).strip()
