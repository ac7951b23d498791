"""Schedules: send_at in issue.yaml, and each issue's state (draft, scheduled, due,
late, sending, sent, partial) from its schedule and its ledger.

Nothing here sends; ``delivery.due`` decides what `send --due` sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from ..audience.addresses import shown
from ..audience.queries import count_segment
from ..config import Config
from ..errors import IssueError, PipelineError, Problems
from ..issue import (
    ISSUE_FILE,
    IssueIds,
    issue_folders,
    issue_ids,
    parse_send_at,
    read_metadata,
    record_id,
    set_key,
)
from ..issue.segment import EVERYONE, Segment
from ..store import connect
from .ledger import Ledger


def parse_time(text: str, config: Config) -> datetime:
    """ISO 8601 with a zone, or a local time in the configured zone."""
    problems = Problems()
    when = parse_send_at(text.strip(), config, "--at", None, problems, key="time")
    if when is None:
        raise PipelineError(problems.items[0].message.replace("'send_at'", "the time"))
    return when


def set_send_at(folder: Path, when: datetime | None) -> Path:
    """Write (or with None remove) send_at in issue.yaml, leaving every other line and
    comment as it was."""
    path = folder / ISSUE_FILE
    set_key(path, "send_at", when.isoformat() if when else None, after="date")
    return path


def schedule_issue(folder: Path, config: Config, when: datetime | None, now: datetime
                   ) -> Path:
    """`schedule`: send_at written (or with None removed). A time in the past is refused
    (cron would send it at once, or refuse it as late), and so is an issue whose send has
    started: it is never sent again, so a schedule would only mislead. A schedule records
    the issue's id, so that the folder can be renamed before or after cron sends it."""
    if when is None:
        return set_send_at(folder, None)
    if when <= now:
        raise PipelineError(f"--at {when.isoformat()} is in the past (it is now "
                            f"{now.astimezone(when.tzinfo).isoformat(timespec='seconds')}); "
                            "give a later time, or send it now with `newsletter send`")
    ids = issue_ids(config)
    meta, lines = read_metadata(folder, config, ids)
    if meta.get("kind") == "welcome":
        raise PipelineError(f"{meta['id']}: a welcome issue (kind: welcome) is sent to each "
                            "reader who confirms a signup, never on a schedule",
                            path=str(folder / ISSUE_FILE), line=lines.get("kind"))
    db = connect(config.database)
    try:
        record = Ledger(db).find(*ids.ledger_keys(meta["id"], folder))
    finally:
        db.close()
    if record is not None:
        raise PipelineError(f"{meta['id']}: its send started {record.started_at} "
                            f"({record.total} readers) and it is never sent twice; "
                            "there is nothing to schedule")
    if "id" not in lines:
        record_id(folder, meta["id"])
    return set_send_at(folder, when)


