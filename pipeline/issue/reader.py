"""read_issue: an issue folder becomes a validated Issue, or every problem in it.

Nothing here renders; it reads files, checks them and records where things are, so
that later stages can point at ``path:line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ..config import Config, value_problem
from ..errors import IssueError, Problem, Problems, did_you_mean, display_path, printable
from . import commonmark
from .files import (
    MAX_SECTIONS,
    image_problem,
    name_problem,
    parse_yaml_mapping,
    read_text,
    too_large,
    unsafe_file,
)
from .identity import IssueIds, derived_id, duplicate_problem, id_problem, is_id
from .model import Image, Issue, Item, Link, Section
from .segment import EVERYONE, parse_segment

ISSUE_FILE = "issue.yaml"


@dataclass(frozen=True)
class Field:
    type: str  # int | str | date | datetime | list | bool | image | id | language | segment
    required: bool = False
    example: str = ""


ISSUE_FIELDS = {
    "number": Field("int", True, "number: 1"),
    # text, or one per language of an issue with editions: {zh-CN: "…", en: "…"}
    "title": Field("text", True, 'title: "My newsletter 01"'),
    "subject": Field("text"),
    "preheader": Field("text"),
    "date": Field("date", True, "date: 2024-01-31"),
    "send_at": Field("datetime"),
    "editor": Field("str"),
    "contributors": Field("list"),
    "tags": Field("list"),
    "header_image": Field("image"),
    "publish": Field("bool"),
    "id": Field("id"),
    "language": Field("language"),  # a BCP 47 tag; default: newsletter.toml's language
    "languages": Field("languages"),  # editions: [zh-CN, en], the first the default
    "audience": Field("segment"),  # {tags: [...], exclude: [...]}; default: everyone
    "kind": Field("issue_kind"),  # welcome: sent to each newly confirmed reader, never scheduled
    "tag_links": Field("bool"),  # false: no UTM tags on this issue's links
}
ISSUE_KINDS = ("issue", "welcome")
LOCALIZED = ("title", "subject", "preheader")
SECTION_FIELDS = {
    "kind": Field("str", True, "kind: news"),
    "title": Field("str"),
}


def resolve_issue_path(name: str | Path, config: Config) -> Path:
    """ISSUE on the command line: a folder path, a folder's name under issues/, or the
    id of an issue under issues/."""
    path = Path(name)
    if path.is_dir() or path.is_absolute() or len(path.parts) > 1:
        return path
    under = config.issues_dir / path
    if under.is_dir():
        return under
    found = issue_ids(config).folders(str(name)) if is_id(str(name)) else []
    return found[0] if len(found) == 1 else path


def issue_folders(config: Config) -> list[Path]:
    """Every folder under issues/ that holds an issue.yaml, in name order."""
    root = config.issues_dir
    return sorted(p for p in root.iterdir() if (p / ISSUE_FILE).is_file()) if root.is_dir() else []


def issue_ids(config: Config) -> IssueIds:
    """The id of every issue folder under issues/, read once for a whole command."""
    return IssueIds(issue_folders(config))


def read_issue(folder: Path, config: Config, ids: IssueIds | None = None) -> Issue:
    problems = Problems()
    shown = display_path(folder)
    if not folder.is_dir():
        problems.add(shown, None, "no such issue folder; give a folder path or the name of "
                                  f"a folder under {display_path(config.issues_dir)}/")
        problems.raise_if_any()
    problem = name_problem(folder.resolve().name)
    if problem:
        problems.add(shown, None, f"the issue folder {problem}")
        problems.raise_if_any()
    ids = ids or issue_ids(config)
    meta, lines = _read_issue_yaml(folder, config, problems, ids)
    header = None
    if isinstance(meta.get("header_image"), str):
        header = _local_image(folder, meta["header_image"], "", folder / ISSUE_FILE,
                              lines.get("header_image", 1), problems, "header_image")
    sections = []
    candidates = sorted(p for p in folder.glob("*.md") if not p.name.startswith(("_", ".")))
    if len(candidates) > MAX_SECTIONS:
        problems.add(shown, None, f"{len(candidates)} section files (limit {MAX_SECTIONS}); "
                                  "an issue this long is more than one issue")
        problems.raise_if_any()
    files = []
    for path in candidates:
        problem = unsafe_file(folder, path)
        if problem:  # named as it is in the folder, not as where a link leads
            problems.add(f"{display_path(path.parent)}/{printable(path.name)}", None, problem)
        else:
            files.append(path)
    languages = tuple(meta.get("languages", ()))
    by_language = _files_by_language(files, languages, problems)
    total = too_large(sum(path.stat().st_size for path in files), "sections")
    if total:
        problems.add(shown, None, f"the section files together are {total}; an issue this "
                                  "long is more than one issue")
        problems.raise_if_any()
    if not candidates:
        problems.add(shown, None, "no section files; add Markdown files such as "
                                  "01-news.md, one per section, in reading order")
    editions: dict[str, list[Section]] = {}
    for language, named in by_language.items():
        editions[language] = []
        for name, path in named:
            section = _read_section(path, folder, config, problems)
            if section:
                section.name = name
                editions[language].append(section)
    problems.raise_if_any()
    sections = editions[languages[0] if languages else ""]
    default = languages[0] if languages else meta.get("language") or config.language
    words = meta.get("localized", {})
    issue = Issue(
        folder=folder.resolve(),
        number=meta["number"],
        title=meta["title"],
        subject=meta.get("subject") or meta["title"],
        preheader=meta.get("preheader", ""),
        date=meta["date"],
        send_at=meta.get("send_at"),
        editor=meta.get("editor", ""),
        contributors=meta.get("contributors", []),
        tags=meta.get("tags", []),
        header_image=header,
        publish=meta.get("publish", False),
        sections=sections,
        lines=lines,
        id=meta["id"],
        ledger_keys=ids.ledger_keys(meta["id"], folder),
        language=default,
        audience=meta.get("audience", EVERYONE),
        kind=meta.get("kind", "issue"),
        tag_links=meta.get("tag_links", True),
        languages=languages,
    )
    for language in languages[1:]:
        own = {key: words.get(key, {}).get(language) for key in LOCALIZED}
        title = own["title"] or issue.title
        issue.translations[language] = replace(
            issue, language=language, title=title,
            subject=own["subject"] or own["title"] or issue.subject,
            preheader=own["preheader"] or issue.preheader,
            sections=editions[language], translations={})
    return issue


def _files_by_language(files: list[Path], languages: tuple[str, ...], problems: Problems
                       ) -> dict[str, list[tuple[str, Path]]]:
    """Section files by edition: 01-tips.md is the default language's, 01-tips.en.md
    the en edition's (with languages: [zh-CN, en]); each as (name, path). An issue
    without languages has one edition, "", of every file."""
    if not languages:
        return {"": [(path.stem, path) for path in files]}
    found: dict[str, list[tuple[str, Path]]] = {language: [] for language in languages}
    for path in files:
        name, dot, suffix = path.stem.rpartition(".")
        if not dot or value_problem("language", suffix):
            found[languages[0]].append((path.stem, path))
        elif suffix in languages:
            found[suffix].append((name, path))
        else:
            problems.add(display_path(path), None,
                         f"'{suffix}' is not one of the issue's languages "
                         f"({', '.join(languages)}); add it to languages in issue.yaml, or "
                         f"rename the file")
    return found


def read_metadata(folder: Path, config: Config, ids: IssueIds | None = None
                  ) -> tuple[dict[str, Any], dict[str, int]]:
    """issue.yaml alone, validated (for schedules and status: no Markdown is read).

    meta["id"] is always set: written in the file (then lines has "id") or derived."""
    problems = Problems()
    meta, lines = _read_issue_yaml(folder, config, problems, ids or issue_ids(config))
    problems.raise_if_any()
    return meta, lines


def welcome_folder(config: Config, ids: IssueIds | None = None) -> Path | None:
    """The issue folder marked ``kind: welcome`` under issues/, or None; IssueError when
    more than one is (a reader gets one welcome)."""
    ids = ids or issue_ids(config)
    found = []
    for folder in issue_folders(config):
        try:
            meta, lines = read_metadata(folder, config, ids)
        except IssueError:
            continue  # its own problems are its own command's to report
        if meta.get("kind") == "welcome":
            found.append((folder, lines.get("kind")))
    if len(found) > 1:
        raise IssueError([Problem(display_path(folder / ISSUE_FILE), line,
                                  "more than one issue says 'kind: welcome'; a new reader gets "
                                  "one welcome: keep the mark on one of them")
                          for folder, line in found])
    return found[0][0] if found else None


# --- issue.yaml --------------------------------------------------------------------


def _read_issue_yaml(folder: Path, config: Config, problems: Problems, ids: IssueIds
                     ) -> tuple[dict[str, Any], dict[str, int]]:
    path = folder / ISSUE_FILE
    if not path.exists() and not path.is_symlink():
        problems.add(display_path(path), None, "missing; every issue folder needs one "
                                               "(newsletter new SLUG scaffolds a folder)")
        return {"id": derived_id(folder)}, {}
    problem = unsafe_file(folder, path)
    if problem:
        problems.add(display_path(path), None, problem)
        return {"id": derived_id(folder)}, {}
    text = read_text(path, "issue.yaml", problems)
    parsed = parse_yaml_mapping(text, path, problems) if text is not None else None
    if parsed is None:
        return {"id": derived_id(folder)}, {}
    raw, lines = parsed
    meta = _validate_fields(raw, lines, ISSUE_FIELDS, path, problems, config)
    _localize(meta, lines, display_path(path), problems)
    if "id" in raw and "id" not in meta:
        meta["id"] = derived_id(folder)  # not usable: said above; this only fills the gap
        return meta, lines
    meta.setdefault("id", derived_id(folder))
    # unique among the folders under issues/; one elsewhere, given by its path, is the
    # issue of that id moved (a copy sent again finds its send already in the ledger)
    others = ids.others(meta["id"], folder)
    if others and folder.resolve().parent == config.issues_dir.resolve():
        problems.add(display_path(path), lines.get("id"),
                     duplicate_problem(meta["id"], "id" in lines, others))
    return meta, lines


def _localize(meta: dict[str, Any], lines: dict[str, int], shown: str, problems: Problems
              ) -> None:
    """Title, subject and preheader written per language ({zh-CN: "…", en: "…"}): the
    default language's in meta[key], every form in meta["localized"][key]."""
    languages = meta.get("languages", [])
    if languages and "language" in meta:
        problems.add(shown, lines.get("language"), "both 'language' and 'languages' are set; "
                                                   "keep languages (its first is the default)")
    localized: dict[str, dict[str, str]] = {}
    for key in LOCALIZED:
        value = meta.get(key)
        if not isinstance(value, dict):
            continue
        if not languages:
            problems.add(shown, lines.get(key), f"'{key}' is written per language but the "
                                                "issue has no 'languages'; add languages: "
                                                f"[{', '.join(value)}] or write one {key}")
            meta[key] = next(iter(value.values()), "")
            continue
        for language in value:
            if language not in languages:
                problems.add(shown, lines.get(key),
                             f"'{key}' has a form for '{language}', which is not one of the "
                             f"issue's languages ({', '.join(languages)}); add it to "
                             "languages or remove it")
        if languages[0] not in value:
            problems.add(shown, lines.get(key),
                         f"'{key}' has no form for '{languages[0]}', the issue's default "
                         f"language (the first of languages); add {languages[0]}: \"…\"")
        localized[key] = value
        meta[key] = value.get(languages[0], "")
    meta["localized"] = localized


