"""Double opt-in: a signup waits, with its consent record, until its link is followed.

``request_signup`` keeps what a form sent (address, name, which form, the client's
address and user agent, when) in ``signups`` and touches nothing else: the audience
changes only when ``confirm_signup`` is given the signup's ref, which only a genuine,
unexpired confirmation link carries (``tokens.Signer.verify_confirmation``). A
confirmed signup makes its reader active, new or not (a reader who left comes back this
way only), with the consent of this signup, and with its language when it has one (the
edition page the form was on); an address suppressed only because it asked to leave is
no longer suppressed, while a bounce or a complaint stays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import PipelineError
from ..store import Database, transaction
from .addresses import email_problem, name_problem
from .queries import language_problem
from .tokens import new_ref

# what a signup keeps of the request, at most: a user agent is the client's to write
MAX_AGENT = 512
MAX_SOURCE = 64
MAX_LANGUAGE = 35  # the longest language tag in use (BCP 47 registry)


@dataclass(frozen=True)
class Signup:
    id: int
    ref: bytes
    email: str
    name: str
    source: str
    expires_at: datetime
    confirmed_at: str | None
    language: str = ""


def signup_language(value: object) -> str:
    """A form's language as a reader's: a language tag, or "" for anything else (a
    signup is never refused for it: the answer stays the same for every request)."""
    tag = value.strip() if isinstance(value, str) else ""
    return tag if tag and len(tag) <= MAX_LANGUAGE and not language_problem(tag) else ""


def signup_problem(email: str, name: str) -> str | None:
    """Why a form's address or name cannot be signed up, or None."""
    return email_problem(email) or name_problem(name)


def request_signup(db: Database, email: str, name: str, source: str, client: str,
                   agent: str, now: datetime, expiry: timedelta, language: str = "") -> Signup:
    """A new signup waiting for its confirmation; unconfirmed signups whose links have
    expired are dropped on the way (they can never be confirmed). ``language`` is one
    that signup_language passed, or ""."""
    problem = signup_problem(email, name)
    if problem:
        raise PipelineError(problem)
    expires = now + expiry
    ref = new_ref()
    with transaction(db):
        db.execute("DELETE FROM signups WHERE confirmed_at IS NULL AND expires_at < ?",
                   (now.isoformat(),))
        signup_id = db.execute(
            "INSERT INTO signups (ref, email, email_key, name, source, client, user_agent, "
            "requested_at, expires_at, language) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            (ref, email, email.lower(), name, source[:MAX_SOURCE], client[:64],
             agent[:MAX_AGENT], now.isoformat(), expires.isoformat(),
             signup_language(language))).fetchall()[0][0]
    return Signup(signup_id, ref, email, name, source, expires, None,
                  signup_language(language))


@dataclass(frozen=True)
class Confirmed:
    subscriber_id: int
    email: str
    name: str
    joined: bool  # the reader was not active before: new, or back after leaving


def confirm_signup(db: Database, ref: bytes, now: datetime) -> Confirmed | None:
    """The signup with this ref confirmed: its reader active, with its consent; None if
    there is no such signup (dropped, or from another database). The caller holds the
    transaction (the welcome email is queued in the same one)."""
    row = db.execute("SELECT * FROM signups WHERE ref = ?", (ref,)).fetchone()
    if row is None:
        return None
    key, stamp = row["email_key"], now.isoformat()
    reader = db.execute("SELECT id, email, name, status FROM subscribers WHERE email_key = ?",
                        (key,)).fetchone()
    if row["confirmed_at"] is not None:  # the link followed again: nothing changes
        if reader is None:  # the reader was deleted since
            return None
        return Confirmed(reader["id"], reader["email"], reader["name"], False)
    consent = (row["requested_at"], row["source"], row["client"], row["user_agent"], stamp)
    if reader is None:
        subscriber_id = db.execute(
            "INSERT INTO subscribers (email, email_key, name, fields, status, created_at, "
            "updated_at, ref, consent_at, consent_source, consent_client, consent_agent, "
            "confirmed_at, language) VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            (row["email"], key, row["name"], json.dumps({}), stamp, stamp, new_ref(),
             *consent, row["language"])).fetchall()[0][0]
        name, joined = row["name"], True
    else:
        joined = reader["status"] != "active"
        subscriber_id, name = reader["id"], reader["name"] or row["name"]
        db.execute("UPDATE subscribers SET status = 'active', name = ?, updated_at = ?, "
                   "consent_at = ?, consent_source = ?, consent_client = ?, consent_agent = ?, "
                   "confirmed_at = ? WHERE id = ?", (name, stamp, *consent, subscriber_id))
        if row["language"]:  # the latest signup's language; none keeps the reader's
            db.execute("UPDATE subscribers SET language = ? WHERE id = ?",
                       (row["language"], subscriber_id))
    db.execute("DELETE FROM suppressions WHERE email_key = ? AND reason = 'unsubscribe'", (key,))
    db.execute("UPDATE signups SET confirmed_at = ? WHERE id = ?", (stamp, row["id"]))
    return Confirmed(subscriber_id, row["email"], name, joined)
