"""export --format jekyll: an issue as a post for a team's existing Jekyll blog."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..config import Config
from ..issue import Issue
from ..render.assets import copy_assets, issue_assets
from ..render.pages import site_image_url

_HEADING = re.compile(r"^(#{1,5})(\s)", re.M)
_FENCE = re.compile(r"^(```|~~~)", re.M)
_IMAGE = re.compile(r"(!\[[^\]]*\]\()([^)\s]+)")


def export_jekyll(issue: Issue, config: Config, out: Path) -> Path:
    """_posts/YYYY-MM-DD-<slug>.md with front matter, images under assets/<id>/ (the
    issue's id, not its folder: a renamed folder exports to the same post)."""
    slug = re.sub(r"^\d{4}-\d{2}-\d{2}-", "", issue.id)
    post = out / "_posts" / f"{issue.date.isoformat()}-{slug}.md"
    prefix = f"/assets/{issue.id}/"
    copy_assets(issue_assets(issue), out / "assets" / issue.id)
    jekyll = config.jekyll
    front = {"layout": jekyll.layout, "title": issue.title, "date": issue.date,
             "tags": list(issue.tags), **jekyll.front_matter}
    if issue.preheader:
        front.setdefault("excerpt", issue.preheader)
    labels = config.labels
    image_url = site_image_url(issue, prefix)

    def body(markdown_text: str) -> str:
        text = _IMAGE.sub(lambda m: m[1] + image_url(m[2]), markdown_text)
        return _shift_headings(text)

    parts = []
    if issue.header_image:
        parts.append(f"![]({prefix}{issue.header_image.asset})")
    credits = []
    if issue.editor:
        credits.append(f"{labels.editor}：{issue.editor}")
    if issue.contributors:
        credits.append(f"{labels.contributors}：{' '.join(issue.contributors)}")
    if credits:
        parts.append("\n\n".join(credits))
    for section in issue.sections:
        parts.append(f"## {section.title}")
        if section.intro_source:
            parts.append(body(section.intro_source))
        for item in section.items:
            parts.append(f"### {item.title}")
            if item.source:
                parts.append(body(item.source))
    post.parent.mkdir(parents=True, exist_ok=True)
    matter = yaml.safe_dump(front, allow_unicode=True, sort_keys=False).strip()
    post.write_text(f"---\n{matter}\n---\n\n" + "\n\n".join(parts) + "\n", encoding="utf-8")
    return post


def _shift_headings(text: str) -> str:
    """An item's own headings go one level down, under the item's ### title."""
    out, fenced = [], False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        out.append(line if fenced else _HEADING.sub(r"#\1\2", line))
    return "\n".join(out)