def _validate_fields(raw: dict, lines: dict, fields: dict[str, Field], path: Path,
                     problems: Problems, config: Config) -> dict[str, Any]:
    shown = display_path(path)
    first = min(lines.values(), default=1)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        line = lines.get(key, first)
        spec = fields.get(key)
        if spec is None:
            problems.add(shown, line, f"unknown key '{key}'{did_you_mean(key, fields)}"
                         + ("" if did_you_mean(key, fields) else
                            f"; known keys: {', '.join(fields)}"))
            continue
        converted = _convert(key, value, spec, config, shown, line, problems)
        if converted is not None:
            out[key] = converted
    for key, spec in fields.items():
        if spec.required and key not in raw:
            problems.add(shown, first, f"missing required key '{key}'; add a line "
                                       f"'{spec.example}'")
    return out


def _convert(key: str, value: Any, spec: Field, config: Config, shown: str, line: int,
             problems: Problems) -> Any:
    def wrong(expected: str) -> None:
        written = repr(value) if len(repr(value)) <= 60 else repr(value)[:59] + "…"
        problems.add(shown, line, f"'{key}' must be {expected}, not {written}")

    kind = spec.type
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        return wrong("a whole number like 9")
    if kind == "bool":
        return value if isinstance(value, bool) else wrong("true or false")
    if kind == "id":
        problem = id_problem(value)
        if problem:
            problems.add(shown, line, problem)
            return None
        return str(value).strip()
    if kind == "list":
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
            return [str(v) for v in value]
        return wrong("a list like [a, b]")
    if kind == "segment":
        segment, found = parse_segment(value)
        for problem in found:
            problems.add(shown, line, problem)
        return segment
    if kind == "language":
        if not isinstance(value, str):
            return wrong("a language tag like zh-CN")
        if value_problem("language", value.strip()):
            problems.add(shown, line, f"'{key}' is '{value.strip()}', not a language tag; "
                                      "write it like 'en', 'zh-CN' or 'ar'")
            return None
        return value.strip()
    if kind == "issue_kind":
        if value in ISSUE_KINDS:
            return value
        return wrong(f"one of {', '.join(ISSUE_KINDS)} (welcome: the email each newly "
                     "confirmed reader gets)")
    if kind == "languages":
        tags = [value] if isinstance(value, str) else value
        if not isinstance(tags, list) or not tags or \
                not all(isinstance(tag, str) and not value_problem("language", tag.strip())
                        for tag in tags):
            return wrong("a list of language tags like [zh-CN, en]")
        tags = [tag.strip() for tag in tags]
        if len(set(tags)) < len(tags):
            return wrong("a list of different language tags")
        return tags
    if kind == "text" and isinstance(value, dict):
        out = {}
        for language, text in value.items():
            if not isinstance(language, str) or value_problem("language", language):
                problems.add(shown, line, f"'{key}' has a form for '{language}', which is not "
                                          "a language tag; write it like en: \"…\"")
            elif not isinstance(text, str | int | float) or isinstance(text, bool):
                problems.add(shown, line, f"'{key}' in {language} must be text")
            else:
                out[language] = str(text).strip()
        return out or None
    if kind in ("str", "image", "text"):
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value).strip()
        return wrong("text")
    text = str(value).strip()
    if kind == "date":
        try:
            return date.fromisoformat(text)
        except ValueError:
            problems.add(shown, line, f"'{key}' is '{text}', not a real date; write it as "
                                      "YYYY-MM-DD, like 2024-01-31")
            return None
    if kind == "datetime":
        return parse_send_at(text, config, shown, line, problems, key)
    raise AssertionError(kind)


