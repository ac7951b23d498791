"""Every query of the audience: who the readers are, who may be sent to, who left.

The one module that knows the subscribers and suppressions tables; the ledger's
snapshot and claims use its definition of the sendable audience.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from ..config import Config
from ..errors import PipelineError
from ..store import Database, transaction
from .addresses import email_problem, name_problem
from .tokens import Claim, Signer, TokenError, new_ref, signer_for

# A reader's consent (double opt-in): when and where they asked, from which client
# address and user agent, and when they confirmed.
CONSENT = ("consent_at", "consent_source", "consent_client", "consent_agent", "confirmed_at")


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    fields: dict[str, str]
    status: str
    suppressed: str | None = None  # the suppression reason, if any
    ref: bytes = field(default=b"", repr=False)  # what the reader's unsubscribe token signs
    # the consent of their latest confirmed signup (CONSENT's columns), if any
    consent: dict[str, str | None] = field(default_factory=dict, repr=False)

    def as_json(self) -> dict:
        return {"email": self.email, "name": self.name, "status": self.status,
                "suppressed": self.suppressed, "fields": self.fields}

    def line(self) -> str:
        state = f"suppressed ({self.suppressed})" if self.suppressed else self.status
        return f"{self.email}\t{self.name}\t{state}"

    @classmethod
    def from_row(cls, row) -> Subscriber:
        keys = row.keys()
        return cls(row["id"], row["email"], row["name"], json.loads(row["fields"]),
                   row["status"], row["reason"] if "reason" in keys else None,
                   row["ref"] if "ref" in keys else b"",
                   {column: row[column] for column in CONSENT if column in keys})


def upsert(db: Database, email: str, name: str, fields: dict[str, str],
           now: datetime, left: bool = False) -> str:
    """Add or update one subscriber; says added, updated, unchanged or kept_unsubscribed,
    or left: ``left`` (the reader unsubscribed elsewhere, an export says) records them
    unsubscribed, new or not. Nobody who unsubscribed is made active again."""
    stamp = now.isoformat()
    row = db.execute("SELECT * FROM subscribers WHERE email_key = ?",
                     (email.lower(),)).fetchone()
    if row is None:
        db.execute("INSERT INTO subscribers (email, email_key, name, fields, status, "
                   "created_at, updated_at, unsubscribed_at, unsubscribe_source, ref) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (email, email.lower(), name, json.dumps(fields, ensure_ascii=False),
                    "unsubscribed" if left else "active", stamp, stamp,
                    stamp if left else None, "import" if left else None, new_ref()))
        return "left" if left else "added"
    merged = {**json.loads(row["fields"]), **fields}
    new_name = name or row["name"]
    if (new_name, merged, email) != (row["name"], json.loads(row["fields"]), row["email"]):
        db.execute("UPDATE subscribers SET email = ?, name = ?, fields = ?, updated_at = ? "
                   "WHERE id = ?", (email, new_name, json.dumps(merged, ensure_ascii=False),
                                    stamp, row["id"]))
        outcome = "updated"
    else:
        outcome = "unchanged"
    if row["status"] == "unsubscribed":
        return "kept_unsubscribed"
    if left:
        db.execute("UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?, "
                   "unsubscribe_source = 'import', updated_at = ? WHERE id = ?",
                   (stamp, stamp, row["id"]))
        return "left"
    return outcome


# The rows of the file being imported, by address: a later row of the same address is a
# duplicate. A table of the connection's own (TEMP), so that a file of millions of rows
# does not hold them in memory. The caller holds the transaction.
def begin_import(db: Database) -> None:
    db.execute("CREATE TEMP TABLE IF NOT EXISTS imported_rows (email_key TEXT PRIMARY KEY, "
               "line INTEGER NOT NULL, outcome TEXT NOT NULL)")
    db.execute("DELETE FROM imported_rows")


def imported_row(db: Database, email: str) -> tuple[int, str] | None:
    """The line and outcome of the file's earlier row of this address, if any."""
    row = db.execute("SELECT line, outcome FROM imported_rows WHERE email_key = ?",
                     (email.lower(),)).fetchone()
    return (row["line"], row["outcome"]) if row else None


