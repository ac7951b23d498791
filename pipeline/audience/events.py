"""Provider events: what became of each message after it left (delivered, opened,
clicked, deferred, bounced, dropped, reported as spam, unsubscribed at the provider).

Each event is stored once, by its id (SendGrid's ``sg_event_id``, or a bounce
notification's own): a webhook delivered twice, or a mailbox read twice, counts once.
A hard bounce, a drop, a spam report or an unsubscribe suppresses the address, with the
reason, so that no later send reaches it. Events name the issue and the reader they are
about when the message carried them (SendGrid's custom_args ``issue`` and ``subscriber``,
a Message-ID of ours in a bounce); stats count them per issue.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from ..store import Database, transaction
from .queries import suppress

# event kind -> the suppression reason it records
SUPPRESSING = {"bounce": "bounce", "dropped": "dropped", "spamreport": "spam",
               "unsubscribe": "unsubscribe", "group_unsubscribe": "unsubscribe"}
COUNTED = ("delivered", "open", "click", "deferred", "blocked")  # stored, not suppressing
KINDS = (*SUPPRESSING, *COUNTED)
MAX_ID, MAX_REASON, MAX_ISSUE = 200, 500, 200  # characters stored


@dataclass(frozen=True)
class Event:
    event_id: str
    kind: str  # one of KINDS
    email: str
    occurred_at: datetime
    source: str  # sendgrid | dsn
    issue: str | None = None  # the issue's id
    subscriber_id: int | None = None
    reason: str = ""


@dataclass
class EventReport:
    stored: Counter[str] = field(default_factory=Counter)  # new events, by kind
    repeated: int = 0  # already stored: not counted again
    suppressed: list[tuple[str, str]] = field(default_factory=list)  # (address, reason) new

    def line(self) -> str:
        stored = ", ".join(f"{kind} {n}" for kind, n in sorted(self.stored.items()))
        return (f"stored {sum(self.stored.values())} events ({stored or 'none'}), "
                f"{self.repeated} already stored, {len(self.suppressed)} addresses suppressed")


def record_events(db: Database, events: list[Event], now: datetime) -> EventReport:
    """Store the events not stored before, and suppress the addresses of those that say
    so; in one transaction."""
    report = EventReport()
    stamp = now.isoformat()
    with transaction(db):
        for event in events:
            if not _store(db, event, stamp):
                report.repeated += 1
                continue
            report.stored[event.kind] += 1
            reason = SUPPRESSING.get(event.kind)
            if reason and suppress(db, event.email, reason, event.source, now):
                report.suppressed.append((event.email, reason))
            if reason == "unsubscribe":
                db.execute("UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?, "
                           "unsubscribe_source = ?, updated_at = ? WHERE email_key = ? AND "
                           "status = 'active'", (stamp, event.source, stamp, event.email.lower()))
    return report


def _store(db: Database, event: Event, stamp: str) -> bool:
    """Insert the event unless its id is stored already; whether it was new."""
    return db.execute(
        "INSERT INTO events (event_id, kind, issue, subscriber_id, email_key, reason, "
        "source, occurred_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (event_id) DO NOTHING",
        (event.event_id[:MAX_ID], event.kind, (event.issue or None) and
         event.issue[:MAX_ISSUE], event.subscriber_id, event.email.lower(),
         event.reason[:MAX_REASON], event.source, event.occurred_at.isoformat(),
         stamp)).rowcount > 0


def record_unsubscribe(db: Database, subscriber_id: int, email: str, issue: str,
                       source: str, now: datetime) -> bool:
    """A reader left by the link of one of our issues (the unsubscribe page or its
    one-click POST): an ``unsubscribe`` event of that issue, for `stats`, once per reader
    and issue. Only an issue that was sent counts. Unlike a provider's unsubscribe it
    suppresses nothing: the reader's status says they left, and they may confirm their
    way back. Whether it was stored."""
    with transaction(db):
        if db.execute("SELECT 1 FROM sends WHERE issue = ?", (issue,)).fetchone() is None:
            return False
        return _store(db, Event(f"unsubscribe:{issue}:{subscriber_id}", "unsubscribe", email,
                                now, source, issue, subscriber_id), now.isoformat())
