"""The send ledger: who of which issue was sent, when, by which provider, with which
message id, or why not.

A send snapshots its audience into per-recipient rows (pending). A batch is marked
in-flight and committed *before* its request, and sent / failed after it. A row still
in flight when a run starts belongs to a run that died mid-request: it becomes
``unknown`` and is never sent again without an explicit decision. So nobody receives
an issue twice, and nobody is forgotten.

A send is keyed by the issue's id (``sends.issue``). A database written before issues
had ids keyed sends by folder name: an id-less issue's derived id is its folder's name,
so that still matches, and a send found under a former key is re-keyed to the id when
the issue is next sent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..audience.queries import AUDIENCE, READER, WHERE, reader_of, skip_reason
from ..store import transaction
from .personalise import Recipient

TERMINAL = ("sent", "failed", "unknown", "skipped")
_IN_IDS = "subscriber_id IN (SELECT value FROM json_each(?))"


def _ids(ids: Iterable[int]) -> str:
    """Subscriber ids as one JSON array: a batch is updated in one statement."""
    return json.dumps(list(ids))
STATUSES = ("pending", "inflight", *TERMINAL)


@dataclass(frozen=True)
class SendRecord:
    id: int
    issue: str
    subject: str
    provider: str
    state: str  # sending | done
    total: int
    started_at: str
    finished_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SendRecord:
        return cls(*(row[k] for k in ("id", "issue", "subject", "provider", "state", "total",
                                      "started_at", "finished_at")))


class Ledger:
    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.cursor: dict[int, int] = {}  # send id -> the last subscriber id claimed

    def find(self, issue: str, *former: str) -> SendRecord | None:
        """The send of the issue with this id, or one recorded under a former key of it
        (the folder's name it was sent under before it had an id): ``find(*keys)``."""
        for key in (issue, *former):
            row = self.db.execute("SELECT * FROM sends WHERE issue = ?", (key,)).fetchone()
            if row:
                return SendRecord.from_row(row)
        return None

    def start(self, issue: str, subject: str, provider: str, now: datetime,
              former: Sequence[str] = ()) -> tuple[SendRecord, int]:
        """The issue's send, created with its audience snapshot on first use (or found
        under a former key, and re-keyed to the id); and how many rows a dead run had
        left in flight (now ``unknown``)."""
        with transaction(self.db):
            known = self.find(issue, *former)
            if known is not None and known.issue != issue:
                self.db.execute("UPDATE sends SET issue = ? WHERE id = ?", (issue, known.id))
            if known is None:
                cursor = self.db.execute(
                    "INSERT INTO sends (issue, subject, provider, state, started_at) "
                    "VALUES (?, ?, ?, 'sending', ?)", (issue, subject, provider, now.isoformat()))
                send_id = cursor.lastrowid
                self.db.execute(
                    "INSERT INTO deliveries (send_id, subscriber_id, email, updated_at) "
                    f"SELECT ?, s.id, s.email, ? {AUDIENCE} {WHERE['active']}",
                    (send_id, now.isoformat()))
                self.db.execute("UPDATE sends SET total = (SELECT count(*) FROM deliveries "
                                "WHERE send_id = ?) WHERE id = ?", (send_id, send_id))
            record = self.find(issue)
            assert record is not None
            orphans = self.db.execute(
                "UPDATE deliveries SET status = 'unknown', updated_at = ?, error = "
                "'in flight when a run stopped: it may or may not have been delivered' "
                "WHERE send_id = ? AND status = 'inflight'",
                (now.isoformat(), record.id)).rowcount
            if orphans and record.state == "done":
                self.db.execute("UPDATE sends SET state = 'sending' WHERE id = ?", (record.id,))
        return self.find(issue) or record, orphans

    def claim(self, send_id: int, size: int, now: datetime) -> list[Recipient]:
        """The next batch of pending recipients, marked in flight and committed.

        Whoever unsubscribed or was suppressed since the snapshot is skipped here."""
        while True:
            batch, skipped = self._claim_once(send_id, size, now.isoformat())
            if batch or not skipped:  # a batch, or nothing pending at all
                return batch

    def _claim_once(self, send_id: int, size: int, stamp: str) -> tuple[list[Recipient], int]:
        # Pending rows are taken in key order from where the last batch ended: a range
        # scan of the primary key, so the ledger needs no index on status.
        after = self.cursor.get(send_id, 0)
        with transaction(self.db):
            rows = self.db.execute(
                f"SELECT d.subscriber_id, {READER} FROM deliveries d "
                f"{reader_of('d.subscriber_id')} WHERE d.send_id = ? AND d.subscriber_id > ? "
                "AND d.status = 'pending' ORDER BY d.subscriber_id LIMIT ?",
                (send_id, after, size)).fetchall()
            if rows:
                self.cursor[send_id] = rows[-1]["subscriber_id"]
            skipped, batch = [], []
            for row in rows:
                why = skip_reason(row)
                if why:
                    skipped.append((why, stamp, send_id, row["subscriber_id"]))
                else:
                    batch.append(_recipient(row))
            self.db.executemany("UPDATE deliveries SET status = 'skipped', error = ?, "
                                "updated_at = ? WHERE send_id = ? AND subscriber_id = ?",
                                skipped)
            self.db.execute("UPDATE deliveries SET status = 'inflight', attempts = attempts + 1, "
                            f"updated_at = ? WHERE send_id = ? AND {_IN_IDS}",
                            (stamp, send_id, _ids(r.id for r in batch)))
        return batch, len(skipped)

    def record(self, send_id: int, results: Iterable[tuple[Recipient, str, str, str]],
               provider: str, now: datetime) -> None:
        """Each recipient's outcome: (recipient, status, message id, error)."""
        stamp = now.isoformat()
        groups: dict[tuple[str, str, str], list[int]] = {}
        for recipient, status, message_id, error in results:
            groups.setdefault((status, message_id, error), []).append(recipient.id)
        with transaction(self.db):
            # one statement per distinct outcome (a SendGrid batch is one): set-based
            for (status, message_id, error), ids in groups.items():
                self.db.execute(
                    "UPDATE deliveries SET status = ?, message_id = ?, error = ?, provider = ?, "
                    f"updated_at = ? WHERE send_id = ? AND {_IN_IDS}",
                    (status, message_id or None, error or None, provider, stamp, send_id,
                     _ids(ids)))

    def release(self, send_id: int, recipients: Sequence[Recipient], error: str,
                now: datetime) -> None:
        """Back to pending: these were certainly not delivered (a later run sends them)."""
        self.record(send_id, [(r, "pending", "", error) for r in recipients], "", now)
        self.cursor.pop(send_id, None)  # a later claim looks from the start again

    def resend_unknown(self, send_id: int, now: datetime) -> int:
        with transaction(self.db):
            count = self.db.execute(
                "UPDATE deliveries SET status = 'pending', updated_at = ? "
                "WHERE send_id = ? AND status = 'unknown'", (now.isoformat(), send_id)).rowcount
            self.cursor.pop(send_id, None)
            if count:
                self.db.execute("UPDATE sends SET state = 'sending', finished_at = NULL "
                                "WHERE id = ?", (send_id,))
        return count

    def finish_if_done(self, send_id: int, now: datetime) -> bool:
        with transaction(self.db):
            open_rows = self.db.execute(
                "SELECT count(*) FROM deliveries WHERE send_id = ? AND status IN "
                "('pending', 'inflight')", (send_id,)).fetchone()[0]
            if open_rows:
                return False
            self.db.execute("UPDATE sends SET state = 'done', finished_at = coalesce("
                            "finished_at, ?) WHERE id = ?", (now.isoformat(), send_id))
            return True

    def counts(self, send_id: int) -> dict[str, int]:
        found = dict(self.db.execute("SELECT status, count(*) FROM deliveries WHERE send_id = ? "
                                     "GROUP BY status", (send_id,)).fetchall())
        return {status: found.get(status, 0) for status in STATUSES}

    def first_pending(self, send_id: int) -> Recipient | None:
        """The next reader a send would go to (for the dry run's sample headers)."""
        row = self.db.execute(
            f"SELECT d.subscriber_id, {READER} FROM deliveries d "
            f"{reader_of('d.subscriber_id')} WHERE d.send_id = ? AND d.status = 'pending' "
            "ORDER BY d.subscriber_id LIMIT 1", (send_id,)).fetchone()
        return _recipient(row) if row else None

    def rows(self, send_id: int, status: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM deliveries WHERE send_id = ? AND status = ? "
                               "ORDER BY subscriber_id", (send_id, status)).fetchall()


def _recipient(row: sqlite3.Row) -> Recipient:
    fields = row["fields"]
    return Recipient(row["subscriber_id"], row["email"], row["name"],
                     json.loads(fields) if fields != "{}" else {})
