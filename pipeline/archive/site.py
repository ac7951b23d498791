"""The web archive from the same issue folders: a page per issue, an index, an Atom
feed; and a Jekyll post per issue for teams that also post on their blog.

Only issues that were sent, or that say `publish: true`, are published: a draft never
reaches the site or the feed. Pages carry no per-recipient data and no tracking."""

from __future__ import annotations

import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path

from ..config import Config
from ..delivery.ledger import Ledger
from ..errors import ConfigError, PipelineError, display_path
from ..issue import Issue, issue_folders, issue_ids, read_issue, read_metadata
from ..render import template_env
from ..render.assets import issue_assets, write_assets
from ..render.pages import edition_links, page_context, site_image_url
from ..render.templates import base_context, issue_label
from ..store import connect

ATOM = "http://www.w3.org/2005/Atom"
# In every folder publish writes: the files it wrote, so that the next publish replaces
# the folder only when it holds nothing else.
MARKER = ".newsletter-site"


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
    version: str = ""  # of the send: "sha256:… · commit …"; "" for one never sent


def published_issues(config: Config) -> list[Published]:
    """Sent or `publish: true`, newest first; never the welcome issue."""
    db = connect(config.database)
    try:
        ledger = Ledger(db)
        ids = issue_ids(config)
        chosen = []
        for folder in issue_folders(config):
            meta, _ = read_metadata(folder, config, ids)
            if meta.get("kind") == "welcome":  # a new reader's, not one of the issues
                continue
            keys = ids.ledger_keys(meta["id"], folder)
            record = ledger.find(*keys)
            if record and ledger.counts(record.id)["sent"]:
                started = datetime.fromisoformat(record.started_at)
                finished = datetime.fromisoformat(record.finished_at or record.started_at)
                version = " · ".join(filter(None, (
                    record.content_hash and f"sha256:{record.content_hash[:12]}",
                    record.source_commit and f"commit {record.source_commit[:12]}")))
                chosen.append(Published(read_issue(folder, config, ids), started, finished,
                                        version))
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
    out = safe_out(out, config)
    entries = published_issues(config)
    zone = site_zone(config)

    def day(when: datetime) -> str:
        return when.astimezone(zone).date().isoformat()

    env = template_env(config)
    # every page carries the signup form, posting to `newsletter serve`
    common = {**base_context(config), "subscribe_url": config.subscribe_url}
    building = _new_folder(out)
    try:
        for entry in entries:
            issue = entry.issue
            folder = building / issue.id
            folder.mkdir()
            write_assets(issue_assets(issue), folder)
            alternates = edition_links(issue, base)
            # the default edition at <id>/; each edition, with a language switch and
            # hreflang alternates, at <id>/<language>/ (images stay in <id>/)
            pages = [(issue, folder, "")] + [(edition, folder / edition.language, "../")
                                             for edition in issue.editions if alternates]
            for edition, where, up in pages:
                where.mkdir(exist_ok=True)
                context = page_context(edition, site_image_url(edition, up))
                html = env.get_template("web/issue.html.j2").render(
                    **base_context(config, edition.language), **context,
                    date=day(entry.published), issue_label=issue_label(edition, config),
                    alternates=alternates, root="../" + up, version=entry.version,
                    subscribe_url=config.subscribe_url,
                    signup_language=edition.language if alternates else "",
                    feed=f"{'../' + up}{feed_name(edition.language, entries, config)}")
                (where / "index.html").write_text(html, encoding="utf-8")
        index = [{"slug": e.issue.id, "title": e.issue.title, "date": day(e.published),
                  "preheader": e.issue.preheader, "issue_label": issue_label(e.issue, config)}
                 for e in entries]
        (building / "index.html").write_text(
            env.get_template("web/index.html.j2").render(**common, entries=index),
            encoding="utf-8")
        (building / "feed.xml").write_bytes(atom_feed(entries, config, env, common))
        for language in edition_languages(entries):  # one feed per edition's language
            (building / f"feed.{language}.xml").write_bytes(
                atom_feed(entries, config, env, base_context(config, language), language))
        _write_marker(building)
        _swap(building, out)
    except OSError as exc:  # a full disk, a read-only folder: the old site stays
        shutil.rmtree(building, ignore_errors=True)
        raise PipelineError(f"cannot write the site: {exc.strerror or exc}",
                            path=display_path(out)) from None
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return SiteReport(out, [e.issue.id for e in entries])


# --- where the site goes: only ever a folder publish wrote --------------------------