def note_imported_row(db: Database, email: str, line: int, outcome: str) -> None:
    db.execute("INSERT INTO imported_rows (email_key, line, outcome) VALUES (?, ?, ?) "
               "ON CONFLICT (email_key) DO UPDATE SET line = excluded.line, "
               "outcome = excluded.outcome", (email.lower(), line, outcome))


def end_import(db: Database) -> None:
    db.execute("DROP TABLE IF EXISTS imported_rows")


def add(db: Database, email: str, name: str, now: datetime) -> str:
    """Add or update one subscriber; a stored address that is this one but for white
    space around it (it got in before addresses were checked) is corrected in place, so
    that the reader keeps their history and `send --resend-failed` reaches them."""
    problem = email_problem(email) or name_problem(name)
    if problem:
        raise PipelineError(problem)
    with transaction(db):
        if correct_address(db, email, now):
            upsert(db, email, name, {}, now)
            return "corrected"
        return upsert(db, email, name, {}, now)


def correct_address(db: Database, email: str, now: datetime) -> bool:
    """Replace a stored address that differs from ``email`` only by surrounding white
    space (a trailing line break, say). The caller holds the transaction."""
    key = email.lower()
    if db.execute("SELECT 1 FROM subscribers WHERE email_key = ?", (key,)).fetchone():
        return False
    row = db.execute("SELECT id FROM subscribers WHERE lower(trim(email, ?)) = ? "
                     "ORDER BY id LIMIT 1", (" \t\n\v\f\r", key)).fetchone()
    if row is None:
        return False
    db.execute("UPDATE subscribers SET email = ?, email_key = ?, updated_at = ? WHERE id = ?",
               (email, key, now.isoformat(), row["id"]))
    return True


def unsubscribe(db: Database, email: str, now: datetime, source: str) -> bool:
    """Mark a subscriber unsubscribed, keeping the row and its history. True if it changed."""
    with transaction(db):
        row = db.execute("SELECT id, status FROM subscribers WHERE email_key = ?",
                         (email.lower(),)).fetchone()
        if row is None:
            raise PipelineError(f"'{email}' is not in the audience; check the address "
                                "(newsletter audience list)")
        if row["status"] == "unsubscribed":
            return False
        db.execute("UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?, "
                   "unsubscribe_source = ?, updated_at = ? WHERE id = ?",
                   (now.isoformat(), source, now.isoformat(), row["id"]))
        return True


def unsubscribe_address(db: Database, email: str, now: datetime, source: str) -> None:
    """Unsubscribe a reader; an address not in the audience is suppressed instead, so
    that it is never added back. Repeating it changes nothing."""
    try:
        unsubscribe(db, email, now, source)
    except PipelineError:
        with transaction(db):
            suppress(db, email, "unsubscribe", source, now)