@dataclass
class IssueState:
    folder: Path
    slug: str  # the folder's name
    number: int | None
    title: str
    send_at: datetime | None
    state: str  # draft | scheduled | due | late | sending | sent | partial | invalid | welcome
    provider: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    problem: str = ""
    unknown: list[str] = field(default_factory=list)  # addresses, when asked for
    id: str = ""  # the issue's id: what the ledger keys its send on
    ledger_keys: tuple[str, ...] = ()
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # failed and invalid:
    # (address, status, why), when asked for
    by_provider: dict[str, int] = field(default_factory=dict)  # sent, by provider
    audience: Segment = EVERYONE  # issue.yaml's segment
    readers: int | None = None  # how many it would go to now (an issue not sent yet)
    content_hash: str = ""  # the version sent: the folder's hash, and its git commit
    source_commit: str = ""
    by_edition: dict[str, dict[str, int]] = field(default_factory=dict)  # many languages

    def summary(self) -> list[str]:
        """The line `status` prints, and the addresses whose delivery is unknown, failed
        or impossible."""
        line = f"{self.slug}  {self.state:<9}  send_at " + \
            (self.send_at.isoformat() if self.send_at else "-")
        if self.total or self.provider:
            c = self.counts
            line += (f"  {self.provider}: {self.total} recipients, sent {c['sent']}, failed "
                     f"{c['failed']}, invalid {c['invalid']}, unknown {c['unknown']}, "
                     f"pending {c['pending']}  started {self.started_at}"
                     + (f" finished {self.finished_at}" if self.finished_at else ""))
        if self.readers is not None:
            line += f"  audience {self.audience.describe()}: {self.readers} readers"
        if self.by_edition:  # an issue in several languages: each edition's readers
            line += "  editions: " + "; ".join(
                f"{edition} {sum(c.values())} (sent {c['sent']}, pending {c['pending']})"
                for edition, c in self.by_edition.items())
        if len(self.by_provider) > 1:  # a send that failed over
            line += "  sent through " + ", ".join(f"{name} {count}" for name, count
                                                  in self.by_provider.items())
        if self.content_hash:
            line += f"  version sha256:{self.content_hash[:12]}" + \
                (f" commit {self.source_commit[:12]}" if self.source_commit else "")
        if self.id not in ("", self.slug):
            line += f"  id {self.id}"
        if self.problem:
            line += f"  {self.problem}"
        unknown = [f"  unknown (resend with `newsletter send {self.slug} --resend-unknown`):",
                   *(f"    {email}" for email in self.unknown)] if self.unknown else []
        refused = [f"  failed or invalid (fix them, then `newsletter send {self.slug} "
                   "--resend-failed`):",
                   *(f"    {shown(email)}  {status}: {why}" for email, status, why in
                     self.refused)] if self.refused else []
        return [line, *unknown, *refused]

    def as_json(self) -> dict:
        return {"issue": self.slug, "id": self.id or None, "number": self.number,
                "title": self.title,
                "send_at": self.send_at.isoformat() if self.send_at else None,
                "state": self.state, "provider": self.provider or None,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "total": self.total, **{k: self.counts.get(k, 0) for k in
                                         ("sent", "failed", "invalid", "unknown", "pending",
                                          "skipped")},
                "sent_by_provider": self.by_provider,
                "editions": {edition: {k: c.get(k, 0) for k in ("sent", "failed", "invalid",
                                                                "unknown", "pending",
                                                                "skipped")}
                             for edition, c in self.by_edition.items()},
                "audience": self.audience.as_json(), "readers": self.readers,
                "content_hash": self.content_hash or None,
                "commit": self.source_commit or None,
                "problem": self.problem or None}


def issue_states(config: Config, folders: list[Path] | None, now: datetime,
                 list_unknown: bool = False) -> list[IssueState]:
    """`status`: these issue folders (default: every one), with the addresses whose
    delivery is unknown when asked."""
    db = connect(config.database)
    try:
        ledger = Ledger(db)
        ids = issue_ids(config)
        states = [issue_state(folder, config, ledger, now, ids)
                  for folder in (issue_folders(config) if folders is None else folders)]
        for state in states if list_unknown else []:
            c = state.counts
            record = ledger.find(*state.ledger_keys) if c.get("unknown") or \
                c.get("failed") or c.get("invalid") else None
            if record:
                state.unknown = [row["email"] for row in ledger.rows(record.id, "unknown")]
                state.refused = [(row["email"], row["status"], row["error"] or "")
                                 for status in ("failed", "invalid")
                                 for row in ledger.rows(record.id, status)]
        return states
    finally:
        db.close()


def issue_state(folder: Path, config: Config, ledger: Ledger, now: datetime,
                ids: IssueIds | None = None) -> IssueState:
    ids = ids or issue_ids(config)
    try:
        meta, _ = read_metadata(folder, config, ids)
    except IssueError as exc:
        return IssueState(folder, folder.name, None, "", None, "invalid",
                          problem=exc.format_message().splitlines()[0])
    keys = ids.ledger_keys(meta["id"], folder)
    state = IssueState(folder, folder.name, meta.get("number"), meta.get("title", ""),
                       meta.get("send_at"), "draft", id=meta["id"], ledger_keys=keys,
                       audience=meta.get("audience", EVERYONE))
    record = ledger.find(*keys)
    if record:
        counts = ledger.counts(record.id)
        state.provider, state.started_at = record.provider, record.started_at
        state.finished_at, state.counts, state.total = record.finished_at, counts, record.total
        state.by_provider = ledger.providers(record.id)
        state.content_hash, state.source_commit = record.content_hash, record.source_commit
        state.by_edition = ledger.editions(record.id)
        if record.state == "sending":
            state.state = "sending"
        else:
            state.state = "partial" if counts["failed"] or counts["invalid"] or \
                counts["unknown"] else "sent"
    elif meta.get("kind") == "welcome":  # sent to each confirmed reader, never scheduled
        state.state = "welcome"
    else:
        state.readers = count_segment(ledger.db, state.audience)
    if not record and state.state == "draft" and state.send_at is not None:
        if state.send_at > now:
            state.state = "scheduled"
        elif now - state.send_at > config.max_lateness:
            state.state = "late"
        else:
            state.state = "due"
    return state


def format_delta(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "",
             f"{minutes}m" if minutes or not (days or hours) else ""]
    return "".join(parts)
