"""Every query of the audience: who the readers are, who may be sent to, who left.

The one module that knows the subscribers and suppressions tables; the ledger's
snapshot and claims use its definition of the sendable audience.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from ..config import Config, value_problem
from ..errors import PipelineError, printable
from ..issue.segment import EVERYONE, MAX_TAGS, Segment, normal_tag, tag_problem
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
    language: str = ""  # BCP 47, or "": the edition of a many-language issue they get

    def as_json(self) -> dict:
        return {"email": self.email, "name": self.name, "status": self.status,
                "suppressed": self.suppressed, "fields": self.fields,
                "language": self.language}

    def line(self) -> str:
        state = f"suppressed ({self.suppressed})" if self.suppressed else self.status
        return f"{self.email}\t{self.name}\t{state}"

    @classmethod
    def from_row(cls, row) -> Subscriber:
        keys = row.keys()
        return cls(row["id"], row["email"], row["name"], json.loads(row["fields"]),
                   row["status"], row["reason"] if "reason" in keys else None,
                   row["ref"] if "ref" in keys else b"",
                   {column: row[column] for column in CONSENT if column in keys},
                   language=row["language"] if "language" in keys else "")


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


def add(db: Database, email: str, name: str, now: datetime, language: str | None = None
        ) -> str:
    """Add or update one subscriber (and their language, when given: "" for none); a
    stored address that is this one but for white space around it (it got in before
    addresses were checked) is corrected in place, so that the reader keeps their history
    and `send --resend-failed` reaches them."""
    problem = email_problem(email) or name_problem(name) or \
        (language_problem(language) if language else None)
    if problem:
        raise PipelineError(problem)
    with transaction(db):
        if correct_address(db, email, now):
            upsert(db, email, name, {}, now)
            outcome = "corrected"
        else:
            outcome = upsert(db, email, name, {}, now)
        if language is not None and set_language(db, email, language, now) and \
                outcome == "unchanged":
            outcome = "updated"
        return outcome


def language_problem(language: str) -> str | None:
    """Why a reader's language is not a language tag, or None."""
    if value_problem("language", language):
        return (f"'{printable(language)[:40]}' is not a language tag; write it like 'en' "
                "or 'zh-CN'")
    return None


def set_language(db: Database, email: str, language: str, now: datetime) -> bool:
    """A reader's language ("" for none); whether it changed. The caller checked it."""
    return db.execute("UPDATE subscribers SET language = ?, updated_at = ? WHERE "
                      "email_key = ? AND language <> ?",
                      (language.strip(), now.isoformat(), email.lower(),
                       language.strip())).rowcount > 0


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


def unsubscribe_address(db: Database, email: str, now: datetime, source: str) -> bool:
    """Unsubscribe a reader; an address not in the audience is suppressed instead, so
    that it is never added back. Repeating it changes nothing. True if a reader left."""
    try:
        return unsubscribe(db, email, now, source)
    except PipelineError:
        with transaction(db):
            suppress(db, email, "unsubscribe", source, now)
        return False


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
# what a send needs of one reader, in this order (the ledger's claim reads it by position)
READER = "s.email, s.name, s.fields, s.status, p.reason, s.ref"


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


def subscribers(db: Database, status: str = "active",
                segment: Segment = EVERYONE) -> Iterator[Subscriber]:
    """Streams subscribers in id order, a page at a time (by id, not by offset); never
    loads the list into memory. ``segment``: only those it takes (a WHERE on their tags)."""
    after = 0
    condition, params = in_segment(segment)
    while True:
        rows = db.execute(f"{_SELECT} WHERE s.id > ? AND {MATCHES[status]} AND {condition} "
                          f"ORDER BY s.id LIMIT {PAGE}", (after, *params)).fetchall()
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


# --- segments: who of the active readers an issue is for -----------------------------


def in_segment(segment: Segment) -> tuple[str, list[str]]:
    """The condition on subscriber ``s`` that a segment takes them, and its parameters:
    at least one of its tags (if it names any) and none of those it excludes."""
    conditions, params = [], []
    for tags, negation in ((segment.tags, ""), (segment.exclude, "NOT ")):
        if tags:
            marks = ", ".join("?" * len(tags))
            conditions.append(f"{negation}EXISTS (SELECT 1 FROM subscriber_tags t WHERE "
                              f"t.subscriber_id = s.id AND t.tag IN ({marks}))")
            params += tags
    return " AND ".join(conditions) or "1 = 1", params


