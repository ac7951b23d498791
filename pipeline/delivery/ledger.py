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
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from ..audience.addresses import invalid_reason
from ..audience.queries import AUDIENCE, READER, WHERE, reader_of, skip_reason
from ..errors import ExitStatus, PipelineError, display_path
from ..store import is_busy, transaction
from .personalise import Recipient

TERMINAL = ("sent", "failed", "invalid", "unknown", "skipped")
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


T = TypeVar("T")


class LedgerBusy(PipelineError):
    """The database stayed locked (another program holds it) longer than a send waits.
    What was delivered and not recorded stays in flight, unknown from the next run on:
    the send is partial."""

    exit_code = ExitStatus.PARTIAL


class Ledger:
    def __init__(self, db: sqlite3.Connection, patience: float = 0.0,
                 pause: Callable[[float], None] = time.sleep,
                 stop: Callable[[], bool] = lambda: False,
                 log: Callable[[str], None] = lambda line: None):
        """``patience``: how many seconds a write waits, trying again, while the database
        is locked; ``pause`` waits between tries (a stop, ``stop()``, ends the wait)."""
        self.db = db
        self.cursor: dict[int, int] = {}  # send id -> the last subscriber id claimed
        self.patience, self.pause, self.stop, self.log = patience, pause, stop, log
        self.set_aside: list[tuple[str, str, str]] = []  # (status, email, why) at claims
        if patience:  # SQLite's own wait is short: the retries below can be stopped
            db.execute(f"PRAGMA busy_timeout = {int(min(patience, 1.0) * 1000)}")

    def retrying(self, action: Callable[[], T], consequence: str) -> T:
        """``action()``, a whole write transaction, tried again while SQLite says the
        database is locked, until ``patience`` runs out or a stop is asked for: then
        LedgerBusy, saying the ``consequence``."""
        deadline, said = time.monotonic() + self.patience, False
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                now = time.monotonic()
                if now >= deadline or self.stop():
                    if now < deadline:
                        longer = ", and the run was asked to stop while it waited"
                    elif self.patience:
                        longer = f" for longer than database_wait ({self.patience:g}s)"
                    else:
                        longer = ""
                    raise LedgerBusy(f"the database is locked by another program ({exc})"
                                     f"{longer}; {consequence}", path=self.path()) from None
                if not said:
                    self.log(f"the database is locked by another program ({exc}); trying "
                             f"again for up to {self.patience:g}s")
                    said = True
                self.pause(min(0.5, deadline - now))

    def path(self) -> str:
        row = self.db.execute("PRAGMA database_list").fetchone()
        return display_path(row["file"]) if row and row["file"] else "database"

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
        return self.retrying(lambda: self._start(issue, subject, provider, now, former),
                             "nothing was sent")

    def _start(self, issue: str, subject: str, provider: str, now: datetime,
               former: Sequence[str]) -> tuple[SendRecord, int]:
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

        Whoever unsubscribed or was suppressed since the snapshot is skipped here, and an
        address that cannot be sent to (it got in before addresses were checked) is set
        aside as ``invalid``; both are listed in ``set_aside``."""
        while True:
            batch, skipped = self.retrying(
                lambda: self._claim_once(send_id, size, now.isoformat()),
                "nobody more was sent; the next run resumes the send")
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
            aside, batch = [], []
            for row in rows:
                why = skip_reason(row)
                status = "skipped"
                if not why:
                    why, status = invalid_reason(row["email"]), "invalid"
                if why:
                    aside.append((status, why, stamp, send_id, row["subscriber_id"]))
                else:
                    batch.append(_recipient(row))
            self.db.executemany("UPDATE deliveries SET status = ?, error = ?, updated_at = ? "
                                "WHERE send_id = ? AND subscriber_id = ?", aside)
            self.db.execute("UPDATE deliveries SET status = 'inflight', attempts = attempts + 1, "
                            f"updated_at = ? WHERE send_id = ? AND {_IN_IDS}",
                            (stamp, send_id, _ids(r.id for r in batch)))
        if rows:  # only once committed: a claim tried again must see the same rows
            self.cursor[send_id] = rows[-1]["subscriber_id"]
        emails = {row["subscriber_id"]: row["email"] for row in rows}
        self.set_aside += [(status, emails[id_], why) for status, why, _, _, id_ in aside]
        return batch, len(aside)

    def record(self, send_id: int, results: Iterable[tuple[Recipient, str, str, str]],
               provider: str, now: datetime) -> None:
        """Each recipient's outcome: (recipient, status, message id, error)."""
        stamp = now.isoformat()
        groups: dict[tuple[str, str, str], list[int]] = {}
        for recipient, status, message_id, error in results:
            groups.setdefault((status, message_id, error), []).append(recipient.id)
        if not groups:
            return
        delivered = sum(len(ids) for (status, _, _), ids in groups.items()
                        if status != "pending")
        self.retrying(lambda: self._record(send_id, groups, provider, stamp),
                      f"the outcomes of {delivered} recipients could not be recorded: they "
                      "stay in flight and count as unknown (see `newsletter status`; "
                      "--resend-unknown sends to them again)" if delivered else
                      "nobody more was sent; the next run resumes the send")

    def _record(self, send_id: int, groups: dict[tuple[str, str, str], list[int]],
                provider: str, stamp: str) -> None:
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
        """Back to pending: these were certainly not delivered. They lie behind the claim
        cursor, so this run does not take them again; a later run sends them."""
        self.record(send_id, [(r, "pending", "", error) for r in recipients], "", now)

    def rewind(self, send_id: int) -> None:
        """The next claim starts again at the first pending reader: a fallback provider
        takes what the first one gave back."""
        self.cursor.pop(send_id, None)

    def resend_unknown(self, send_id: int, now: datetime) -> int:
        return self.requeue(send_id, ("unknown",), now)

    def requeue(self, send_id: int, statuses: Sequence[str], now: datetime) -> int:
        """Recipients with these outcomes back to pending, on an operator's decision
        (--resend-unknown, --resend-failed); how many."""
        def requeue() -> int:
            with transaction(self.db):
                count = self.db.execute(
                    "UPDATE deliveries SET status = 'pending', updated_at = ? WHERE send_id = ? "
                    "AND status IN (SELECT value FROM json_each(?))",
                    (now.isoformat(), send_id, json.dumps(list(statuses)))).rowcount
                if count:
                    self.db.execute("UPDATE sends SET state = 'sending', finished_at = NULL "
                                    "WHERE id = ?", (send_id,))
                return count

        self.cursor.pop(send_id, None)
        return self.retrying(requeue, "nobody was queued again, and nothing was sent")

    def finish_if_done(self, send_id: int, now: datetime) -> bool:
        return self.retrying(lambda: self._finish_if_done(send_id, now),
                             "the send's state could not be recorded")

    def _finish_if_done(self, send_id: int, now: datetime) -> bool:
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
        """The next reader a send would go to (for the dry run's sample headers): the
        first pending one whose address can be sent to."""
        rows = self.db.execute(
            f"SELECT d.subscriber_id, {READER} FROM deliveries d "
            f"{reader_of('d.subscriber_id')} WHERE d.send_id = ? AND d.status = 'pending' "
            "ORDER BY d.subscriber_id", (send_id,))
        row = next((row for row in rows if not invalid_reason(row["email"])), None)
        return _recipient(row) if row else None

    # What a provider counts against a daily quota: accepted, in flight, or maybe
    _USED = "status IN ('sent', 'inflight', 'unknown') AND updated_at >= ?"

    def used_since(self, since: datetime) -> int:
        """Messages of every send handed to a provider since then (the daily limit)."""
        return self.db.execute(f"SELECT count(*) FROM deliveries WHERE {self._USED}",
                               (since.isoformat(),)).fetchone()[0]

    def oldest_since(self, since: datetime) -> datetime | None:
        """The first of those: when it is a day old, the daily limit frees up."""
        first = self.db.execute(f"SELECT min(updated_at) FROM deliveries WHERE {self._USED}",
                                (since.isoformat(),)).fetchone()[0]
        return datetime.fromisoformat(first) if first else None

    def providers(self, send_id: int) -> dict[str, int]:
        """Readers sent by each provider (a send that failed over has two)."""
        return dict(self.db.execute(
            "SELECT provider, count(*) FROM deliveries WHERE send_id = ? AND status = 'sent' "
            "GROUP BY provider ORDER BY count(*) DESC", (send_id,)).fetchall())

    def rows(self, send_id: int, status: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM deliveries WHERE send_id = ? AND status = ? "
                               "ORDER BY subscriber_id", (send_id, status)).fetchall()


def _recipient(row: sqlite3.Row) -> Recipient:
    fields = row["fields"]
    return Recipient(row["subscriber_id"], row["email"], row["name"],
                     json.loads(fields) if fields != "{}" else {}, row["ref"])
