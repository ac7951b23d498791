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


@dataclass(frozen=True)
class Published:
    """An issue on the site, dated by when it was sent: its send's start and end in
    the ledger; for an issue published without a send, its send_at or its date."""

    issue: Issue
    published: datetime
    updated: datetime


def published_issues(config: Config) -> list[Published]:
    """Sent or `publish: true`, newest first."""
    db = connect(config.database)
    try:
        ledger = Ledger(db)
        ids = issue_ids(config)
        chosen = []
        for folder in issue_folders(config):
            meta, _ = read_metadata(folder, config, ids)
            keys = ids.ledger_keys(meta["id"], folder)
            record = ledger.find(keys[0], keys[1:])
            if record and ledger.counts(record.id)["sent"]:
                started = datetime.fromisoformat(record.started_at)
                finished = datetime.fromisoformat(record.finished_at or record.started_at)
                chosen.append(Published(read_issue(folder, config, ids), started, finished))
            elif meta.get("publish"):
                issue = read_issue(folder, config, ids)
                when = scheduled_time(issue, config)
                chosen.append(Published(issue, when, when))
    finally:
        db.close()
    return sorted(chosen, key=lambda p: (p.published, p.issue.number), reverse=True)


def scheduled_time(issue: Issue, config: Config) -> datetime:
    """The time of an issue published without a send: its send_at, or its date."""
    if issue.send_at:
        return issue.send_at
    return datetime.combine(issue.date, time(0, 0), tzinfo=site_zone(config))


def site_zone(config: Config):
    """The zone the site shows times in: the publication's, else this machine's."""
    return config.zone or datetime.now().astimezone().tzinfo


def publish_site(config: Config, out: Path) -> SiteReport:
    base = config.archive_url
    if not base:
        raise ConfigError.one(config.path.name, "archive_url is not set; the site and its feed "
                                                "need the address they are served at")
    entries = published_issues(config)
    zone = site_zone(config)

    def day(when: datetime) -> str:
        return when.astimezone(zone).date().isoformat()

    env = template_env(config)
    common = base_context(config)
    building = out.with_name(out.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    for entry in entries:
        issue = entry.issue
        folder = building / issue.id
        folder.mkdir()
        copy_assets(issue_assets(issue), folder)
        context = page_context(issue, site_image_url(issue, ""))
        html = env.get_template("web/issue.html.j2").render(
            **common, **context, date=day(entry.published),
            issue_label=issue_label(issue, config))
        (folder / "index.html").write_text(html, encoding="utf-8")
    index = [{"slug": e.issue.id, "title": e.issue.title, "date": day(e.published),
              "preheader": e.issue.preheader, "issue_label": issue_label(e.issue, config)}
             for e in entries]
    (building / "index.html").write_text(
        env.get_template("web/index.html.j2").render(**common, entries=index),
        encoding="utf-8")
    (building / "feed.xml").write_bytes(atom_feed(entries, config, env, common))
    shutil.rmtree(out, ignore_errors=True)  # a draft published by mistake leaves with it
    building.rename(out)
    return SiteReport(out, [e.issue.id for e in entries])


def atom_feed(entries: list[Published], config: Config, env, common: dict) -> bytes:
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
    zone = site_zone(config)

    def stamp(when: datetime) -> str:
        return when.astimezone(zone).isoformat()

    updated = max((e.updated for e in entries), default=None)
    add(feed, "updated", stamp(updated) if updated else "1970-01-01T00:00:00+00:00")
    author = add(feed, "author")
    add(author, "name", config.sender.name)
    fragment = env.get_template("web/_content.html.j2")
    for published in entries:
        issue = published.issue
        url = f"{base}/{issue.id}/"  # also the entry's Atom id: it never changes
        entry = add(feed, "entry")
        add(entry, "title", issue.title)
        add(entry, "id", url)
        add(entry, "link", rel="alternate", type="text/html", href=url)
        add(entry, "published", stamp(published.published))
        add(entry, "updated", stamp(published.updated))
        if issue.preheader:
            add(entry, "summary", issue.preheader)
        for tag in issue.tags:
            add(entry, "category", term=tag)
        html = fragment.render(**common, **page_context(issue, site_image_url(issue, url)))
        add(entry, "content", html, type="html")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")