def parse_send_at(text: str, config: Config, shown: str, line: int | None,
                  problems: Problems, key: str = "send_at") -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text else text)
    except ValueError:
        problems.add(shown, line, f"'{key}' is '{text}', not a real date and time; write "
                                  "it like 2024-01-31T09:00:00+08:00")
        return None
    if when.tzinfo is None:
        if config.zone is None:
            problems.add(shown, line, f"'{key}' has no time zone and newsletter.toml sets no "
                                      "timezone; write it like 2024-01-31T09:00:00+08:00 "
                                      "or set timezone = \"Asia/Shanghai\"")
            return None
        when = when.replace(tzinfo=config.zone)
    return when


# --- sections ----------------------------------------------------------------------

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*$\r?\n?", re.S | re.M)


def _read_section(path: Path, folder: Path, config: Config, problems: Problems
                  ) -> Section | None:
    shown = display_path(path)
    text = read_text(path, "section", problems)
    if text is None:
        return None
    if not text.startswith("---"):
        problems.add(shown, 1, "no front matter; start the file with a line '---', then "
                               "'kind: <kind>', then '---'")
        return None
    match = _FRONT.match(text)
    if not match:
        problems.add(shown, 1, "front matter is not closed; add a line '---' after it")
        return None
    parsed = parse_yaml_mapping(match[1], path, problems, first_line=2)
    if parsed is None:
        return None
    raw, lines = parsed
    meta = _validate_fields(raw, lines or {"kind": 2}, SECTION_FIELDS, path, problems, config)
    kind = meta.get("kind")
    section_kind = config.sections.get(kind) if kind else None
    if kind and section_kind is None:
        known = ", ".join(sorted(config.sections))
        problems.add(shown, lines.get("kind", 2),
                     f"unknown section kind '{kind}'{did_you_mean(kind, config.sections)}"
                     f"; known kinds: {known} (add [sections.{kind}] to newsletter.toml "
                     "for a new one)")
    body_start = match.group(0).count("\n")  # lines before the body
    body = commonmark.parse(text[match.end():])
    for block in body:
        if block.map:
            block.map = [block.map[0] + body_start, block.map[1] + body_start]
    source = text.split("\n")
    intro, items = _split_items(body, path, folder, source, problems)
    if section_kind is None:
        return None
    section = Section(path=shown, kind=kind, title=meta.get("title") or section_kind.label,
                      template=section_kind.template, intro=intro, items=items,
                      file=path.resolve())
    _attach_sources(section, source, body_start)
    section.images, section.links = _images_and_links(intro, path, folder, source, problems)
    return section


