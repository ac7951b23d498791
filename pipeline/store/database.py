"""The one database: subscribers, suppressions, the send ledger and its runs.

``database`` in newsletter.toml is a SQLite file (the embedded default) or a
``postgresql://`` URL (one database for several machines: a web host and sender
workers). Both are used through ``Database``, one small layer:

- SQL is written once with ``?`` placeholders (PostgreSQL is given ``%s``); the few
  statements the engines spell differently are written twice, ``db.sql(sqlite=...,
  postgresql=...)``, next to each other in the module that owns them;
- rows are read by position or by column name, on both;
- ``with transaction(db):`` is BEGIN IMMEDIATE on SQLite (one writer at a time) and a
  transaction on PostgreSQL, where ``serial=True`` makes it one at a time as well;
- errors are the drivers' own; ``is_busy`` and ``database_problem`` read both, and a
  PostgreSQL that cannot be reached is a PipelineError naming its URL, password masked.

The schema is created and upgraded by the program itself (``store.migrations``).
"""

from __future__ import annotations

import re
import sqlite3
import sys
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import PipelineError, display_path
from .migrations import MIGRATIONS, Migration

URL_SCHEMES = ("postgresql://", "postgres://")
SERIAL_LOCK = 0x6E6C5345  # PostgreSQL: (SERIAL_LOCK, 0) is the lock of one-at-a-time transactions
CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise


def is_url(location: Path | str) -> bool:
    """A PostgreSQL URL, as opposed to a SQLite file."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def masked(url: str) -> str:
    """A database URL fit to show: postgresql://user:***@host/db."""
    url = re.sub(r"^([a-z]+://[^:/@?#]*):[^@/?#]*@", r"\1:***@", url)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)


def shown(location: Path | str) -> str:
    """How messages name the database: a file as the user would type it, a URL masked."""
    return masked(location) if is_url(location) else display_path(location)


def exists(location: Path | str) -> bool:
    """Whether there is a database to read yet (a file may not be; a server's is)."""
    return is_url(location) or Path(location).exists()


class Database:
    """One connection to SQLite or PostgreSQL, used the same way whichever it is."""

    def __init__(self, connection: Any, dialect: str, name: str):
        self.connection = connection
        self.dialect = dialect  # "sqlite" | "postgresql"
        self.name = name  # for messages: shown(location)

    def execute(self, sql: str, params: Any = ()):
        """A cursor: fetchone(), fetchall(), iteration, rowcount."""
        if self.dialect == "sqlite":
            return self.connection.execute(sql, params)
        return self.connection.execute(_pyformat(sql) if params else sql, params or None)

    def executemany(self, sql: str, rows: Any) -> None:
        if self.dialect == "sqlite":
            self.connection.executemany(sql, rows)
        else:
            with self.connection.cursor() as cursor:
                cursor.executemany(_pyformat(sql), rows)

    def sql(self, *, sqlite: str, postgresql: str) -> str:
        """The statement in this database's dialect."""
        return sqlite if self.dialect == "sqlite" else postgresql

    @property
    def in_transaction(self) -> bool:
        if self.dialect == "sqlite":
            return self.connection.in_transaction
        from psycopg.pq import TransactionStatus

        return self.connection.info.transaction_status in (TransactionStatus.INTRANS,
                                                           TransactionStatus.INERROR)

    def begin(self, serial: bool = False) -> None:
        if self.dialect == "sqlite":
            self.connection.execute("BEGIN IMMEDIATE")  # the write lock: always one at a time
            return
        self.connection.execute("BEGIN")
        if serial:  # held until COMMIT or ROLLBACK
            self.connection.execute(f"SELECT pg_advisory_xact_lock({SERIAL_LOCK}, 0)")

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        self.connection.execute("ROLLBACK")

    def wait(self, seconds: float) -> None:
        """How long a statement waits for a lock another program holds before it fails
        (``is_busy``)."""
        milliseconds = max(1, int(seconds * 1000))
        if self.dialect == "sqlite":
            self.connection.execute(f"PRAGMA busy_timeout = {milliseconds}")
        else:
            self.connection.execute("SELECT set_config('lock_timeout', %s, false)",
                                    (str(milliseconds),))

    def version(self) -> int:
        """The schema's version: how many migrations the database has had."""
        if self.dialect == "sqlite":
            return self.execute("PRAGMA user_version").fetchone()[0]
        if self.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return 0
        return self.execute("SELECT coalesce(max(version), 0) FROM schema_version"
                            ).fetchone()[0]

    def close(self) -> None:
        self.connection.close()


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class transaction:
    """``with transaction(db):`` BEGIN IMMEDIATE … COMMIT on SQLite, a transaction on
    PostgreSQL (``serial``: one at a time, as on SQLite); ROLLBACK on error.

    A COMMIT that fails (a locked database) rolls back too, so that the connection is
    never left inside a transaction and the whole block can be tried again."""

    def __init__(self, db: Database, serial: bool = False):
        self.db, self.serial = db, serial

    def __enter__(self) -> Database:
        try:
            self.db.begin(self.serial)
        except BaseException:  # the serial lock not had in time: no transaction left open
            if self.db.in_transaction:
                self.db.rollback()
            raise
        return self.db

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            try:
                self.db.commit()
                return
            except BaseException:
                if self.db.in_transaction:
                    self.db.rollback()
                raise
        if self.db.in_transaction:
            self.db.rollback()


