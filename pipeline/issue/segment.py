"""Tags and segments: which readers an issue is for.

A reader has tags (``audience tag``, the CSV column ``tags``); an issue's ``audience:
{tags: [...], exclude: [...]}`` in issue.yaml sends it to the active readers with at least
one of ``tags`` (every active reader when there are none) and none of ``exclude``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The rule of a tag lives in config ([topics] names tags); it is the segments' rule too.
from ..config import MAX_TAG, TAG_RULE, normal_tag, tag_problem

MAX_TAGS = 50  # a reader's, or a segment's list
__all__ = ["MAX_TAG", "MAX_TAGS", "TAG_RULE", "EVERYONE", "Segment", "normal_tag",
           "parse_segment", "split_tags", "tag_problem"]


def split_tags(cell: str) -> list[str]:
    """The tags of a CSV cell: separated by commas, semicolons or spaces; or each in
    double quotes, as Mailchimp exports them (``"Editors","Big Fans"``: a space inside one
    becomes a hyphen, big-fans)."""
    if '"' in cell:
        return [re.sub(r"\s+", "-", normal_tag(t)) for t in re.findall(r'"([^"]*)"', cell)
                if t.strip()]
    return [normal_tag(t) for t in re.split(r"[,;\s]+", cell) if t.strip()]


@dataclass(frozen=True)
class Segment:
    tags: tuple[str, ...] = ()  # any of these (none: everyone)
    exclude: tuple[str, ...] = ()  # none of these

    @property
    def everyone(self) -> bool:
        return not self.tags and not self.exclude

    def describe(self) -> str:
        """How status and dry runs name it: "tags ai, ml; not paused" or "everyone"."""
        parts = []
        if self.tags:
            parts.append("tags " + ", ".join(self.tags))
        if self.exclude:
            parts.append("not " + ", ".join(self.exclude))
        return "; ".join(parts) or "everyone"

    def as_json(self) -> dict:
        return {"tags": list(self.tags), "exclude": list(self.exclude)}


EVERYONE = Segment()


def parse_segment(value: object) -> tuple[Segment | None, list[str]]:
    """issue.yaml's ``audience`` value: the segment, or the problems with it."""
    example = "audience: {tags: [ai], exclude: [paused]}"
    if not isinstance(value, dict):
        return None, [f"'audience' must be a mapping like {example}"]
    problems = [f"'audience' has an unknown key '{key}'; it takes tags and exclude"
                for key in value if key not in ("tags", "exclude")]
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("tags", "exclude"):
        raw = value.get(key, [])
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(t, str | int) for t in raw):
            problems.append(f"'audience.{key}' must be a list of tags like [ai, research]")
            continue
        if len(raw) > MAX_TAGS:
            problems.append(f"'audience.{key}' lists {len(raw)} tags; at most {MAX_TAGS}")
            continue
        tags = [normal_tag(str(t)) for t in raw]
        problems += [f"audience.{key}: {p}" for t in tags if (p := tag_problem(t))]
        lists[key] = tuple(dict.fromkeys(tags))
    both = set(lists.get("tags", ())) & set(lists.get("exclude", ()))
    if both:
        problems.append(f"'audience' both wants and excludes {', '.join(sorted(both))}; "
                        "keep each tag in one of the lists")
    if problems:
        return None, problems
    return Segment(lists.get("tags", ()), lists.get("exclude", ())), []
