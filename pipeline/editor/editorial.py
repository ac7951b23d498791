"""The checks that catch what editors miss: an empty section or item, a Markdown table,
item numbers out of step, images mail clients cannot show or that weigh too much, links
readers saw in recent issues, link text that is only the address, and mixed full- and
half-width punctuation. Each is a Problem at the source line with what to do about it;
all are warnings except an empty section or item, which is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..config import Config
from ..errors import IssueError, Problem
from ..issue import Issue, Section, read_issue
from ..issue.reader import issue_folders, read_metadata
from ..render.assets import SHARPNESS, email_format, issue_assets, prepare_image, shown_width

IMAGE_BYTES = 500 * 1024  # an image as readers download it, after the build optimises it
_FORMAT_NAMES = {"WEBP": "WebP", "AVIF": "AVIF"}

# --- sections and items ----------------------------------------------------------------


def empty_parts(issue: Issue) -> Iterator[Problem]:
    """A section with nothing in it, an item with only a heading (one whose heading is a
    link is a link roundup's item, and says enough)."""
    for section in issue.sections:
        if not section.items and not section.intro:
            yield Problem(section.path, 1, "the section is empty; write an item ('## ' and "
                          "its text) or delete the file")
        lines = _source(section)
        for item in section.items:
            heading = lines[item.line - 1] if item.line <= len(lines) else ""
            if not item.body and "](" not in heading:
                yield Problem(item.path, item.line, f"the item '{item.title}' has nothing "
                              "under its heading; write its text, or delete the heading")


_DELIMITER_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?\s*$|^\s*\|\s*:?-+:?\s*\|\s*$")


def tables(issue: Issue) -> Iterator[Problem]:
    """A Markdown table: the email shows it as lines of pipes, and no table is readable
    375 px wide."""
    for section in issue.sections:
        lines = _source(section)
        for body in [section.intro] + [item.body for item in section.items]:
            for block in body:
                if block.type != "paragraph_open" or not block.map:
                    continue
                start, end = block.map[0], min(block.map[1], len(lines))
                for number in range(start + 1, end):
                    if _DELIMITER_ROW.match(lines[number]) and "|" in lines[number - 1]:
                        yield Problem(section.path, number, "a Markdown table: the email "
                                      "shows it as lines of '|', and a table is unreadable "
                                      "on a phone (375 px); write it as a list, one row an "
                                      "entry", "warning")
                        break


_NUMBERED = re.compile(r"^\s*(?:No\.\s*|#)?(\d{1,4})\s*[.、．)）:：](?!\d)")


def item_numbers(issue: Issue) -> Iterator[Problem]:
    """Items titled '1. …', '2、…' in a section count up one at a time."""
    for section in issue.sections:
        numbered = [(int(m[1]), item) for item in section.items
                    if (m := _NUMBERED.match(item.title))]
        if len(numbered) < 2:
            continue
        seen: dict[int, int] = {}
        previous = None
        for number, item in numbered:
            if number in seen:
                yield Problem(item.path, item.line, f"item number {number} again (also on line "
                              f"{seen[number]}); number the items 1, 2, 3… in order", "warning")
            elif previous is not None and number != previous + 1:
                missing = (f"{previous + 1} is missing" if number > previous + 1
                           else "numbers go back")
                yield Problem(item.path, item.line, f"item number {number} follows {previous}: "
                              f"{missing}; number the items 1, 2, 3… in order", "warning")
            seen.setdefault(number, item.line)
            previous = number


# --- images ---------------------------------------------------------------------------


def images(issue: Issue) -> Iterator[Problem]:
    """Formats mail clients cannot show, images far wider than they are shown, and
    images that weigh too much even after the build optimises them."""
    assets = {asset.source: asset for asset in issue_assets(issue)}
    reported: set[str] = set()
    for image in issue.images:
        if not image.asset or image.asset in reported:
            continue
        reported.add(image.asset)
        where = (image.path, image.line)
        if image.format == "SVG":
            yield Problem(*where, f"image '{image.src}' is SVG, which Gmail and Outlook do not "
                          "show; export it as PNG", "warning")
            continue
        target = email_format(image)
        if target != image.format:
            name = _FORMAT_NAMES.get(image.format, image.format)
            yield Problem(*where, f"image '{image.src}' is {name}, which Outlook and older "
                          f"mail clients do not show; the build sends it as {target}, but "
                          "export it as JPEG or PNG to review what readers get", "warning")
        shown = shown_width(image, issue)
        if image.width and image.width > SHARPNESS * shown:
            yield Problem(*where, f"image '{image.src}' is {image.width} px wide and shown "
                          f"{shown} px wide; the build scales it to {SHARPNESS * shown} px, "
                          "export it at that width to keep the repository small", "warning")
        if (image.size or 0) > IMAGE_BYTES or target != image.format:
            written = len(prepare_image(assets[issue.folder / image.asset]).data)
            if written > IMAGE_BYTES:
                yield Problem(*where, f"image '{image.src}' is {written // 1024} KB even after "
                              f"the build optimises it, and every reader downloads it; crop "
                              f"it or export a photo as JPEG, under {IMAGE_BYTES // 1024} KB",
                              "warning")


# --- links ----------------------------------------------------------------------------


def link_texts(issue: Issue) -> Iterator[Problem]:
    """Link text that is only the address: it says nothing of where it leads."""
    for link in issue.links:
        text = link.text.strip()
        if text and (_bare(text) == _bare(link.href) or re.match(r"^(https?://|www\.)\S+$", text)):
            yield Problem(link.path, link.line, f"the link text is the address itself ({text}); "
                          "write what it leads to: [the report's title](...)", "warning")


def _bare(url: str) -> str:
    return re.sub(r"^(https?://)?(www\.)?", "", url.strip().lower()).rstrip("/")


def normal_url(url: str) -> str:
    """A link as readers see its page: without #fragment, utm_ tags or a trailing /."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_")]
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"),
                       urlencode(query), ""))


def recent_issues(issue: Issue, config: Config) -> list[Issue]:
    """The check.repeat_window issues dated before this one, latest first (those that
    cannot be read are left out: `check` on them says why)."""
    window = config.check.repeat_window
    if not window:
        return []
    dated = []
    for folder in issue_folders(config):
        if folder.resolve() == issue.folder:
            continue
        try:
            meta, _ = read_metadata(folder, config)
        except IssueError:
            continue
        if meta.get("date") and meta["date"] < issue.date and meta.get("kind") != "welcome":
            dated.append((meta["date"], folder))
    recent = []
    for _, folder in sorted(dated, reverse=True)[:window]:
        try:
            recent.append(read_issue(folder, config))
        except IssueError:
            continue
    return recent


def repeated_links(issue: Issue, config: Config) -> Iterator[Problem]:
    """Links readers already had in the last check.repeat_window issues."""
    seen: dict[str, Issue] = {}
    for earlier in reversed(recent_issues(issue, config)):  # the latest wins
        for link in earlier.links:
            if link.href.lower().startswith(("http://", "https://")):
                seen[normal_url(link.href)] = earlier
    said: set[str] = set()
    for link in issue.links:
        key = normal_url(link.href)
        if key in seen and key not in said:
            said.add(key)
            earlier = seen[key]
            yield Problem(link.path, link.line, f"{link.href} was in issue {earlier.number} "
                          f"({earlier.date.isoformat()}) too; readers have seen it: drop it, "
                          "or say what is new", "warning")


# --- punctuation ----------------------------------------------------------------------

_FULL_MARKS = "，；：！？。、"
_HALF_MARK = re.compile(r"(?<![\d/:])[,;:!?](?![\d/])")
_SENTENCE = re.compile(r"[^。！？!?]*[。！？!?]?")


def mixed_punctuation(text: str, path: str, line_of: Callable[[str], int | None],
                      flagged: set[int]) -> Iterator[Problem]:
    """A sentence with both full-width (，) and half-width (,) punctuation. Marks already
    reported (half-width between Chinese characters: at their offsets in flagged) and
    those between digits (1,000, 10:30) are left alone."""
    for sentence in _SENTENCE.finditer(text):
        body = sentence[0]
        full = next((c for c in body if c in _FULL_MARKS), None)
        if not full:
            continue
        for half in _HALF_MARK.finditer(body):
            if sentence.start() + half.start() in flagged:
                continue
            at = half.start()
            context = body[max(0, at - 6):at + 6].strip()
            yield Problem(path, line_of(body[max(0, at - 1):at + 2].strip() or half[0]),
                          f"full-width '{full}' and half-width '{half[0]}' in one sentence "
                          f"('{context}'); use one kind: full-width in Chinese", "warning")
            break


def _source(section: Section) -> list[str]:
    file: Path | None = section.file
    return file.read_text(encoding="utf-8").split("\n") if file else []
