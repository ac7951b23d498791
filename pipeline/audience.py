"""The subscriber list: import, add, remove, list, count, export. Plain functions over
the SQLite database; nothing here sends."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .db import transaction
from .errors import PipelineError, Problem, display_path

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$")
STATUSES = ("active", "unsubscribed", "suppressed", "all")


def email_problem(email: str) -> str | None:
    """Why an address cannot be used, or None."""
    if not email:
        return "the email is empty"
    if len(email) > 254 or not _EMAIL.match(email) or ".." in email:
        shown = email.replace("\r", "\\r").replace("\n", "\\n")
        return f"'{shown}' is not a valid email address"
    return None


def name_problem(name: str) -> str | None:
    if "\r" in name or "\n" in name:
        return "the name contains a line break, which would break the email's headers"
    return None


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    fields: dict[str, str]
    status: str
    suppressed: str | None = None  # the suppression reason, if any

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Subscriber:
        keys = row.keys()
        return cls(row["id"], row["email"], row["name"], json.loads(row["fields"]),
                   row["status"], row["reason"] if "reason" in keys else None)


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_unsubscribed: int = 0
    skipped: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        return (f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
                f"kept unsubscribed {self.kept_unsubscribed}, skipped {len(self.skipped)}")


def import_csv(db: sqlite3.Connection, path: Path, now: datetime) -> ImportReport:
    """Rows with a valid address are all kept; invalid ones are reported with their line.

    Duplicates merge case-insensitively (the last row wins), a re-import changes
    nothing, and an address that unsubscribed stays unsubscribed.
    """
    shown = display_path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise PipelineError("file not found", path=shown) from None
    report = ImportReport()
    with handle, transaction(db):
        try:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
        except UnicodeDecodeError:
            raise PipelineError("not UTF-8; save the CSV as UTF-8", path=shown, line=1) from None
        if "email" not in header:
            raise PipelineError("the header has no 'email' column; the first line must name "
                                "the columns, like: email,name", path=shown, line=1)
        reader.fieldnames = header
        row_line = 1
        try:
            for row in reader:
                line, row_line = row_line + 1, reader.line_num
                _import_row(db, row, shown, line, now, report)
        except UnicodeDecodeError:
            raise PipelineError("not valid UTF-8 after this line; save the CSV as UTF-8",
                                path=shown, line=row_line) from None
        except csv.Error as exc:
            raise PipelineError(f"CSV syntax error: {exc}", path=shown,
                                line=reader.line_num) from None
    return report


def _import_row(db, row: dict, shown: str, line: int, now: datetime,
                report: ImportReport) -> None:
    email = (row.pop("email", "") or "").strip()
    name = (row.pop("name", "") or "").strip()
    row.pop(None, None)  # cells beyond the header
    problem = email_problem(email) or name_problem(name)
    if problem:
        report.skipped.append(Problem(shown, line, f"{problem}; row skipped", "warning"))
        return
    fields = {k: (v or "").strip() for k, v in row.items() if k and v and v.strip()}
    outcome = upsert(db, email, name, fields, now)
    setattr(report, outcome, getattr(report, outcome) + 1)


def upsert(db: sqlite3.Connection, email: str, name: str, fields: dict[str, str],
           now: datetime) -> str:
    """Add or update one subscriber; says added, updated, unchanged or kept_unsubscribed."""
    stamp = now.isoformat()
    row = db.execute("SELECT * FROM subscribers WHERE email_key = ?",
                     (email.lower(),)).fetchone()
    if row is None:
        db.execute("INSERT INTO subscribers (email, email_key, name, fields, created_at, "
                   "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                   (email, email.lower(), name, json.dumps(fields, ensure_ascii=False),
                    stamp, stamp))
        return "added"
    merged = {**json.loads(row["fields"]), **fields}
    new_name = name or row["name"]
    if (new_name, merged, email) != (row["name"], json.loads(row["fields"]), row["email"]):
        db.execute("UPDATE subscribers SET email = ?, name = ?, fields = ?, updated_at = ? "
                   "WHERE id = ?", (email, new_name, json.dumps(merged, ensure_ascii=False),
                                    stamp, row["id"]))
        outcome = "updated"
    else:
        outcome = "unchanged"
    return "kept_unsubscribed" if row["status"] == "unsubscribed" else outcome


def add(db: sqlite3.Connection, email: str, name: str, now: datetime) -> str:
    problem = email_problem(email) or name_problem(name)
    if problem:
        raise PipelineError(problem)
    with transaction(db):
        return upsert(db, email, name, {}, now)


def unsubscribe(db: sqlite3.Connection, email: str, now: datetime, source: str) -> bool:
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


def unsubscribe_address(db: sqlite3.Connection, email: str, now: datetime, source: str) -> None:
    """Unsubscribe a reader; an address not in the audience is suppressed instead, so
    that it is never added back. Repeating it changes nothing."""
    try:
        unsubscribe(db, email, now, source)
    except PipelineError:
        with transaction(db):
            db.execute("INSERT OR IGNORE INTO suppressions (email_key, reason, source, "
                       "created_at) VALUES (?, 'unsubscribe', ?, ?)",
                       (email.lower(), source, now.isoformat()))


# The audience and who of it may be sent to: the one definition the ledger's snapshot,
# the dry run and the lists all use.
AUDIENCE = "FROM subscribers s LEFT JOIN suppressions p ON p.email_key = s.email_key"
_SELECT = f"SELECT s.*, p.reason {AUDIENCE}"
WHERE = {
    "active": "WHERE s.status = 'active' AND p.email_key IS NULL",
    "unsubscribed": "WHERE s.status = 'unsubscribed'",
    "suppressed": "WHERE p.email_key IS NOT NULL",
    "all": "",
}


def subscribers(db: sqlite3.Connection, status: str = "active") -> Iterator[Subscriber]:
    """Streams subscribers in id order; never loads the list into memory."""
    for row in db.execute(f"{_SELECT} {WHERE[status]} ORDER BY s.id"):
        yield Subscriber.from_row(row)


def count(db: sqlite3.Connection) -> dict[str, int]:
    return {status: db.execute(f"SELECT count(*) {AUDIENCE} {WHERE[status]}").fetchone()[0]
            for status in STATUSES}


def export_csv(db: sqlite3.Connection, path: Path) -> int:
    keys: set[str] = set()
    for (fields,) in db.execute("SELECT fields FROM subscribers"):
        keys.update(json.loads(fields))
    extra = sorted(keys)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["email", "name", "status", *extra])
        for sub in subscribers(db, "all"):
            status = f"suppressed:{sub.suppressed}" if sub.suppressed else sub.status
            out.writerow([sub.email, sub.name, status, *(sub.fields.get(k, "") for k in extra)])
            written += 1
    return written
