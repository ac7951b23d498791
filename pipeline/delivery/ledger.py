"""The send ledger: who of which issue was sent, when, by which provider, with which
message id, or why not.

A send snapshots its audience into per-recipient rows (pending). A batch is claimed,
marked in flight and committed, *before* its request, and sent / failed after it. A row
in flight whose run is over belongs to a run that died mid-request: it becomes
``unknown`` and is never sent again without an explicit decision (--resend-unknown). So
nobody receives an issue twice, and nobody is forgotten.

Which rows in flight are a dead run's. A run is one process sending one issue: a row of
``runs`` (host, pid, start), and every row it claims names it (``deliveries.run``).

- SQLite: one run at a time per database (the send lock, ``delivery.lock``). When a run
  starts every other run is over, so every row in flight becomes unknown, as always.
- PostgreSQL: several workers, on several machines, share a send. Each claims its
  batches with ``SELECT … FOR UPDATE SKIP LOCKED``, so no two take the same reader, and
  no run waits for another's batch. "A row in flight when a run starts" no longer means
  "a run died": it may be a live worker's batch at the provider. So a run holds a
  session advisory lock on its id, taken when it starts, before its first claim, on the
  connection it claims and records with. PostgreSQL itself lets go of it when that
  session ends: the process exits, is killed (SIGKILL included), or its machine falls
  silent (TCP keepalives: within 90 seconds, ``store.database``). A run is over exactly when
  its lock is free (``pg_locks``), and a run's start marks unknown only the rows in flight
  of runs that are over. No clocks are compared across machines and there is no lease
  to renew during a long retry: the database server is the one witness of who is alive.
  The last worker of a send closes it: when nothing is left to claim, the rows of runs
  that are over are marked unknown then too, and the send is done once no live run
  holds a row.

  Two consequences, both on the safe side. A worker cut off from PostgreSQL (or whose
  idle session a server setting ends) is over for the others while it may still be
  delivering its batch: its rows become unknown, never pending, and it cannot record
  them anyway (its connection is gone; the run stops). And session locks need a
  session: point the workers at PostgreSQL itself or a pool in session mode, not a
  transaction pool (PgBouncer's transaction mode).

A send is keyed by the issue's id (``sends.issue``). A database written before issues
had ids keyed sends by folder name: an id-less issue's derived id is its folder's name,
so that still matches, and a send found under a former key is re-keyed to the id when
the issue is next sent.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from ..audience.addresses import invalid_reason
from ..audience.queries import READER, reader_of, recipients_of, skip_reason
from ..errors import ExitStatus, PipelineError
from ..issue.model import pick_edition
from ..issue.segment import EVERYONE, Segment
from ..store import Database, database_errors, is_busy, transaction
from .personalise import Recipient

TERMINAL = ("sent", "failed", "invalid", "unknown", "skipped")
STATUSES = ("pending", "inflight", *TERMINAL)
RUN_LOCKS = 0x6E6C5255  # PostgreSQL: a run's advisory lock is (RUN_LOCKS, run id)
ORPHANED = "in flight when a run stopped: it may or may not have been delivered"

# A batch's subscriber ids go as one JSON array: a batch is updated in one statement.
_IN_IDS = {"sqlite": "subscriber_id IN (SELECT value FROM json_each(?))",
           "postgresql": "subscriber_id IN (SELECT jsonb_array_elements_text(CAST(? AS "
                         "jsonb))::bigint)"}
# PostgreSQL: the run of row `d` is live, its session holding its lock in this database
_LIVE = ("EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
         "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
         f"AND l.classid::bigint = {RUN_LOCKS} AND l.objsubid = 2 "
         "AND l.objid::bigint = d.run)")
# The run of row `d` is over (the one parameter: this run's id). SQLite: one run at a
# time (the send lock), so every run but this one is.
_OVER = {"sqlite": "d.run IS NOT ?", "postgresql": f"d.run IS DISTINCT FROM ? AND NOT {_LIVE}"}


def _ids(ids: Iterable[int]) -> str:
    return json.dumps(list(ids))


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
    content_hash: str = ""  # the issue folder's, when the send started ("": before 5)
    source_commit: str = ""  # its git commit then, "" outside a work tree

    @classmethod
    def from_row(cls, row) -> SendRecord:
        return cls(*(row[k] for k in ("id", "issue", "subject", "provider", "state", "total",
                                      "started_at", "finished_at", "content_hash",
                                      "source_commit")))


T = TypeVar("T")


class LedgerBusy(PipelineError):
    """The database stayed locked (another program holds it) longer than a send waits.
    What was delivered and not recorded stays in flight, unknown from the next run on:
    the send is partial."""

    exit_code = ExitStatus.PARTIAL


class Ledger:
    def __init__(self, db: Database, patience: float = 0.0,
                 pause: Callable[[float], None] = time.sleep,
                 stop: Callable[[], bool] = lambda: False,
                 log: Callable[[str], None] = lambda line: None):
        """``patience``: how many seconds a write waits, trying again, while the database
        is locked; ``pause`` waits between tries (a stop, ``stop()``, ends the wait)."""
        self.db = db
        self.cursor: dict[int, int] = {}  # send id -> the last subscriber id claimed
        self.patience, self.pause, self.stop, self.log = patience, pause, stop, log
        self.set_aside: list[tuple[str, str, str]] = []  # (status, email, why) at claims
        self.looked_back: set[int] = set()  # sends claimed again from the start (_look_back)
        self.gave_back: set[int] = set()  # sends this run set readers back to pending in
        self.run: int | None = None  # this run's id, from its start
        if patience:  # the database's own wait is short: the retries below can be stopped
            db.wait(min(patience, 1.0))

    def retrying(self, action: Callable[[], T], consequence: str) -> T:
        """``action()``, a whole write transaction, tried again while SQLite says the
        database is locked, until ``patience`` runs out or a stop is asked for: then
        LedgerBusy, saying the ``consequence``."""
        deadline, said = time.monotonic() + self.patience, False
        while True:
            try:
                return action()
            except database_errors() as exc:
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
        return self.db.name

    def find(self, issue: str, *former: str) -> SendRecord | None:
        """The send of the issue with this id, or one recorded under a former key of it
        (the folder's name it was sent under before it had an id): ``find(*keys)``."""
        for key in (issue, *former):
            row = self.db.execute("SELECT * FROM sends WHERE issue = ?", (key,)).fetchone()
            if row:
                return SendRecord.from_row(row)
        return None

    def start(self, issue: str, subject: str, provider: str, now: datetime,
              former: Sequence[str] = (), segment: Segment = EVERYONE,
              editions: Sequence[str] = (), version: tuple[str, str] = ("", "")
              ) -> tuple[SendRecord, int]:
        """The issue's send, created on first use with its audience snapshot (the active
        readers of its ``segment``, each with the edition of ``editions`` their language
        picks) and its version (content hash, commit); or found under a former key, and
        re-keyed to the id. And how many rows runs that are over had left in flight (now
        ``unknown``). Begins this run first."""
        self.retrying(lambda: self._begin_run(now), "nothing was sent")
        return self.retrying(lambda: self._start(issue, subject, provider, now, former,
                                                 segment, editions, version),
                             "nothing was sent")

    def _begin_run(self, now: datetime) -> None:
        if self.run is not None:
            return
        with transaction(self.db):
            run = self.db.execute("INSERT INTO runs (host, pid, started_at) VALUES (?, ?, ?) "
                                  "RETURNING id", (socket.gethostname(), os.getpid(),
                                                   now.isoformat())).fetchall()[0][0]
        if self.db.dialect == "postgresql":  # held by this session until it ends
            self.db.execute(f"SELECT pg_advisory_lock({RUN_LOCKS}, {int(run)})")
        self.run = run

    def _start(self, issue: str, subject: str, provider: str, now: datetime,
               former: Sequence[str], segment: Segment, editions: Sequence[str],
               version: tuple[str, str]
               ) -> tuple[SendRecord, int]:
        with transaction(self.db, serial=True):  # one start at a time: one snapshot
            known = self.find(issue, *former)
            if known is not None and known.issue != issue:
                self.db.execute("UPDATE sends SET issue = ? WHERE id = ?", (issue, known.id))
            if known is None:
                send_id = self.db.execute(
                    "INSERT INTO sends (issue, subject, provider, state, started_at, "
                    "content_hash, source_commit) VALUES (?, ?, ?, 'sending', ?, ?, ?) "
                    "RETURNING id",
                    (issue, subject, provider, now.isoformat(), *version)).fetchall()[0][0]
                audience, params = recipients_of(segment)
                self.db.execute(
                    "INSERT INTO deliveries (send_id, subscriber_id, email, updated_at) "
                    f"SELECT ?, s.id, s.email, ? {audience}",
                    (send_id, now.isoformat(), *params))
                self._pick_editions(send_id, editions)
                self.db.execute("UPDATE sends SET total = (SELECT count(*) FROM deliveries "
                                "WHERE send_id = ?) WHERE id = ?", (send_id, send_id))
                if self.db.dialect == "postgresql":
                    # the planner's idea of the ledger is from before these rows: without
                    # it, each claim sorted the whole send to take its first 1,000 (180 ms
                    # a claim at 100,000 readers, where the key's order takes 3)
                    self.db.execute("ANALYZE deliveries")
            record = self.find(issue)
            assert record is not None
            orphans = self._settle(record.id, now.isoformat())
            if orphans and record.state == "done":
                self.db.execute("UPDATE sends SET state = 'sending' WHERE id = ?", (record.id,))
        return self.find(issue) or record, orphans

    def _pick_editions(self, send_id: int, editions: Sequence[str]) -> None:
        """Each reader of a new send gets the edition their language picks (recorded, so
        that a reader who changes language mid-send still gets one edition, once): set
        per distinct language, a statement each. The caller holds the transaction."""
        if not editions:
            return
        self.db.execute("UPDATE deliveries SET edition = ? WHERE send_id = ?",
                        (editions[0], send_id))
        if len(editions) == 1:
            return
        languages = [row[0] for row in self.db.execute(
            "SELECT DISTINCT s.language FROM deliveries d JOIN subscribers s ON "
            "s.id = d.subscriber_id WHERE d.send_id = ?", (send_id,)).fetchall()]
        for language in languages:
            edition = pick_edition(language, editions)
            if edition != editions[0]:
                self.db.execute("UPDATE deliveries SET edition = ? WHERE send_id = ? AND "
                                "subscriber_id IN (SELECT id FROM subscribers WHERE "
                                "language = ?)", (edition, send_id, language))

    def _settle(self, send_id: int, stamp: str) -> int:
        """Rows in flight of runs that are over become unknown; how many. The caller
        holds the transaction."""
        return self.db.execute(
            f"UPDATE deliveries AS d SET status = 'unknown', updated_at = ?, error = ? "
            f"WHERE d.send_id = ? AND d.status = 'inflight' AND {_OVER[self.db.dialect]}",
            (stamp, ORPHANED, send_id, self.run)).rowcount

    # --- a send of one reader at a time: the welcome email ---------------------------

    def open_send(self, issue: str, subject: str, provider: str, now: datetime) -> int:
        """The id of the issue's send, created without an audience snapshot if it has
        none: readers join it one at a time (``enqueue``). The caller holds the
        transaction."""
        self.db.execute("INSERT INTO sends (issue, subject, provider, state, started_at) "
                        "VALUES (?, ?, ?, 'done', ?) ON CONFLICT (issue) DO NOTHING",
                        (issue, subject, provider, now.isoformat()))
        return self.db.execute("SELECT id FROM sends WHERE issue = ?", (issue,)).fetchone()[0]

    def enqueue(self, send_id: int, subscriber_id: int, email: str, now: datetime) -> bool:
        """One reader more for the send, pending; False if they are in its ledger already
        (nobody is queued twice, whatever became of their row). The caller holds the
        transaction."""
        added = self.db.execute(
            "INSERT INTO deliveries (send_id, subscriber_id, email, updated_at) VALUES "
            "(?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (send_id, subscriber_id, email, now.isoformat())).rowcount
        if added:  # `send --due` resumes a send in state 'sending': a welcome a crash left
            self.db.execute("UPDATE sends SET total = total + 1, state = 'sending', "
                            "finished_at = NULL WHERE id = ?", (send_id,))
        return bool(added)

    def claim_reader(self, send_id: int, subscriber_id: int, now: datetime
                     ) -> Recipient | None:
        """This reader's row, if it is pending: marked in flight by this run and committed
        (before the request), and the recipient to send to; None when it is not pending
        (sent, in flight elsewhere, unknown), or it was set aside (``set_aside``: the
        reader left or was suppressed meanwhile, or the address cannot be sent to)."""
        self.retrying(lambda: self._begin_run(now), "nothing was sent")
        return self.retrying(lambda: self._claim_reader(send_id, subscriber_id,
                                                        now.isoformat()), "nothing was sent")

    def _claim_reader(self, send_id: int, subscriber_id: int, stamp: str) -> Recipient | None:
        with transaction(self.db):
            row = self.db.execute(
                f"SELECT d.subscriber_id, d.edition, {READER} FROM deliveries d "
                f"{reader_of('d.subscriber_id')} WHERE d.send_id = ? AND d.subscriber_id = ? "
                "AND d.status = 'pending'", (send_id, subscriber_id)).fetchone()
            if row is None:
                return None
            why, status = skip_reason(row), "skipped"
            if not why:
                why, status = invalid_reason(row["email"]), "invalid"
            if why:
                self.db.execute("UPDATE deliveries SET status = ?, error = ?, updated_at = ? "
                                "WHERE send_id = ? AND subscriber_id = ?",
                                (status, why, stamp, send_id, subscriber_id))
                self.set_aside.append((status, row["email"], why))
                return None
            claimed = self.db.execute(  # a row another request claimed first is not pending
                "UPDATE deliveries SET status = 'inflight', attempts = attempts + 1, run = ?, "
                "updated_at = ? WHERE send_id = ? AND subscriber_id = ? AND status = 'pending'",
                (self.run, stamp, send_id, subscriber_id)).rowcount
        return _recipient(row) if claimed else None

    def close_if_done(self, send_id: int, now: datetime) -> None:
        """Mark the send done when nobody of it is pending or in flight (a welcome
        delivered); rows in flight of other runs are left as they are."""
        def close() -> None:
            with transaction(self.db):
                self.db.execute(
                    "UPDATE sends SET state = 'done', finished_at = ? WHERE id = ? AND NOT "
                    "EXISTS (SELECT 1 FROM deliveries WHERE send_id = ? AND status IN "
                    "('pending', 'inflight'))", (now.isoformat(), send_id, send_id))
        self.retrying(close, "the send's state could not be recorded")

    def claim(self, send_id: int, size: int, now: datetime) -> list[Recipient]:
        """The next batch of pending recipients, marked in flight by this run and
        committed; on PostgreSQL rows another worker is claiming are passed over.

        Whoever unsubscribed or was suppressed since the snapshot is skipped here, and an
        address that cannot be sent to (it got in before addresses were checked) is set
        aside as ``invalid``; both are listed in ``set_aside``."""
        while True:
            batch, skipped = self.retrying(
                lambda: self._claim_once(send_id, size, now.isoformat()),
                "nobody more was sent; the next run resumes the send")
            if batch:
                return batch
            if not skipped and not self._look_back(send_id):  # nothing pending at all
                return batch

    def _look_back(self, send_id: int) -> bool:
        """Whether to claim once more from the first reader, when nothing is left past the
        cursor: once a run, and only if it gave nobody back (released readers lie behind
        the cursor so that this run does not take them again). On PostgreSQL a worker
        passes over rows another is claiming; when that claim is rolled back (its worker
        killed mid-claim) they are pending again behind every cursor, and would wait for
        the next run."""
        if send_id in self.looked_back or send_id in self.gave_back:
            return False
        self.looked_back.add(send_id)
        self.cursor.pop(send_id, None)
        return True

    def _claim_once(self, send_id: int, size: int, stamp: str) -> tuple[list[Recipient], int]:
        # Pending rows are taken in key order from where the last batch ended: a range
        # scan of the primary key, so the ledger needs no index on status.
        after = self.cursor.get(send_id, 0)
        with transaction(self.db):
            rows = self.db.execute(
                f"SELECT d.subscriber_id, d.edition, {READER} FROM deliveries d "
                f"{reader_of('d.subscriber_id')} WHERE d.send_id = ? AND d.subscriber_id > ? "
                "AND d.status = 'pending' ORDER BY d.subscriber_id LIMIT ?"
                + self.db.sql(sqlite="", postgresql=" FOR UPDATE OF d SKIP LOCKED"),
                (send_id, after, size)).fetchall()
            aside, batch = [], []
            for row in rows:
                if why := skip_reason(row):
                    aside.append(("skipped", why, stamp, send_id, row[0], row[2]))
                elif why := invalid_reason(row[2]):
                    aside.append(("invalid", why, stamp, send_id, row[0], row[2]))
                else:
                    batch.append(_recipient(row))
            if aside:
                self.db.executemany("UPDATE deliveries SET status = ?, error = ?, "
                                    "updated_at = ? WHERE send_id = ? AND subscriber_id = ?",
                                    [row[:5] for row in aside])
            self.db.execute("UPDATE deliveries SET status = 'inflight', attempts = attempts + 1, "
                            f"run = ?, updated_at = ? WHERE send_id = ? AND "
                            f"{_IN_IDS[self.db.dialect]}",
                            (self.run, stamp, send_id, _ids(r.id for r in batch)))
        if rows:  # only once committed: a claim tried again must see the same rows
            self.cursor[send_id] = rows[-1]["subscriber_id"]
        self.set_aside += [(status, email, why) for status, why, _, _, _, email in aside]
        return batch, len(aside)

    def record(self, send_id: int, results: Iterable[tuple[Recipient, str, str, str]],
               provider: str, now: datetime) -> None:
        """Each recipient's outcome: (recipient, status, message id, error)."""
        groups: dict[tuple[str, str, str], list[int]] = {}
        for recipient, status, message_id, error in results:
            groups.setdefault((status, message_id, error), []).append(recipient.id)
        self.record_groups(send_id, groups, provider, now)

    def record_groups(self, send_id: int, groups: dict[tuple[str, str, str], list[int]],
                      provider: str, now: datetime) -> None:
        """The outcomes of readers grouped by outcome: {(status, message id, error): their
        subscriber ids}; one statement a group (a SendGrid request's readers are one)."""
        stamp = now.isoformat()
        if not groups:
            return
        if any(status == "pending" for status, _, _ in groups):
            self.gave_back.add(send_id)
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
                    f"updated_at = ? WHERE send_id = ? AND {_IN_IDS[self.db.dialect]}",
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
        marks = ", ".join("?" * len(statuses))

        def requeue() -> int:
            with transaction(self.db, serial=True):
                count = self.db.execute(
                    "UPDATE deliveries SET status = 'pending', updated_at = ? WHERE send_id = ? "
                    f"AND status IN ({marks})", (now.isoformat(), send_id, *statuses)).rowcount
                if count:
                    self.db.execute("UPDATE sends SET state = 'sending', finished_at = NULL "
                                    "WHERE id = ?", (send_id,))
                return count

        self.cursor.pop(send_id, None)
        return self.retrying(requeue, "nobody was queued again, and nothing was sent")

    def finish_if_done(self, send_id: int, now: datetime) -> bool:
        """True when the send needs nothing more of this run: it is done, and marked so,
        or (PostgreSQL) all that is left is in flight in other live workers, or being
        claimed by them, the last of which marks it done."""
        return self.retrying(lambda: self._finish_if_done(send_id, now),
                             "the send's state could not be recorded")

    def _finish_if_done(self, send_id: int, now: datetime) -> bool:
        with transaction(self.db, serial=True):  # a requeue in between is not overwritten
            orphans = self._settle(send_id, now.isoformat())
            if orphans:
                self.log(f"{orphans} recipients were in flight in a run that stopped; marked "
                         "unknown (see `newsletter status`; resend with --resend-unknown)")
            found = self.counts(send_id)
            if found["pending"]:
                if self.db.dialect == "sqlite" or self._claimable(send_id):
                    return False
                # PostgreSQL: pending rows none of which can be locked are being claimed
                # right now by live workers (a claim holds their locks until it commits
                # them in flight): theirs to send, and the last of them completes the send
                self.log(f"{found['pending']} recipients are being claimed by other workers; "
                         "the last of them to finish completes the send")
                return True
            if found["inflight"]:
                elsewhere = self.in_flight_elsewhere(send_id)
                if elsewhere:
                    self.log(f"{elsewhere} recipients are in flight in other workers; the "
                             "last of them to finish completes the send")
                return elsewhere == found["inflight"]
            self.db.execute("UPDATE sends SET state = 'done', finished_at = coalesce("
                            "finished_at, ?) WHERE id = ?", (now.isoformat(), send_id))
            return True

    def _claimable(self, send_id: int) -> bool:
        """Whether a pending row of the send is free to claim (PostgreSQL: not locked by
        another worker's claim). The caller holds the transaction, which lets it go."""
        return self.db.execute(
            "SELECT 1 FROM deliveries WHERE send_id = ? AND status = 'pending' LIMIT 1 "
            "FOR UPDATE SKIP LOCKED", (send_id,)).fetchone() is not None

    def in_flight_elsewhere(self, send_id: int) -> int:
        """Rows in flight in other live runs (on SQLite there are none: one run at a
        time)."""
        if self.db.dialect == "sqlite":
            return 0
        return self.db.execute(
            "SELECT count(*) FROM deliveries d WHERE d.send_id = ? AND d.status = 'inflight' "
            f"AND d.run IS DISTINCT FROM ? AND {_LIVE}", (send_id, self.run)).fetchone()[0]

    def editions(self, send_id: int) -> dict[str, dict[str, int]]:
        """Each edition's readers by status: {"en": {"sent": 3, ...}, ...}; {} for a send
        of one edition."""
        found: dict[str, dict[str, int]] = {}
        for edition, status, count in self.db.execute(
                "SELECT edition, status, count(*) FROM deliveries WHERE send_id = ? "
                "GROUP BY edition, status ORDER BY edition", (send_id,)).fetchall():
            found.setdefault(edition or "", {s: 0 for s in STATUSES})[status] = count
        return found if len(found) > 1 or "" not in found else {}

    def counts(self, send_id: int) -> dict[str, int]:
        found = dict(self.db.execute("SELECT status, count(*) FROM deliveries WHERE send_id = ? "
                                     "GROUP BY status", (send_id,)).fetchall())
        return {status: found.get(status, 0) for status in STATUSES}

    def pending(self, send_id: int) -> int:
        """How many readers of the send are pending (one count, where counts() sorts)."""
        return self.db.execute("SELECT count(*) FROM deliveries WHERE send_id = ? AND "
                               "status = 'pending'", (send_id,)).fetchone()[0]

    def counts_after_run(self, send_id: int) -> dict[str, int]:
        """The counts as this run leaves the send. A row still in flight that no live run
        is delivering any more (this run's, or a run's that is over) is unknown (the next
        run marks it so); other live workers' rows stay ``inflight``."""
        counts = self.counts(send_id)
        elsewhere = self.in_flight_elsewhere(send_id) if counts["inflight"] else 0
        counts["unknown"] += counts["inflight"] - elsewhere
        counts["inflight"] = elsewhere
        return counts

    def first_pending(self, send_id: int) -> Recipient | None:
        """The next reader a send would go to (for the dry run's sample headers): the
        first pending one whose address can be sent to."""
        after = 0
        while True:
            rows = self.db.execute(
                f"SELECT d.subscriber_id, d.edition, {READER} FROM deliveries d "
                f"{reader_of('d.subscriber_id')} WHERE d.send_id = ? AND d.status = 'pending' "
                "AND d.subscriber_id > ? ORDER BY d.subscriber_id LIMIT 1000",
                (send_id, after)).fetchall()
            row = next((row for row in rows if not invalid_reason(row["email"])), None)
            if row or len(rows) < 1000:
                return _recipient(row) if row else None
            after = rows[-1]["subscriber_id"]

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

    def rows(self, send_id: int, status: str) -> list:
        return self.db.execute("SELECT * FROM deliveries WHERE send_id = ? AND status = ? "
                               "ORDER BY subscriber_id", (send_id, status)).fetchall()


def _recipient(row) -> Recipient:
    """The recipient of a row of ``d.subscriber_id, d.edition, {READER}``, read by
    position: a send reads every one of its readers so."""
    subscriber, edition, email, name, fields, _, _, ref = row
    return Recipient(subscriber, email, name, json.loads(fields) if fields != "{}" else {},
                     ref, edition or "")