def suppress(db: Database, email: str, reason: str, source: str,
             now: datetime) -> bool:
    """Never send to this address again (a bounce, a complaint, an unknown address that
    asked to leave). True if it was new. The caller holds the transaction."""
    return db.execute("INSERT INTO suppressions (email_key, reason, source, created_at) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                      (email.lower(), reason, source, now.isoformat())).rowcount > 0


# The audience and who of it may be sent to: the one definition the ledger's snapshot,
# its claims, the dry run and the lists all use. `s` is the subscriber, `p` a suppression.
STATUSES = ("active", "unsubscribed", "suppressed", "all")
SUPPRESSION = "LEFT JOIN suppressions p ON p.email_key = s.email_key"
AUDIENCE = f"FROM subscribers s {SUPPRESSION}"
READER = "s.email, s.name, s.fields, s.status, p.reason, s.ref"  # what a send needs of one


def reader_of(subscriber_id: str) -> str:
    """The join that adds a reader's current state to a row naming subscriber_id."""
    return f"JOIN subscribers s ON s.id = {subscriber_id} {SUPPRESSION}"


def skip_reason(row) -> str | None:
    """Why a reader selected by READER may not be sent to now, or None."""
    if row["reason"]:
        return f"suppressed: {row['reason']}"
    return "unsubscribed" if row["status"] != "active" else None
_SELECT = f"SELECT s.*, p.reason {AUDIENCE}"
MATCHES = {
    "active": "s.status = 'active' AND p.email_key IS NULL",
    "unsubscribed": "s.status = 'unsubscribed'",
    "suppressed": "p.email_key IS NOT NULL",
    "all": "1 = 1",
}
WHERE = {status: f"WHERE {condition}" for status, condition in MATCHES.items()}


PAGE = 1000  # readers read at a time


def subscribers(db: Database, status: str = "active") -> Iterator[Subscriber]:
    """Streams subscribers in id order, a page at a time (by id, not by offset); never
    loads the list into memory."""
    after = 0
    while True:
        rows = db.execute(f"{_SELECT} WHERE s.id > ? AND {MATCHES[status]} ORDER BY s.id "
                          f"LIMIT {PAGE}", (after,)).fetchall()
        yield from map(Subscriber.from_row, rows)
        if len(rows) < PAGE:
            return
        after = rows[-1]["id"]


def subscriber_by_ref(db: Database, ref: bytes) -> Subscriber | None:
    """The reader whose ref this is (an unsubscribe token names them so), or None."""
    row = db.execute(f"{_SELECT} WHERE s.ref = ?", (ref,)).fetchone()
    return Subscriber.from_row(row) if row else None


def subscriber_by_email(db: Database, email: str) -> Subscriber | None:
    row = db.execute(f"{_SELECT} WHERE s.email_key = ?", (email.lower(),)).fetchone()
    return Subscriber.from_row(row) if row else None


def refs_of(db: Database, emails: list[str]) -> dict[str, bytes]:
    """The refs of those of these addresses that are readers, by lower-cased address."""
    keys = [email.lower() for email in emails]
    marks = ", ".join("?" * len(keys))
    return {row["email_key"]: row["ref"] for row in db.execute(
        f"SELECT email_key, ref FROM subscribers WHERE email_key IN ({marks})", keys)}


def count(db: Database) -> dict[str, int]:
    return {status: db.execute(f"SELECT count(*) {AUDIENCE} {WHERE[status]}").fetchone()[0]
            for status in STATUSES}


# --- unsubscribe tokens: whom a genuine one names ------------------------------------


def find_reader(db: Database, claim: Claim) -> Subscriber | None:
    """The subscriber a verified token names, or None (a reader deleted from the
    database)."""
    return (subscriber_by_ref(db, claim.ref) if claim.ref
            else subscriber_by_email(db, claim.email))


def token_for(db: Database, signer: Signer, email: str) -> str:
    """The token of a reader's unsubscribe link, by their address (for tests and
    support); PipelineError if the address is not in the audience."""
    reader = subscriber_by_email(db, email)
    if reader is None:
        raise PipelineError(f"'{email}' is not in the audience")
    return signer.token(reader.ref)


def address_of(db: Database, token_or_email: str, config: Config) -> str:
    """The address an unsubscribe request names: as written, or that of the reader its
    token names (the subject of a mailto: unsubscribe holds the token)."""
    text = token_or_email.strip()
    if "@" in text:
        return text
    signer = signer_for(config)
    try:
        reader = find_reader(db, signer.verify(text))
    except TokenError as exc:
        raise PipelineError(f"not a valid unsubscribe token ({exc}); copy it whole from "
                            "the mail's subject, or give the address") from None
    if reader is None:
        raise PipelineError("this unsubscribe token names no reader in the audience (deleted "
                            "from the database?); give the address instead")
    return reader.email
