"""The one SQLite database: subscribers, suppressions and the send ledger.

Created and migrated by the program itself; PRAGMA user_version is the schema version.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

MIGRATIONS = [
    # 1: the audience and the ledger
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL UNIQUE,          -- lower-cased: duplicates merge on it
        name TEXT NOT NULL DEFAULT '',
        fields TEXT NOT NULL DEFAULT '{}',       -- custom CSV columns, JSON
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'unsubscribed')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        unsubscribed_at TEXT,
        unsubscribe_source TEXT
    );
    CREATE TABLE suppressions (
        email_key TEXT PRIMARY KEY,
        reason TEXT NOT NULL,                    -- unsubscribe, bounce, block, invalid, spam
        source TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE sends (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL UNIQUE,              -- the issue's folder name
        subject TEXT NOT NULL,
        provider TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sending', 'done')),
        total INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE TABLE deliveries (
        send_id INTEGER NOT NULL REFERENCES sends (id),
        subscriber_id INTEGER NOT NULL,
        email TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
            ('pending', 'inflight', 'sent', 'failed', 'unknown', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        provider TEXT,
        message_id TEXT,
        error TEXT,
        updated_at TEXT,
        PRIMARY KEY (send_id, subscriber_id)
    ) WITHOUT ROWID;  -- batches are claimed in key order: no index on status to keep
    """,
    # 2: the ledger outcome 'invalid' (a stored address that cannot be sent to). SQLite
    # cannot change a CHECK constraint: deliveries is rebuilt with it and copied over
    # (no table refers to deliveries, so the foreign keys stay as they are).
    """
    CREATE TABLE deliveries_v2 (
        send_id INTEGER NOT NULL REFERENCES sends (id),
        subscriber_id INTEGER NOT NULL,
        email TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
            ('pending', 'inflight', 'sent', 'failed', 'invalid', 'unknown', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        provider TEXT,
        message_id TEXT,
        error TEXT,
        updated_at TEXT,
        PRIMARY KEY (send_id, subscriber_id)
    ) WITHOUT ROWID;
    INSERT INTO deliveries_v2 (send_id, subscriber_id, email, status, attempts, provider,
                               message_id, error, updated_at)
        SELECT send_id, subscriber_id, email, status, attempts, provider, message_id, error,
               updated_at FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v2 RENAME TO deliveries
    """,
    # 3: every reader's ref, the random reference their unsubscribe token signs (not
    # their address, not their id). SQLite adds neither a UNIQUE nor a NOT NULL column
    # with a computed default: subscribers is rebuilt with it, ids kept (the ledger
    # names readers by id), and every existing reader gets a ref of their own.
    """
    CREATE TABLE subscribers_v3 (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        fields TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'unsubscribed')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        unsubscribed_at TEXT,
        unsubscribe_source TEXT,
        ref BLOB NOT NULL UNIQUE DEFAULT (randomblob(12))  -- 12 random bytes
            CHECK (typeof(ref) = 'blob' AND length(ref) = 12)
    );
    INSERT INTO subscribers_v3 (id, email, email_key, name, fields, status, created_at,
                                updated_at, unsubscribed_at, unsubscribe_source)
        SELECT id, email, email_key, name, fields, status, created_at, updated_at,
               unsubscribed_at, unsubscribe_source FROM subscribers;
    DROP TABLE subscribers;
    ALTER TABLE subscribers_v3 RENAME TO subscribers
    """,
]


def connect(path: Path, timeout: float = 30) -> sqlite3.Connection:
    """The database, created and migrated if need be; a write waits up to ``timeout``
    seconds for another program's write lock."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from ..errors import PipelineError, display_path

        raise PipelineError(f"cannot make the database's folder ({exc.strerror}); check "
                            "`database` in newsletter.toml", path=display_path(path)) from None
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None)  # explicit transactions
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")  # durable at each commit's WAL write
    db.execute("PRAGMA foreign_keys = ON")
    migrate(db)
    return db


def migrate(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            # re-read under the write lock: another process may have migrated meanwhile
            if db.execute("PRAGMA user_version").fetchone()[0] >= number:
                db.execute("COMMIT")
                continue
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def is_busy(error: sqlite3.OperationalError) -> bool:
    """SQLite's "database is locked" (another connection holds the write lock), which
    waiting can cure, as opposed to an error in the statement."""
    primary = getattr(error, "sqlite_errorcode", 0) & 0xFF  # SQLITE_BUSY_SNAPSHOT is BUSY too
    return primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


_WHY = {  # SQLite's primary result codes: what the operator can do about each
    sqlite3.SQLITE_READONLY: "cannot be written (read-only); give the user running "
                             "newsletter write access to the file and its folder",
    sqlite3.SQLITE_PERM: "cannot be written (permission denied); give the user running "
                         "newsletter write access to the file and its folder",
    sqlite3.SQLITE_CANTOPEN: "cannot be opened; check that its folder exists and that the "
                             "user running newsletter may write there",
    sqlite3.SQLITE_FULL: "cannot be written: the disk is full; free some space",
    sqlite3.SQLITE_IOERR: "cannot be read or written (an I/O error); check the disk",
    sqlite3.SQLITE_CORRUPT: "is damaged; restore it from a backup",
    sqlite3.SQLITE_NOTADB: "is not a database; is `database` in newsletter.toml the right "
                           "file?",
}


def database_problem(error: sqlite3.DatabaseError) -> str | None:
    """What an operator should hear about an error of the database file itself (not of
    a statement), or None."""
    return _WHY.get(getattr(error, "sqlite_errorcode", 0) & 0xFF)


class transaction:
    """``with transaction(db):`` BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error.

    A COMMIT that fails (a locked database) rolls back too, so that the connection is
    never left inside a transaction and the whole block can be tried again."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            try:
                self.db.execute("COMMIT")
                return
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
