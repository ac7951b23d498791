"""An issue's stable identity: the ``id`` in issue.yaml.

The send ledger, schedules, the archive's URLs and the Message-IDs key on the id, not on
the folder, so that a folder can be renamed or moved without the issue being sent again.
`newsletter new` writes it. An issue without one has an id derived from its folder's
name, which is also the key a ledger written before ids existed used; it is written
into issue.yaml the first time the issue is sent or scheduled, and stays when the
folder is renamed.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import yaml

from ..errors import PipelineError, Problems, display_path
from .edit import quoted_if_needed, set_key
from .files import parse_yaml_mapping, read_text, unsafe_file

ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
ID_RULE = "lower-case letters, digits and hyphens, like ai-weekly-10"
RECORDED = "recorded by newsletter: keep it when you rename the folder"


def is_id(text: str) -> bool:
    return bool(ID.fullmatch(text))


def derived_id(folder: Path) -> str:
    """The id of an issue whose issue.yaml has none: its folder's name when that is a
    usable id (so a ledger keyed by folder names still matches), else made into one."""
    name = folder.resolve().name
    if is_id(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    if slug and sum(map(str.isalnum, ascii_name)) == sum(map(str.isalnum, name)):
        return slug  # only case, accents, spaces or punctuation differ: "Issue 9" → issue-9
    # letters with no ASCII form (周报): a short digest keeps such names apart
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else f"issue-{digest}"


class IssueIds:
    """Every issue folder's id, read once: for uniqueness, for finding an issue by its
    id, and for a ledger row keyed by a folder's name before the issue had an id."""

    def __init__(self, folders: Iterable[Path]):
        self.by_id: dict[str, list[Path]] = {}
        for folder in folders:
            issue_id = _quick_id(folder)
            if issue_id:
                self.by_id.setdefault(issue_id, []).append(folder.resolve())

    def folders(self, issue_id: str) -> list[Path]:
        return self.by_id.get(issue_id, [])

    def others(self, issue_id: str, folder: Path) -> list[Path]:
        """The other folders with this id."""
        return [f for f in self.folders(issue_id) if f != folder.resolve()]

    def ledger_keys(self, issue_id: str, folder: Path) -> tuple[str, ...]:
        """The keys the ledger may hold this issue's send under: its id, then its
        folder's name if the issue was sent under that before it had an id (unless
        another issue's id is that name)."""
        name = folder.resolve().name
        if name == issue_id or self.others(name, folder):
            return (issue_id,)
        return (issue_id, name)


_ID_KEY = re.compile(r"""^["']?id["']?[ \t]*:""", re.M)  # any line that may set the id
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}  # not strings
_PLAIN_ID = re.compile(r"^id:[ \t]*([a-z][a-z0-9-]*)[ \t]*(?:#.*)?$", re.M)


def _quick_id(folder: Path) -> str | None:
    """The id of a folder without validating the rest of it; None if unreadable (the
    folder's own read reports why). Every folder is asked on every read, so the usual
    files are answered from their lines: no id line at all, or one plain `id: x`; only
    anything else (quotes, flow style, anchors) is parsed as YAML."""
    path, problems = folder / "issue.yaml", Problems()  # the folder's own read says them
    text = None if unsafe_file(folder, path) else read_text(path, "issue.yaml", problems)
    if text is None:
        return None
    if not (text.lstrip().startswith("{") or "<<" in text or "&" in text):
        keys, plain = _ID_KEY.findall(text), _PLAIN_ID.findall(text)
        if not keys:
            return derived_id(folder)
        if len(keys) == len(plain) == 1 and is_id(plain[0]) and plain[0] not in _YAML_WORDS:
            return plain[0]
    parsed = parse_yaml_mapping(text, path, problems)
    if parsed is None:
        return None
    data, _ = parsed
    value = data.get("id")
    if value is None:
        return None if "id" in data else derived_id(folder)
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if is_id(text) else None


def id_problem(value: object) -> str | None:
    """What is wrong with an `id:` value, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return (f"'id' must be text like ai-weekly-10, not {value!r}; put it in quotes if "
                "it is meant as text")
    if not is_id(value.strip()):
        return (f"'id' is '{value}', not a usable id; use {ID_RULE} (keep it once the "
                "issue is sent: the ledger and the archive's URLs use it)")
    return None


def duplicate_problem(issue_id: str, recorded: bool, others: list[Path]) -> str:
    where = ", ".join(f"{display_path(other)}/" for other in others)
    if recorded:
        return (f"id '{issue_id}' is also the id of {where}; give each issue its own id "
                "(a copied folder needs a new one)")
    return (f"id '{issue_id}' (from the folder's name) is also the id of {where}; add a line "
            "'id: ...' with an id of its own")


def record_id(folder: Path, issue_id: str) -> bool:
    """Write ``id:`` into issue.yaml when it is not there yet; True if it was written."""
    path = folder / "issue.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PipelineError(f"cannot read it to record the issue's id: {exc}",
                            path=display_path(path)) from None
    if isinstance(data, dict) and "id" in data:
        return False
    try:
        set_key(path, "id", quoted_if_needed(issue_id), comment=RECORDED)
    except PipelineError as exc:
        raise PipelineError("the issue's id is recorded before it is first sent or scheduled, "
                            f"and could not be: {exc.problems[0].message}",
                            path=display_path(path)) from None
    return True