# --- connecting --------------------------------------------------------------------


def connect(location: Path | str, timeout: float = 30, upgrade: bool = True) -> Database:
    """The database, created and migrated if need be (``upgrade``); a write waits up to
    ``timeout`` seconds for another program's lock."""
    db = _connect_postgresql(location) if is_url(location) else _connect_sqlite(Path(location))
    try:
        db.wait(timeout)
        if upgrade:
            migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def _connect_sqlite(path: Path) -> Database:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PipelineError(f"cannot make the database's folder ({exc.strerror}); check "
                            "`database` in newsletter.toml", path=display_path(path)) from None
    connection = sqlite3.connect(path, isolation_level=None)  # explicit transactions
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")  # durable at each commit's WAL write
    # the log is copied back into the database every 40 MB (SQLite's default: 4 MB): a
    # send writes each reader twice, and a send of 100,000 spent an eighth of its ledger
    # time copying pages between checkpoints; the last connection to close copies the rest
    connection.execute("PRAGMA wal_autocheckpoint = 10000")
    connection.execute("PRAGMA foreign_keys = ON")
    return Database(connection, "sqlite", display_path(path))


def _connect_postgresql(url: str) -> Database:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        params.setdefault("application_name", "newsletter")
        connection = psycopg.connect(autocommit=True, row_factory=_rows, **params)
    except psycopg.Error as exc:  # its repr holds the connection's password: never shown
        raise PipelineError(_connection_problem(exc, url), path=masked(url)) from None
    # the server notices a worker's machine gone within a minute or two, not hours: its
    # session ends, and with it the run's hold on its rows in flight (delivery/ledger.py)
    connection.execute("SELECT set_config('tcp_keepalives_idle', '30', false), "
                       "set_config('tcp_keepalives_interval', '10', false), "
                       "set_config('tcp_keepalives_count', '6', false)")
    return Database(connection, "postgresql", masked(url))


