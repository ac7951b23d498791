"""The web archive's page of an issue: the same model, rendered as HTML for a browser
(no per-reader data, no tracking)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from ..issue import Issue
from .assets import asset_paths
from .blocks import render_html


def page_context(issue: Issue, image_url: Callable[[str], str]) -> dict[str, Any]:
    sections = [{
        "title": section.title,
        "intro": Markup(render_html(section.intro, image_url)),
        "items": [{"title": item.title, "html": Markup(render_html(item.body, image_url))}
                  for item in section.items],
    } for section in issue.sections]
    header = image_url(issue.header_image.src) if issue.header_image else None
    return {"issue": issue, "sections": sections, "header": header}


def site_image_url(issue: Issue, prefix: str) -> Callable[[str], str]:
    """Local images at prefix + their path in the issue folder; others as written."""
    local = asset_paths(issue)
    return lambda src: f"{prefix}{local[src]}" if src in local else src
