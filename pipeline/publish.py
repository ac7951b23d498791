"""The web archive from the same issue folders: a page per issue, an index, an Atom
feed; and a Jekyll post per issue for teams that also post on their blog.

Only issues that were sent, or that say `publish: true`, are published: a draft never
reaches the site or the feed. Pages carry no per-recipient data and no tracking."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any

import yaml
from markupsafe import Markup

from . import markdown
from .config import Config
from .db import connect
from .errors import ConfigError
from .ledger import Ledger
from .model import Issue
from .reader import read_issue, read_metadata
from .render import template_env
from .schedule import issue_folders

ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class SiteReport:
    out: Path
    issues: list[str]


def published_issues(config: Config) -> list[Issue]:
    """Sent or `publish: true`, newest first."""
    db = connect(config.database)
    ledger = Ledger(db)
    chosen = []
    for folder in issue_folders(config):
        meta, _ = read_metadata(folder, config)
        record = ledger.find(folder.name)
        sent = bool(record and ledger.counts(record.id)["sent"])
        if meta.get("publish") or sent:
            chosen.append(read_issue(folder, config))
    db.close()
    return sorted(chosen, key=lambda i: (i.date, i.number), reverse=True)


def issue_time(issue: Issue, config: Config) -> datetime:
    if issue.send_at:
        return issue.send_at
    return datetime.combine(issue.date, time(0, 0), tzinfo=config.zone or
                            datetime.now().astimezone().tzinfo)


def page_context(issue: Issue, image_url) -> dict[str, Any]:
    sections = [{
        "title": section.title,
        "intro": Markup(markdown.render_html(section.intro, image_url)),
        "items": [{"title": item.title,
                   "html": Markup(markdown.render_html(item.tokens, image_url))}
                  for item in section.items],
    } for section in issue.sections]
    header = image_url(issue.header_image.src) if issue.header_image else None
    return {"issue": issue, "sections": sections, "header": header}


def _image_url(issue: Issue, prefix: str):
    local = {image.src: image.asset for image in issue.images if image.asset}
    return lambda src: f"{prefix}{local[src]}" if src in local else src


def publish_site(config: Config, out: Path) -> SiteReport:
    base = config["archive_url"]
    if not base:
        raise ConfigError.one(config.path.name, "archive_url is not set; the site and its feed "
                                                "need the address they are served at")
    issues = published_issues(config)
    env = template_env(config)
    common = {"config": config.values, "labels": config["labels"], "colors": config["colors"],
              "sender": config["sender"]}
    building = out.with_name(out.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    for issue in issues:
        folder = building / issue.slug
        folder.mkdir()
        for image in issue.images:
            if image.asset:
                target = folder / image.asset
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(issue.folder / image.asset, target)
        context = page_context(issue, _image_url(issue, ""))
        html = env.get_template("web/issue.html.j2").render(
            **common, **context, date=issue.date.isoformat(),
            issue_label=config["labels"]["issue"].format(number=issue.number))
        (folder / "index.html").write_text(html, encoding="utf-8")
    entries = [{"slug": i.slug, "title": i.title, "date": i.date.isoformat(),
                "preheader": i.preheader,
                "issue_label": config["labels"]["issue"].format(number=i.number)}
               for i in issues]
    (building / "index.html").write_text(
        env.get_template("web/index.html.j2").render(**common, entries=entries),
        encoding="utf-8")
    (building / "feed.xml").write_bytes(atom_feed(issues, config, env, common))
    shutil.rmtree(out, ignore_errors=True)  # a draft published by mistake leaves with it
    building.rename(out)
    return SiteReport(out, [i.slug for i in issues])


def atom_feed(issues: list[Issue], config: Config, env, common: dict) -> bytes:
    base = config["archive_url"]
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang":
                                          config["language"]})

    def add(parent, tag, text=None, **attrs):
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    add(feed, "title", config["name"])
    add(feed, "id", f"{base}/")
    add(feed, "link", rel="self", href=f"{base}/feed.xml")
    add(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    times = [issue_time(i, config) for i in issues]
    add(feed, "updated", max(times).isoformat() if times else "1970-01-01T00:00:00+00:00")
    author = add(feed, "author")
    add(author, "name", config["sender"]["name"])
    fragment = env.get_template("web/_content.html.j2")
    for issue, when in zip(issues, times, strict=True):
        url = f"{base}/{issue.slug}/"
        entry = add(feed, "entry")
        add(entry, "title", issue.title)
        add(entry, "id", url)
        add(entry, "link", rel="alternate", type="text/html", href=url)
        add(entry, "published", when.isoformat())
        add(entry, "updated", when.isoformat())
        if issue.preheader:
            add(entry, "summary", issue.preheader)
        for tag in issue.tags:
            add(entry, "category", term=tag)
        html = fragment.render(**common, **page_context(issue, _image_url(issue, url)))
        add(entry, "content", html, type="html")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")


# --- Jekyll ------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,5})(\s)", re.M)
_FENCE = re.compile(r"^(```|~~~)", re.M)
_IMAGE = re.compile(r"(!\[[^\]]*\]\()([^)\s]+)")


def export_jekyll(issue: Issue, config: Config, out: Path) -> Path:
    """_posts/YYYY-MM-DD-<slug>.md with front matter, images under assets/<folder>/."""
    slug = re.sub(r"^\d{4}-\d{2}-\d{2}-", "", issue.slug)
    post = out / "_posts" / f"{issue.date.isoformat()}-{slug}.md"
    prefix = f"/assets/{issue.slug}/"
    for image in issue.images:
        if image.asset:
            target = out / "assets" / issue.slug / image.asset
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(issue.folder / image.asset, target)
    jekyll = config["jekyll"]
    front = {"layout": jekyll["layout"], "title": issue.title, "date": issue.date,
             "tags": list(issue.tags), **jekyll["front_matter"]}
    if issue.preheader:
        front.setdefault("excerpt", issue.preheader)
    labels = config["labels"]
    local = {image.src: image.asset for image in issue.images if image.asset}

    def body(markdown_text: str) -> str:
        text = _IMAGE.sub(lambda m: m[1] + (prefix + local[m[2]] if m[2] in local else m[2]),
                          markdown_text)
        return _shift_headings(text)

    parts = []
    if issue.header_image:
        parts.append(f"![]({prefix}{issue.header_image.asset})")
    credits = []
    if issue.editor:
        credits.append(f"{labels['editor']}：{issue.editor}")
    if issue.contributors:
        credits.append(f"{labels['contributors']}：{' '.join(issue.contributors)}")
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