class Row(tuple):
    """A PostgreSQL row read as a sqlite3.Row is: by position or by column name."""

    def __new__(cls, values, names: dict[str, int]):
        row = super().__new__(cls, values)
        row.names = names
        return row

    def __getitem__(self, key):
        return super().__getitem__(self.names[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self.names)


def _rows(cursor):
    names = {column.name: n for n, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


def _connection_problem(error: Exception, url: str) -> str:
    """libpq's reason, in a sentence that says what to do about it (no password)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or ["?"]
    reason = lines[0].removeprefix("connection failed: ")
    reason = re.sub(r"^connection to server .*? failed: ", "", reason)
    reason = reason.removeprefix("FATAL:").strip()
    password = re.match(r"^[a-z]+://[^:/@?#]*:([^@/?#]*)@", url)
    if password and password[1]:
        reason = reason.replace(password[1], "***")
    if "password" in reason:
        advice = "check the user and password in `database` (or PGPASSWORD, ~/.pgpass)"
    elif missing := re.match(r'database "(.*)" does not exist', reason):
        advice = f"create it (createdb {missing[1]}), or correct its name in `database`"
    elif "role" in reason and "does not exist" in reason:
        advice = "create the role, or correct the user in `database`"
    elif re.search(r"refused|timeout|timed out|could not|translate host|No route|unreachable",
                   reason, re.IGNORECASE):
        advice = ("is PostgreSQL running there and accepting connections? check the host and "
                  "port in `database`")
    else:
        advice = "check `database` in newsletter.toml (or NEWSLETTER_DATABASE)"
    return f"cannot connect to PostgreSQL ({reason}); {advice}"


# --- migrations --------------------------------------------------------------------


def migrate(db: Database) -> list[Migration]:
    """Apply the migrations the database has not had; those applied."""
    applied: list[Migration] = []
    if db.version() >= len(MIGRATIONS):
        return applied
    for migration in MIGRATIONS:
        with transaction(db, serial=True):
            # re-read under the write lock: another program may have migrated meanwhile
            if db.version() >= migration.number:
                continue
            for statement in migration.statements(db.dialect):
                db.execute(statement)
            _set_version(db, migration.number)
        applied.append(migration)
    return applied


def _set_version(db: Database, number: int) -> None:
    if db.dialect == "sqlite":
        db.execute(f"PRAGMA user_version = {number}")
        return
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
               "applied_at text NOT NULL)")
    db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
               (number, datetime.now(UTC).isoformat(timespec="seconds")))


def pending_migrations(db: Database) -> list[Migration]:
    return MIGRATIONS[db.version():]


# --- errors ------------------------------------------------------------------------


def database_errors() -> tuple[type[Exception], ...]:
    """The drivers' error classes: SQLite's, and psycopg's once a PostgreSQL database
    has been opened (before that none can happen)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg else (sqlite3.Error,)


_BUSY_STATES = ("55P03", "40P01", "40001")  # lock_timeout, deadlock, serialization


def is_busy(error: Exception) -> bool:
    """Another connection holds a lock this one waited for too long ("database is
    locked", PostgreSQL's lock_timeout or a deadlock): trying again can cure it, unlike
    an error in the statement."""
    if isinstance(error, sqlite3.Error):
        primary = getattr(error, "sqlite_errorcode", 0) & 0xFF  # BUSY_SNAPSHOT is BUSY too
        return primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return getattr(error, "sqlstate", None) in _BUSY_STATES


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


def database_problem(error: Exception) -> str | None:
    """What an operator should hear about an error of the database itself (not of a
    statement), or None."""
    if isinstance(error, sqlite3.Error):
        return _WHY.get(getattr(error, "sqlite_errorcode", 0) & 0xFF)
    state = getattr(error, "sqlstate", None) or ""
    first = (str(error).strip().splitlines() or ["?"])[0]
    if state == "42501":
        return (f"refuses this user ({first}); grant the user in `database` the right to "
                "create and change tables in the database's schema")
    if state == "53100":
        return "cannot be written: the server's disk is full; free some space there"
    if state == "25006":
        return ("cannot be written (read-only: a standby server?); point `database` at the "
                "primary")
    if state.startswith(("08", "57P")) or (not state and type(error).__name__ in (
            "OperationalError", "InterfaceError")):
        return (f"cannot be reached: the connection to PostgreSQL was lost ({first}); check "
                "that it is running")
    return None