def recipients_of(segment: Segment) -> tuple[str, list[str]]:
    """``FROM … WHERE …`` of the readers an issue with this segment is sent to (active,
    not suppressed, in the segment), and its parameters: the one definition that the
    ledger's snapshot, the dry run and status count with."""
    condition, params = in_segment(segment)
    return f"{AUDIENCE} {WHERE['active']} AND {condition}", params


def count_segment(db: Database, segment: Segment = EVERYONE) -> int:
    """How many readers an issue with this segment goes to, were it sent now."""
    where, params = recipients_of(segment)
    return db.execute(f"SELECT count(*) {where}", params).fetchone()[0]


def anyone_in_segment(db: Database, segment: Segment = EVERYONE) -> bool:
    """Whether an issue with this segment would go to anyone now: the first reader found
    answers, where a count reads the whole audience."""
    where, params = recipients_of(segment)
    return bool(db.execute(f"SELECT EXISTS (SELECT 1 {where})", params).fetchone()[0])


def count_languages(db: Database, segment: Segment = EVERYONE) -> dict[str, int]:
    """The readers of count_segment by their language ("" for none)."""
    where, params = recipients_of(segment)
    return dict(db.execute(f"SELECT s.language, count(*) {where} GROUP BY s.language",
                           params).fetchall())


# --- tags --------------------------------------------------------------------------


def checked_tags(tags: list[str]) -> list[str]:
    """Tags as stored (trimmed, lower-cased, once each); PipelineError naming every one
    that is not a tag."""
    normal = list(dict.fromkeys(normal_tag(t) for t in tags))
    problems = [p for t in normal if (p := tag_problem(t))]
    if problems:
        raise PipelineError("; ".join(problems))
    return normal


def tags_of(db: Database, subscriber_id: int) -> list[str]:
    return [row["tag"] for row in db.execute(
        "SELECT tag FROM subscriber_tags WHERE subscriber_id = ? ORDER BY tag",
        (subscriber_id,))]


def tags_by_reader(db: Database, subscriber_ids: list[int]) -> dict[int, list[str]]:
    """The tags of these readers (a page of them: one query), by id; a reader without
    tags is not in it."""
    if not subscriber_ids:
        return {}
    marks = ", ".join("?" * len(subscriber_ids))
    found: dict[int, list[str]] = {}
    for row in db.execute(f"SELECT subscriber_id, tag FROM subscriber_tags WHERE "
                          f"subscriber_id IN ({marks}) ORDER BY subscriber_id, tag",
                          subscriber_ids):
        found.setdefault(row["subscriber_id"], []).append(row["tag"])
    return found


def add_tags(db: Database, subscriber_id: int, tags: list[str]) -> int:
    """Give a reader these (checked) tags; how many were new. At most MAX_TAGS a reader.
    The caller holds the transaction."""
    have = tags_of(db, subscriber_id)
    new = [t for t in tags if t not in have]
    if len(have) + len(new) > MAX_TAGS:
        raise PipelineError(f"a reader has at most {MAX_TAGS} tags; remove some first")
    db.executemany("INSERT INTO subscriber_tags (subscriber_id, tag) VALUES (?, ?) "
                   "ON CONFLICT DO NOTHING", [(subscriber_id, t) for t in new])
    return len(new)


def remove_tags(db: Database, subscriber_id: int, tags: list[str]) -> None:
    """The caller holds the transaction."""
    db.executemany("DELETE FROM subscriber_tags WHERE subscriber_id = ? AND tag = ?",
                   [(subscriber_id, t) for t in tags])


def tag_reader(db: Database, email: str, add: list[str], remove: list[str]) -> list[str]:
    """`audience tag`: add and remove tags of the reader with this address; their tags
    after it."""
    add, remove = checked_tags(add), checked_tags(remove)
    with transaction(db):
        reader = subscriber_by_email(db, email)
        if reader is None:
            raise PipelineError(f"'{email}' is not in the audience; check the address "
                                "(newsletter audience list)")
        remove_tags(db, reader.id, remove)
        add_tags(db, reader.id, add)
        return tags_of(db, reader.id)


def choose_topics(db: Database, subscriber_id: int, topics: list[str],
                  chosen: list[str]) -> list[str]:
    """The preference page: of ``topics`` the reader keeps exactly ``chosen``; their
    other tags stay as they are. Their tags after it."""
    with transaction(db):
        remove_tags(db, subscriber_id, [t for t in topics if t not in chosen])
        add_tags(db, subscriber_id, [t for t in topics if t in chosen])
        return tags_of(db, subscriber_id)


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
