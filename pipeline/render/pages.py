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


# How a language switch names an edition: in its own language (a tag not listed here is
# shown as written)
LANGUAGE_NAMES = {"zh": "中文", "zh-CN": "简体中文", "zh-TW": "繁體中文", "zh-HK": "繁體中文",
                  "en": "English", "ja": "日本語", "ko": "한국어", "fr": "Français",
                  "de": "Deutsch", "es": "Español", "pt": "Português", "ru": "Русский",
                  "ar": "العربية"}


def language_name(tag: str) -> str:
    return LANGUAGE_NAMES.get(tag) or LANGUAGE_NAMES.get(tag.split("-")[0]) or tag


def edition_links(issue: Issue, base: str) -> list[dict[str, str]]:
    """An issue's editions as the archive links them: each at base/<id>/<language>/, and
    base/<id>/ (the default's page) as x-default; [] for a one-language issue."""
    if not issue.translations:
        return []
    links = [{"lang": edition.language, "name": language_name(edition.language),
              "url": f"{base}/{issue.id}/{edition.language}/"} for edition in issue.editions]
    return links + [{"lang": "x-default", "name": "", "url": f"{base}/{issue.id}/"}]
