"""new_issue: scaffold issues/<date>-<slug>/ numbered after the latest issue."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import yaml

from ..config import Config
from ..errors import PipelineError, display_path
from ..issue import issue_ids
from ..issue.edit import quoted_if_needed
from ..issue.identity import ID_RULE, is_id

ISSUE_TEMPLATE = """\
# Metadata of this issue. See README.md ("The issue folder") for every key.
# id: the issue's stable identity (its archive URL, its record of who was sent it);
# keep it when you rename the folder.
id: {id}
number: {number}
title: "{name}｜{number:02d}"
subject: "{name}｜{number:02d}"      # the email's subject line; defaults to the title
preheader: ""                        # the line mail clients show after the subject
date: {date}
# send_at: {date}T09:00:00           # uncomment to schedule; cron sends it then
editor: ""
contributors: []
tags: []
# header_image: images/header.png
"""

SECTION_TEMPLATE = """\
---
kind: {kind}
title: {label}
---

Text before the first "## " heading is the section's introduction (optional).

## The title of the first item

Write the item in Markdown: **bold**, *italic*, `code`, [a link](https://example.com),
lists, > quotes and code blocks. Put images in images/ and add them with
`![what the image shows](images/photo.png)`: the text in brackets is read aloud to
readers who cannot see the image.

## The title of the next item

Every "## " heading starts a new item.
"""


# The guidance lines of the section template: `check` reports any left in an issue.
SCAFFOLD_LINES = frozenset(
    line.strip() for line in SECTION_TEMPLATE.split("---\n")[-1].splitlines()
    if len(line.strip()) > 20)


def new_issue(slug: str, config: Config, on: date) -> Path:
    """issues/<date>-<slug>/ whose id is the slug: it must be no other issue's id."""
    if not is_id(slug):
        raise PipelineError(f"'{slug}' is not a usable slug; use {ID_RULE}")
    root = config.issues_dir
    folder = root / f"{on.isoformat()}-{slug}"
    if folder.exists():
        raise PipelineError("already exists; choose another slug or date", path=display_path(folder))
    number = latest_number(root) + 1
    ids = issue_ids(config)
    if ids.folders(slug):
        suggestion = f"{re.sub(r'-[0-9]+$', '', slug)}-{number}"
        like = "" if ids.folders(suggestion) or suggestion == slug else f", like {suggestion}"
        raise PipelineError(f"'{slug}' is already the id of {display_path(ids.folders(slug)[0])}/;"
                            f" give the new issue a slug of its own{like}")
    kinds = config.new_sections or list(config.sections)[:3]
    folder.mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "issue.yaml").write_text(
        ISSUE_TEMPLATE.format(id=quoted_if_needed(slug), number=number, name=config.name, date=on.isoformat()),
        encoding="utf-8")
    for n, kind in enumerate(kinds, 1):
        label = config.sections[kind].label if kind in config.sections else kind
        (folder / f"{n:02d}-{kind}.md").write_text(
            SECTION_TEMPLATE.format(kind=kind, label=label), encoding="utf-8")
    return folder


def latest_number(root: Path) -> int:
    """The highest issue number under issues/ (0 when none); unreadable files are skipped."""
    highest = 0
    for meta in root.glob("*/issue.yaml"):
        try:
            number = (yaml.safe_load(meta.read_text(encoding="utf-8")) or {}).get("number")
        except (yaml.YAMLError, UnicodeDecodeError, AttributeError):
            continue
        if isinstance(number, int) and not isinstance(number, bool):
            highest = max(highest, number)
    return highest