def _attach_sources(section: Section, source: list[str], body_start: int) -> None:
    """Each item's Markdown as written: the lines between its heading and the next."""
    starts = [item.line for item in section.items]  # 1-based lines of the headings
    ends = [line - 1 for line in starts[1:]] + ([len(source)] if starts else [])
    section.intro_source = "\n".join(source[body_start:(starts[0] - 1) if starts else None]).strip()
    for item, start, end in zip(section.items, starts, ends, strict=True):
        item.source = "\n".join(source[start:end]).strip()


def _split_items(body, path: Path, folder: Path, source: list[str], problems: Problems
                 ) -> tuple[list, list[Item]]:
    """Every '## ' heading starts an item; what comes before is the introduction."""
    intro: list = []
    items: list[Item] = []
    current: list = intro
    i = 0
    while i < len(body):
        block = body[i]
        if block.type == "heading_open" and block.tag == "h2" and block.level == 0:
            title = commonmark.inline_text(body[i + 1].children or []).strip()
            line = block.map[0] + 1
            if not title:
                problems.add(display_path(path), line, "an item heading '## ' has no title; "
                                                       "write the title after '## '")
            item = Item(title=title, path=display_path(path), line=line, body=[])
            items.append(item)
            current = item.body
            i += 3
            continue
        current.append(block)
        i += 1
    for item in items:
        item.images, item.links = _images_and_links(item.body, path, folder, source, problems)
    return intro, items