def safe_out(out: Path, config: Config) -> Path:
    """--out, resolved, or a refusal: the site replaces the folder whole, so it must
    be one that holds nothing but what publish wrote there before."""
    target = Path(os.path.abspath(out.expanduser())).resolve()
    shown = display_path(target)
    project = config.root.resolve()
    issues = config.issues_dir.resolve()
    here = Path.cwd().resolve()
    own = "; give --out a folder of its own, like site"
    if target == Path(target.anchor):
        raise PipelineError("is the root folder" + own, path=shown)
    if target == _home():
        raise PipelineError("is your home folder" + own, path=shown)
    if target == project:
        raise PipelineError("is the project folder (it holds newsletter.toml)" + own, path=shown)
    if target in project.parents:
        raise PipelineError(f"holds the project folder {project}" + own, path=shown)
    if target == here or target in here.parents:
        raise PipelineError("is the folder you are in, or holds it" + own, path=shown)
    if target == issues or issues in target.parents:
        raise PipelineError(("is the issues folder" if target == issues else
                             "is inside the issues folder") + own, path=shown)
    if target.exists() and not target.is_dir():
        raise PipelineError("is a file, not a folder" + own, path=shown)
    if target.is_dir():
        strangers = _not_written_by_publish(target)
        if strangers is None:
            raise PipelineError(f"is not empty and was not written by `newsletter publish` "
                                f"(it has no {MARKER}); choose a new or empty folder",
                                path=shown)
        if strangers:
            listed = ", ".join(strangers[:3]) + (", …" if len(strangers) > 3 else "")
            raise PipelineError(f"holds files that `newsletter publish` did not write "
                                f"({listed}); move them out of it, or publish to another "
                                "folder", path=shown)
    return target


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        return None


def _not_written_by_publish(folder: Path) -> list[str] | None:
    """What is in folder that publish did not write there; None when publish never wrote
    there at all (a non-empty folder without the marker)."""
    entries = sorted(_walk(folder))
    if not entries:
        return []
    marker = folder / MARKER
    if not marker.is_file() or marker.is_symlink():
        return None
    try:
        written = {line for line in marker.read_text(encoding="utf-8").splitlines()
                   if line and not line.startswith("#")}
    except (OSError, UnicodeDecodeError):
        return None
    allowed = {MARKER} | written
    for name in written:
        allowed.update(parent.as_posix() for parent in Path(name).parents if parent.parts)
    return [name for name in entries if name not in allowed]


def _walk(folder: Path) -> list[str]:
    """Every file and folder under folder, relative, posix; symbolic links not followed."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            found.append((Path(root) / name).relative_to(folder).as_posix())
    return found


def _write_marker(folder: Path) -> None:
    files = sorted(name for name in _walk(folder) if (folder / name).is_file())
    (folder / MARKER).write_text(
        "# Written by `newsletter publish`, with the files below: the next publish replaces\n"
        "# this folder whole, and refuses to if it holds anything else.\n"
        + "".join(f"{name}\n" for name in files), encoding="utf-8")


def _new_folder(out: Path) -> Path:
    """A fresh folder beside out to build the site in (never one that existed), readable
    as a folder made by mkdir would be (a web server reads it)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        building.chmod(0o777 & ~umask)
        return building
    except OSError as exc:
        raise PipelineError(f"cannot write beside it: {exc.strerror or exc}",
                            path=display_path(out)) from None


def _swap(building: Path, out: Path) -> None:
    """The new site in place of the old in two renames; the old one then removed."""
    old = None
    try:
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(building, out)
    except OSError as exc:
        if old is not None and (old / out.name).exists() and not out.exists():
            os.replace(old / out.name, out)  # put the previous site back
        raise PipelineError(f"cannot replace it: {exc.strerror or exc}",
                            path=display_path(out)) from None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def edition_languages(entries: list[Published]) -> list[str]:
    """The languages of the published issues' editions (of issues with several)."""
    return list(dict.fromkeys(language for e in entries for language in e.issue.languages))


def feed_name(language: str, entries: list[Published], config: Config) -> str:
    """The feed of a page in this language: feed.<language>.xml when editions are in it."""
    return f"feed.{language}.xml" if language in edition_languages(entries) else "feed.xml"


def _in_language(entries: list[Published], language: str) -> list[tuple[Published, Issue, str]]:
    """(entry, its edition in this language, the edition's path) of each issue that has
    one: an edition of a many-language issue, or a one-language issue in it."""
    found = []
    for entry in entries:
        issue = entry.issue
        if language in issue.languages:
            found.append((entry, issue.edition_for(language), f"{issue.id}/{language}/"))
        elif not issue.languages and issue.language == language:
            found.append((entry, issue, f"{issue.id}/"))
    return found


def atom_feed(entries: list[Published], config: Config, env, common: dict,
              language: str | None = None) -> bytes:
    """The Atom feed: every issue (its default edition), or with ``language`` the
    issues in that language (feed.<language>.xml)."""
    base = config.archive_url
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang":
                                          language or config.language})

    def add(parent, tag, text=None, **attrs):
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    add(feed, "title", config.name)
    add(feed, "id", f"{base}/" if language is None else f"{base}/feed.{language}.xml")
    add(feed, "link", rel="self",
        href=f"{base}/feed.xml" if language is None else f"{base}/feed.{language}.xml")
    add(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    zone = site_zone(config)

    def stamp(when: datetime) -> str:
        return when.astimezone(zone).isoformat()

    updated = max((e.updated for e in entries), default=None)
    add(feed, "updated", stamp(updated) if updated else "1970-01-01T00:00:00+00:00")
    author = add(feed, "author")
    add(author, "name", config.sender.name)
    fragment = env.get_template("web/_content.html.j2")
    chosen = [(e, e.issue, f"{e.issue.id}/") for e in entries] if language is None else \
        _in_language(entries, language)
    for published, issue, path in chosen:
        url = f"{base}/{path}"  # also the entry's Atom id: it never changes
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
        html = fragment.render(**common, **page_context(issue, site_image_url(issue, f"{base}/{issue.id}/")))
        add(entry, "content", html, type="html")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")
