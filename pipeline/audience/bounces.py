"""`audience bounces FILE`: delivery status notifications (RFC 3464) from an mbox file or
a Maildir folder, for publications that send through SMTP.

Each notification is a ``multipart/report; report-type=delivery-status`` whose
``message/delivery-status`` part has one block per recipient: ``Final-Recipient``,
``Action`` and ``Status``. A permanent failure (5.x.x) is a hard bounce: the address is
suppressed. A transient one (4.x.x) is counted and nothing more: the server may take the
next issue. The returned message's Message-ID (ours: ``<issue-id.reader-id@domain>``)
ties a bounce to its issue for `stats`. Every bounce is an event stored once, so reading
the same mailbox again changes nothing.

A message that cannot be read, or a report without a recipient or a status, is reported
with its position (the mbox line, or the Maildir file) and the others are read on; a
message that is not a report at all (an auto-reply) is passed over and counted.
"""

from __future__ import annotations

import email
import hashlib
import mailbox
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..errors import PipelineError, Problem, display_path
from ..store import Database
from .addresses import email_problem
from .events import Event, record_events

MAX_MESSAGE = 10 * 1024 * 1024  # bytes: a bounce with the whole issue attached is smaller
OUR_MESSAGE_ID = re.compile(r"^<(?P<issue>.+)\.(?P<reader>\d{1,18})@[^>]+>$")
STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}")


@dataclass
class BounceReport:
    messages: int = 0
    hard: int = 0  # permanent failures (5.x.x) read
    soft: int = 0  # transient (4.x.x): not suppressed
    suppressed: int = 0  # addresses suppressed now (not before)
    repeated: int = 0  # bounces already read from this or another mailbox
    not_reports: int = 0  # messages that are no delivery status notification
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        return (f"read {self.messages} messages: {self.hard} hard bounces ({self.suppressed} "
                f"addresses suppressed now), {self.soft} soft bounces (not suppressed), "
                f"{self.not_reports} not delivery reports, {len(self.problems)} unreadable; "
                f"{self.repeated} bounces were read before")


@dataclass(frozen=True)
class Bounce:
    email: str
    status: str  # 5.1.1
    diagnostic: str


def read_bounces(db: Database, path: Path, now: datetime) -> BounceReport:
    """Read every message of the mbox file or Maildir folder; suppress hard bounces."""
    report = BounceReport()
    events: list[Event] = []
    counted: Counter[str] = Counter()
    for where, data in _messages(path, report):
        report.messages += 1
        try:
            found = _bounces(data, now)
        except _NotReport:
            report.not_reports += 1
            continue
        except (_Unreadable, ValueError, LookupError, TypeError) as exc:
            report.problems.append(Problem(*where, f"{exc}; this message was passed over"))
            continue
        dsn_id, issue, reader, when, bounces = found
        for bounce in bounces:
            hard = bounce.status.startswith("5")
            counted["hard" if hard else "soft"] += 1
            events.append(Event(
                event_id=f"dsn:{dsn_id}:{bounce.email.lower()}",
                kind="bounce" if hard else "deferred", email=bounce.email, occurred_at=when,
                source="dsn", issue=issue, subscriber_id=reader,
                reason=f"{bounce.status} {bounce.diagnostic}".strip()))
    recorded = record_events(db, events, now)
    report.hard, report.soft = counted["hard"], counted["soft"]
    report.suppressed = len(recorded.suppressed)
    report.repeated = recorded.repeated
    return report


def _messages(path: Path, report: BounceReport) -> Iterator[tuple[tuple[str, int | None], bytes]]:
    """Each message's raw bytes, with its position (path, line) for messages."""
    shown = display_path(path)
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new")):
            raise PipelineError("not a Maildir (no cur/ and new/ folders in it); give an mbox "
                                "file or a Maildir folder", path=shown)
        box: mailbox.Mailbox = mailbox.Maildir(path, factory=None, create=False)
        keys = sorted(box.keys(), key=lambda k: box._toc[k])  # type: ignore[attr-defined]
        for key in keys:
            where = (f"{shown}/{box._toc[key]}", None)  # type: ignore[attr-defined]
            data = _read(box, key, where, report)
            if data is not None:
                yield where, data
        return
    try:
        with path.open("rb") as probe:
            start = probe.read(5)
    except OSError as exc:
        raise PipelineError(f"cannot be read: {exc.strerror or exc}", path=shown) from None
    if start and start != b"From ":
        raise PipelineError("not an mbox file (it does not begin with a 'From ' line); give "
                            "an mbox file or a Maildir folder", path=shown)
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        keys = box.keys()
        lines = _line_numbers(path, [box._toc[k][0] for k in keys])  # type: ignore[attr-defined]
        for key in keys:
            where = (shown, lines[box._toc[key][0]])  # type: ignore[attr-defined]
            data = _read(box, key, where, report)
            if data is not None:
                yield where, data
    finally:
        box.close()


