"""The validated issue: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .segment import EVERYONE, Segment

# Written right to left: languages by their primary subtag, and scripts (a tag's
# script subtag decides: ku-Arab is, az-Latn is not).
RTL_LANGUAGES = frozenset({"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ks", "ps", "sd",
                           "ug", "ur", "yi"})
RTL_SCRIPTS = frozenset({"adlm", "arab", "hebr", "mand", "nkoo", "rohg", "samr", "syrc",
                         "thaa"})


def text_direction(language: str) -> str:
    """"rtl" or "ltr" for a BCP 47 language tag."""
    first, *rest = language.lower().split("-")
    scripts = [part for part in rest if len(part) == 4 and part.isalpha()]
    if scripts:
        return "rtl" if scripts[0] in RTL_SCRIPTS else "ltr"
    return "rtl" if first in RTL_LANGUAGES else "ltr"


def pick_edition(language: str | None, languages: tuple[str, ...] | list[str]) -> str:
    """Of an issue's languages (the first the default), the one for a reader's language:
    the same tag (case aside), else one of the same primary language, else the first."""
    if not languages:
        return ""
    wanted = (language or "").strip().lower()
    if wanted:
        for tag in languages:
            if tag.lower() == wanted:
                return tag
        primary = wanted.split("-")[0]
        for tag in languages:
            if tag.lower().split("-")[0] == primary:
                return tag
    return languages[0]


@dataclass(frozen=True)
class Image:
    src: str  # as written in the Markdown or issue.yaml
    alt: str
    path: str  # file it appears in
    line: int
    asset: str | None = None  # local file, relative to the issue folder (posix)
    width: int | None = None  # natural size of a local image
    height: int | None = None
    size: int | None = None  # bytes of a local image
    format: str = ""  # of a local image, as Pillow names it (PNG, JPEG, WEBP…; SVG)
    alpha: bool = False  # a local image with transparency


@dataclass(frozen=True)
class Link:
    href: str
    text: str
    path: str
    line: int


@dataclass
class Item:
    title: str
    path: str
    line: int
    body: list[Any]  # the Markdown body, parsed: markdown-it's block tokens
    images: list[Image] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    source: str = ""  # the body's Markdown, as written


@dataclass
class Section:
    path: str
    kind: str
    title: str
    template: str
    intro: list[Any]  # the parsed Markdown before the first "## " (markdown-it tokens)
    items: list[Item]
    images: list[Image] = field(default_factory=list)  # those of the intro
    links: list[Link] = field(default_factory=list)
    intro_source: str = ""  # the introduction's Markdown, as written
    file: Path | None = None  # the section file, absolute
    name: str = ""  # the file's name without .md and a language: 01-tips for 01-tips.en.md


@dataclass
class Issue:
    folder: Path
    number: int
    title: str
    subject: str
    preheader: str
    date: date
    send_at: datetime | None
    editor: str
    contributors: list[str]
    tags: list[str]
    header_image: Image | None
    publish: bool
    sections: list[Section]
    lines: dict[str, int] = field(default_factory=dict)  # issue.yaml key -> line
    # The stable identity: the ledger, the archive's URLs and Message-IDs use it. From
    # issue.yaml (then lines has "id"), or derived from the folder's name.
    id: str = ""
    ledger_keys: tuple[str, ...] = ()  # the id, then a folder name it was sent under
    language: str = "en"  # BCP 47: issue.yaml's language, else newsletter.toml's
    audience: Segment = EVERYONE  # who of the active readers it is for
    kind: str = "issue"  # or "welcome": sent to each newly confirmed reader, not scheduled
    tag_links: bool = True  # issue.yaml's tag_links: false turns [links] tagging off
    # Editions (issue.yaml's languages: [zh-CN, en]): this Issue is the first language's;
    # the others, each an Issue of its own language, sections and words, by language.
    languages: tuple[str, ...] = ()
    translations: dict[str, Issue] = field(default_factory=dict)

    @property
    def editions(self) -> list[Issue]:
        """Every edition of the issue, the default first (one for a one-language issue)."""
        return [self, *self.translations.values()]

    def edition_for(self, language: str | None) -> Issue:
        """The edition a reader of this language gets: the same tag, else the same
        primary language (en-GB reads en, zh reads zh-CN), else the default."""
        return self.translations.get(pick_edition(language, self.languages), self) \
            if self.translations else self

    @property
    def direction(self) -> str:
        """"rtl" for a language written right to left (ar, he, fa, ur…, or a tag naming
        such a script: ku-Arab), else "ltr"."""
        return text_direction(self.language)

    @property
    def slug(self) -> str:
        """The folder's name: build/<folder>/ and what an editor types; not the id."""
        return self.folder.name

    @property
    def images(self) -> list[Image]:
        found = [self.header_image] if self.header_image else []
        for section in self.sections:
            found += section.images
            for item in section.items:
                found += item.images
        return found

    @property
    def links(self) -> list[Link]:
        found = []
        for section in self.sections:
            found += section.links
            for item in section.items:
                found += item.links
        return found