def _images_and_links(body, path: Path, folder: Path, source: list[str], problems: Problems
                      ) -> tuple[list[Image], list[Link]]:
    images, links = [], []
    shown = display_path(path)
    for block in body:
        if block.type != "inline":
            continue
        where = _Written(block.map, source)
        for child in block.children or []:
            if child.type == "image":
                src = str(child.attrs.get("src", ""))
                images.append(_local_image(folder, src, child.content, path,
                                           where.line_of(src), problems))
        for href, text in commonmark.link_texts(block.children or []):
            links.append(Link(href, text, shown, where.line_of(href)))
    return images, links


class _Written:
    """The line of a block where a URL is written, the next time it is asked for
    (markdown-it maps blocks, not spans). A cursor per URL keeps a block with thousands
    of links linear."""

    def __init__(self, span: list[int] | None, source: list[str]):
        self.start, self.end = (span[0], min(span[1], len(source))) if span else (0, 0)
        self.source = source
        self.cursors: dict[str, tuple[int, int]] = {}  # url -> (line index, column)

    def line_of(self, url: str) -> int:
        number, column = self.cursors.get(url, (self.start, 0))
        while url and number < self.end:
            found = self.source[number].find(url, column)
            if found >= 0:
                self.cursors[url] = (number, found + len(url))
                return number + 1
            number, column = number + 1, 0
        self.cursors[url] = (self.end, 0)
        return self.start + 1


def _local_image(folder: Path, src: str, alt: str, path: Path, line: int, problems: Problems,
                 key: str = "image") -> Image:
    shown = display_path(path)
    if re.match(r"^[a-z][a-z0-9+.-]*:", src, re.I):
        return Image(src, alt, shown, line)
    relative = PurePosixPath(src.split("#")[0].split("?")[0])
    if relative.is_absolute() or ".." in relative.parts:
        problems.add(shown, line, f"{key} '{src}' points outside the issue folder; put the "
                                  "file under images/ and write images/<file>")
        return Image(src, alt, shown, line)
    named = next(filter(None, map(name_problem, relative.parts)), None)
    if named:
        problems.add(shown, line, f"{key} {named}")
        return Image(src, alt, shown, line)
    file = folder / relative
    if not file.exists():
        problems.add(shown, line, f"{key} '{src}' not found in {display_path(folder)}; add "
                                  "the file or fix the path")
        return Image(src, alt, shown, line)
    problem = unsafe_file(folder, file)
    if problem:
        problems.add(shown, line, f"{key} '{src}' {problem}")
        return Image(src, alt, shown, line)
    size = file.stat().st_size
    problem, header = image_problem(file, size)
    if problem:
        problems.add(shown, line, f"{key} '{src}' {problem}")
        return Image(src, alt, shown, line)
    return Image(src, alt, shown, line, asset=relative.as_posix(), width=header.width or None,
                 height=header.height or None, size=size, format=header.format,
                 alpha=header.alpha)
