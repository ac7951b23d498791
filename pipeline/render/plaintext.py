"""An item's Markdown body as plain text: wrapped at a width in display columns, links
as numbered references shared by the whole text part."""

from __future__ import annotations

from collections.abc import Callable

from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from .columns import TEXT_WIDTH, joins_without_space, wrap

# Plain-text conventions for inline emphasis, as mail readers have long written them
MARKS = {"strong": "*", "em": "_", "s": "~"}


class References:
    """Numbered link references shared by the whole plain-text part."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def number(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1


def render_text(body: list[Token], refs: References, width: int = TEXT_WIDTH,
                image_url: Callable[[str], str] = str,
                link_url: Callable[[str], str] = str) -> str:
    """link_url gives the URL a link is listed with (UTM-tagged when external)."""
    if not body:
        return ""
    root = SyntaxTreeNode(body)
    urls = _Urls(image_url, link_url)
    return "\n\n".join(_blocks_text(root.children, refs, width, urls)).rstrip()


class _Urls:
    """Where images and links point in the text part."""

    def __init__(self, image_url: Callable[[str], str], link_url: Callable[[str], str]):
        self.image, self.link = image_url, link_url


def _blocks_text(nodes, refs: References, width: int, urls: _Urls) -> list[str]:
    out = []
    for node in nodes:
        out.append(_block_text(node, refs, width, urls))
    return [b for b in out if b]


def _block_text(node, refs, width, urls) -> str:
    kind = node.type
    if kind == "paragraph":
        return wrap(_inline_text(node.children[0], refs, urls), width)
    if kind == "heading":  # a heading inside an item, marked with its own level
        marker = "#" * int(node.tag[1]) + " "
        return marker + wrap(_inline_text(node.children[0], refs, urls),
                             width - len(marker))
    if kind in ("code_block", "fence"):
        return "\n".join("    " + line for line in node.content.rstrip("\n").split("\n"))
    if kind == "hr":
        return "-" * min(width, 20)
    if kind == "blockquote":
        inner = "\n\n".join(_blocks_text(node.children, refs, width - 2, urls))
        return "\n".join(("> " + line).rstrip() for line in inner.split("\n"))
    if kind in ("bullet_list", "ordered_list"):
        start = int(node.attrs.get("start", 1)) if kind == "ordered_list" else 1
        items = []
        for n, item in enumerate(node.children, start):
            marker = f"{n}. " if kind == "ordered_list" else "- "
            inner = "\n\n".join(_blocks_text(item.children, refs, width - len(marker),
                                             urls))
            lines = inner.split("\n")
            pad = " " * len(marker)
            items.append("\n".join([marker + lines[0]]
                                   + [(pad + line).rstrip() for line in lines[1:]]))
        return "\n".join(items)
    return ""


def _inline_text(inline, refs: References, urls: _Urls) -> str:
    out: list[str] = []
    for child in inline.children:
        kind = child.type
        if kind == "text":
            out.append(child.content)
        elif kind == "code_inline":
            out.append(child.content)
        elif kind == "softbreak":
            joined = joins_without_space(_edge_char(child.previous_sibling, -1),
                                         _edge_char(child.next_sibling, 0))
            out.append("" if joined else " ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "link":
            href = str(child.attrs.get("href", ""))
            text = _inline_text(child, refs, urls)
            if text.strip() == href or href.startswith("mailto:") and text in href:
                out.append(urls.link(href))
            else:
                out.append(f"{text} [{refs.number(urls.link(href))}]")
        elif kind == "image":
            alt = child.content or "image"
            out.append(f"[{alt}] [{refs.number(urls.image(str(child.attrs.get('src', ''))))}]")
        elif kind in MARKS:
            mark = MARKS[kind]
            out.append(f"{mark}{_inline_text(child, refs, urls)}{mark}")
        elif child.children:
            out.append(_inline_text(child, refs, urls))
    return "".join(out)


def _edge_char(node, end: int) -> str:
    """The first (end=0) or last (end=-1) character of text a node holds, its marks
    aside; '' for none or a break."""
    while node is not None and node.type == "text" and not node.content:  # markdown-it's
        node = node.previous_sibling if end else node.next_sibling  # empty text between
    if node is None or node.type in ("softbreak", "hardbreak", "image"):
        return ""
    if node.type in ("text", "code_inline"):
        return node.content[end] if node.content else ""
    return _edge_char(node.children[end], end) if node.children else ""
