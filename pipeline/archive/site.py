"""The web archive from the same issue folders: a page per issue, an index, an Atom
feed; and a Jekyll post per issue for teams that also post on their blog.

Only issues that were sent, or that say `publish: true`, are published: a draft never
reaches the site or the feed. Pages carry no per-recipient data and no tracking."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path

from ..config import Config
from ..delivery.ledger import Ledger
from ..errors import ConfigError
from ..issue import Issue, issue_folders, issue_ids, read_issue, read_metadata
from ..render import template_env
from ..render.assets import copy_assets, issue_assets
from ..render.pages import page_context, site_image_url
from ..render.templates import base_context, issue_label
from ..store import connect

ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class SiteReport:
    out: Path
    issues: list[str]


def published_issues(config: Config) -> list[Issue]:
    """Sent or `publish: true`, newest first."""
    db = connect(config.database)
    ledger = Ledger(db)
    ids = issue_ids(config)
    chosen = []
    for folder in issue_folders(config):
        meta, _ = read_metadata(folder, config, ids)
        keys = ids.ledger_keys(meta["id"], folder)
        record = ledger.find(keys[0], keys[1:])
        sent = bool(record and ledger.counts(record.id)["sent"])
        if meta.get("publish") or sent:
            chosen.append(read_issue(folder, config, ids))
    db.close()
    return sorted(chosen, key=lambda i: (i.date, i.number), reverse=True)


def issue_time(issue: Issue, config: Config) -> datetime:
    if issue.send_at:
        return issue.send_at
    return datetime.combine(issue.date, time(0, 0), tzinfo=config.zone or
                            datetime.now().astimezone().tzinfo)


def publish_site(config: Config, out: Path) -> SiteReport:
    base = config.archive_url
    if not base:
        raise ConfigError.one(config.path.name, "archive_url is not set; the site and its feed "
                                                "need the address they are served at")
    issues = published_issues(config)
    env = template_env(config)
    common = base_context(config)
    building = out.with_name(out.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    for issue in issues:
        folder = building / issue.id
        folder.mkdir()
        copy_assets(issue_assets(issue), folder)
        context = page_context(issue, site_image_url(issue, ""))
        html = env.get_template("web/issue.html.j2").render(
            **common, **context, date=issue.date.isoformat(),
            issue_label=issue_label(issue, config))
        (folder / "index.html").write_text(html, encoding="utf-8")
    entries = [{"slug": i.id, "title": i.title, "date": i.date.isoformat(),
                "preheader": i.preheader, "issue_label": issue_label(i, config)}
               for i in issues]
    (building / "index.html").write_text(
        env.get_template("web/index.html.j2").render(**common, entries=entries),
        encoding="utf-8")
    (building / "feed.xml").write_bytes(atom_feed(issues, config, env, common))
    shutil.rmtree(out, ignore_errors=True)  # a draft published by mistake leaves with it
    building.rename(out)
    return SiteReport(out, [i.id for i in issues])


def atom_feed(issues: list[Issue], config: Config, env, common: dict) -> bytes:
    base = config.archive_url
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang":
                                          config.language})

    def add(parent, tag, text=None, **attrs):
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    add(feed, "title", config.name)
    add(feed, "id", f"{base}/")
    add(feed, "link", rel="self", href=f"{base}/feed.xml")
    add(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    times = [issue_time(i, config) for i in issues]
    add(feed, "updated", max(times).isoformat() if times else "1970-01-01T00:00:00+00:00")
    author = add(feed, "author")
    add(author, "name", config.sender.name)
    fragment = env.get_template("web/_content.html.j2")
    for issue, when in zip(issues, times, strict=True):
        url = f"{base}/{issue.id}/"  # also the entry's Atom id: it never changes
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
        html = fragment.render(**common, **page_context(issue, site_image_url(issue, url)))
        add(entry, "content", html, type="html")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")