def _read(box: mailbox.Mailbox, key: str, where: tuple[str, int | None],
          report: BounceReport) -> bytes | None:
    try:
        data = box.get_bytes(key)
    except (OSError, KeyError, mailbox.Error) as exc:
        report.messages += 1
        report.problems.append(Problem(*where, f"cannot be read ({exc}); passed over"))
        return None
    if len(data) > MAX_MESSAGE:
        report.messages += 1
        report.problems.append(Problem(*where, f"a message of {len(data):,} bytes, over the "
                                               f"{MAX_MESSAGE:,} a bounce may have; passed over"))
        return None
    return data


def _line_numbers(path: Path, offsets: list[int]) -> dict[int, int]:
    """The line (1-based) each byte offset starts, in one pass over the file."""
    lines, wanted = {}, sorted(offsets)
    line, position, i = 1, 0, 0
    with path.open("rb") as handle:
        while i < len(wanted):
            chunk = handle.read(1 << 20)
            while i < len(wanted) and wanted[i] < position + len(chunk):
                lines[wanted[i]] = line + chunk.count(b"\n", 0, wanted[i] - position)
                i += 1
            if not chunk:
                break
            line += chunk.count(b"\n")
            position += len(chunk)
    for offset in wanted[i:]:
        lines[offset] = line
    return lines


class _NotReport(Exception):
    pass


class _Unreadable(Exception):
    pass


def _bounces(data: bytes, now: datetime
             ) -> tuple[str, str | None, int | None, datetime, list[Bounce]]:
    """(the report's id, the issue and reader it is about, when, its recipients' bounces)."""
    message = email.message_from_bytes(data, policy=policy.compat32)
    if message.get_content_type() != "multipart/report" or \
            message.get_param("report-type", "").lower() != "delivery-status":
        raise _NotReport
    status_part = next((p for p in message.walk()
                        if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None or not isinstance(status_part.get_payload(), list):
        raise _Unreadable("a delivery report without its message/delivery-status part")
    blocks: list[Message] = status_part.get_payload()
    bounces = []
    for block in blocks[1:]:  # the first block is about the message, the others recipients
        recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        address = recipient.partition(";")[2].strip().strip("<>") if ";" in recipient \
            else recipient.strip().strip("<>")
        status = str(block.get("Status") or "").strip()
        action = str(block.get("Action") or "").strip().lower()
        if not address or email_problem(address):
            raise _Unreadable(f"a recipient block without a usable Final-Recipient "
                              f"({recipient.strip()[:80] or 'none'})")
        if not STATUS.match(status):
            raise _Unreadable(f"no valid Status for {address} ('{status[:20]}'); "
                              "RFC 3464 wants one like 5.1.1")
        if status.startswith("2") or action in ("delivered", "relayed", "expanded"):
            continue  # a success notice
        diagnostic = " ".join(str(block.get("Diagnostic-Code") or "").split())
        bounces.append(Bounce(address, STATUS.match(status)[0], diagnostic[:300]))
    if not bounces and len(blocks) < 2:
        raise _Unreadable("a delivery report that names no recipient")
    dsn_id = hashlib.sha256(str(message.get("Message-ID") or "").encode() or data
                            ).hexdigest()[:32]
    issue, reader = _ours(message)
    return dsn_id, issue, reader, _when(message, blocks[0] if blocks else None, now), bounces


def _ours(report: Message) -> tuple[str | None, int | None]:
    """The issue and reader of the returned message, when its Message-ID is one of ours."""
    for part in report.walk():
        kind = part.get_content_type()
        headers: Message | None = None
        if kind == "message/rfc822" and isinstance(part.get_payload(), list):
            headers = part.get_payload()[0]
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True) or b""
            headers = email.message_from_bytes(text, policy=policy.compat32)
        if headers is not None:
            match = OUR_MESSAGE_ID.match(str(headers.get("Message-ID") or "").strip())
            if match:
                return match["issue"], int(match["reader"])
    return None, None


def _when(report: Message, about: Message | None, now: datetime) -> datetime:
    for stamp in (about.get("Arrival-Date") if about else None, report.get("Date")):
        try:
            when = parsedate_to_datetime(str(stamp)) if stamp else None
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            return when
    return now
