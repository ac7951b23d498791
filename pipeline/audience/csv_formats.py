"""Which column of a CSV holds what: the exports of Mailchimp, Substack, Buttondown and
listmonk, known by their headers; a plain CSV's ``email`` and ``name``; and ``--map``.

An export also says who is no longer subscribed. Such a reader is never imported as
active: one who left is recorded unsubscribed (or suppressed, for a bounce or a spam
complaint), and one who never confirmed is skipped.

Where the column names come from (the files themselves, not guesses, except Buttondown):

- Mailchimp: one CSV per state in the audience export's ZIP; header (from the fixtures of
  TryGhost/migrate, packages/mg-mailchimp-members): ``Email Address,First Name,Last Name,
  <merge fields>,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,
  LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS``. The
  unsubscribed file has UNSUB_TIME, UNSUB_CAMPAIGN_TITLE, UNSUB_CAMPAIGN_ID, UNSUB_REASON,
  UNSUB_REASON_OTHER instead of LAST_CHANGED; the cleaned (bounced) file CLEAN_TIME,
  CLEAN_CAMPAIGN_TITLE, CLEAN_CAMPAIGN_ID. The file's columns, not a cell, say its state.
- Substack: ``email,active_subscription,expiry,email_disabled,created_at`` and
  ``email,expiry,email_disabled,stripe_connected_customer_id,type`` (TryGhost/migrate,
  packages/mg-substack-members-csv, which reads email_disabled=true as not subscribed to
  emails); some exports add name and plan.
- listmonk: ``uuid,email,name,attributes,status,created_at,updated_at`` (knadh/listmonk,
  the subscribers export handler); attributes is a JSON object; status is enabled,
  disabled or blocklisted.
- Buttondown: the export's own columns could not be checked against a real file. Its API
  named the fields ``email`` and ``subscriber_type`` before renaming them ``email_address``
  and ``type`` (docs.buttondown.com, api-subscribers-introduction); a file with a
  subscriber_type column is read as Buttondown's, with metadata a JSON object.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LEFT = "left"  # the reader unsubscribed: recorded unsubscribed
SUPPRESSED = "suppressed"  # a bounce or a complaint: suppressed (with this reason)
SKIPPED = "skipped"  # neither subscribed nor left (never confirmed, unknown): not imported


@dataclass(frozen=True)
class State:
    """Why a row's reader is not a subscriber: LEFT, SUPPRESSED or SKIPPED, the reason
    the summary counts, and for SUPPRESSED the suppression's reason (bounce, spam)."""

    kind: str
    reason: str
    suppression: str = ""
    detail: str = ""  # for SKIPPED: the warning that says why


def _unknown(status: str) -> State:
    return State(SKIPPED, "unknown status", detail=f"the status '{status}' is neither "
                 "subscribed nor unsubscribed to this import")


_UNCONFIRMED = State(SKIPPED, "not confirmed", detail="not confirmed in the export (the "
                     "reader never answered the confirmation mail)")


class Cells:
    """One row's cells by lower-case column name."""

    def __init__(self, index: dict[str, int], cells: Sequence[str]):
        self.index, self.cells = index, cells

    def has(self, column: str) -> bool:
        return column in self.index

    def get(self, column: str) -> str:
        at = self.index.get(column)
        return self.cells[at].strip() if at is not None else ""


def _subscribed(row: Cells) -> State | None:
    return None


@dataclass(frozen=True)
class Format:
    label: str  # as the summary says it ("a Mailchimp export"); "" for a plain CSV
    marks: frozenset[str]  # lower-case column names a header must all have
    email: tuple[str, ...] = ("email",)  # the address: the first of these columns
    name: tuple[str, ...] = ("name",)  # the name: these columns' cells, joined
    dropped: frozenset[str] = frozenset()  # the service's bookkeeping: not kept as fields
    expanded: frozenset[str] = frozenset()  # JSON objects whose keys become fields
    state: Callable[[Cells], State | None] = _subscribed


def _mailchimp_state(row: Cells) -> State | None:
    if row.has("unsub_time"):
        return State(LEFT, "unsubscribed")
    if row.has("clean_time"):
        return State(SUPPRESSED, "cleaned", "bounce")
    return None


def _substack_state(row: Cells) -> State | None:
    return State(LEFT, "email disabled") if row.get("email_disabled").lower() == "true" else None


def _listmonk_state(row: Cells) -> State | None:
    status = row.get("status").lower()
    if status in ("", "enabled"):
        return None
    if status == "blocklisted":
        return State(LEFT, "blocklisted")
    return _unknown(status)


_BUTTONDOWN_SUBSCRIBED = {"regular", "premium", "gifted", "trialed", "churning", "past_due"}
_BUTTONDOWN_LEFT = {"unsubscribed": State(LEFT, "unsubscribed"),
                    "removed": State(LEFT, "removed"),
                    "blocked": State(LEFT, "blocked"),
                    "spammy": State(LEFT, "spammy"),
                    "undeliverable": State(SUPPRESSED, "undeliverable", "bounce"),
                    "complained": State(SUPPRESSED, "complained", "spam")}


def _buttondown_state(row: Cells) -> State | None:
    kind = (row.get("subscriber_type") or row.get("type")).lower()
    if kind in _BUTTONDOWN_SUBSCRIBED or not kind:
        return None
    if kind == "unactivated":
        return _UNCONFIRMED
    return _BUTTONDOWN_LEFT.get(kind) or _unknown(kind)


# A `status` column of any other CSV (this program's own export among them: active,
# unsubscribed, suppressed:<reason>) is the reader's subscription.
_SUBSCRIBED_WORDS = {"", "active", "subscribed", "enabled", "confirmed"}
_UNCONFIRMED_WORDS = {"pending", "unconfirmed", "unactivated", "requires_verification"}
_LEFT_WORDS = {"unsubscribed", "blocklisted", "blacklisted", "blocked", "removed", "deleted",
               "opted out", "opted-out", "optout", "inactive", "disabled"}
_SUPPRESSED_WORDS = {"cleaned": "bounce", "bounced": "bounce", "undeliverable": "bounce",
                     "complained": "spam", "spam": "spam"}


def _status_state(row: Cells) -> State | None:
    status = row.get("status").lower()
    if status in _SUBSCRIBED_WORDS:
        return None
    if status.startswith("suppressed"):
        reason = status.partition(":")[2].strip() or "unsubscribe"
        return State(SUPPRESSED, "suppressed", reason)
    if status in _SUPPRESSED_WORDS:
        return State(SUPPRESSED, status, _SUPPRESSED_WORDS[status])
    if status in _LEFT_WORDS:
        return State(LEFT, status)
    if status in _UNCONFIRMED_WORDS:
        return _UNCONFIRMED
    return _unknown(status)


_MAILCHIMP_SYSTEM = frozenset(c.lower() for c in (
    "MEMBER_RATING OPTIN_TIME OPTIN_IP CONFIRM_TIME CONFIRM_IP LATITUDE LONGITUDE GMTOFF "
    "DSTOFF TIMEZONE CC REGION LAST_CHANGED LEID EUID UNSUB_TIME UNSUB_CAMPAIGN_TITLE "
    "UNSUB_CAMPAIGN_ID UNSUB_REASON UNSUB_REASON_OTHER CLEAN_TIME CLEAN_CAMPAIGN_TITLE "
    "CLEAN_CAMPAIGN_ID").split())

# The most particular first: a listmonk export has a status column too.
FORMATS = (
    Format("a listmonk export", frozenset({"uuid", "email", "attributes", "status"}),
           dropped=frozenset({"uuid", "status", "created_at", "updated_at"}),
           expanded=frozenset({"attributes"}), state=_listmonk_state),
    Format("a Mailchimp export", frozenset({"email address"}), email=("email address",),
           name=("first name", "last name"), dropped=_MAILCHIMP_SYSTEM,
           state=_mailchimp_state),
    Format("a Substack export", frozenset({"email", "email_disabled"}),
           dropped=frozenset({"email_disabled", "active_subscription", "expiry", "created_at",
                              "first_payment_at", "stripe_connected_customer_id"}),
           state=_substack_state),
    Format("a Buttondown export", frozenset({"subscriber_type"}),
           email=("email", "email_address"), name=(),
           dropped=frozenset({"id", "subscriber_type", "type", "creation_date", "secondary_id",
                              "source", "referrer_url", "utm_campaign", "utm_medium",
                              "utm_source", "ip_address", "import", "upgrade_date",
                              "churn_date", "unsubscription_date", "undeliverability_date"}),
           expanded=frozenset({"metadata"}), state=_buttondown_state),
    Format("", frozenset({"status"}), email=("email", "e-mail", "email_address", "邮箱",
                                             "电子邮箱", "电子邮件", "邮件地址"),
           name=("name", "姓名"), state=_status_state,
           # our own export: the consent record is the database's, not a custom column
           dropped=frozenset({"status", "consent_at", "consent_source", "consent_client",
                              "consent_agent", "confirmed_at"})),
)
PLAIN = Format("", frozenset(), email=FORMATS[-1].email, name=FORMATS[-1].name)


class ColumnsError(Exception):
    """The header cannot be read: the messages say why (all of them)."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class Reader:
    """One row's reader as a CSV gives it."""

    email: str
    name: str
    fields: dict[str, str]
    state: State | None


@dataclass(frozen=True)
class Columns:
    """Which column holds what, for one header."""

    format: Format
    index: dict[str, int]  # lower-case column name -> position
    email: int
    name: tuple[int, ...]
    fields: tuple[tuple[int, str], ...]  # (position, field name)
    expanded: tuple[tuple[int, str], ...] = ()
    unnamed: tuple[int, ...] = field(default=())  # columns without a name

    def read(self, cells: Sequence[str]) -> Reader:
        fields = {}
        for at, key in self.expanded:
            fields.update(_json_fields(cells[at], key))
        for at, key in self.fields:
            if cells[at].strip():
                fields[key] = cells[at].strip()
        name = _joined([cells[at] for at in self.name])
        return Reader(cells[self.email].strip(), name, fields,
                      self.format.state(Cells(self.index, cells)))


def parse_mapping(text: str) -> dict[str, str]:
    """``email=COLUMN,name=COLUMN`` as a dict; ValueError saying what is wrong."""
    mapping = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sign, column = part.partition("=")
        key, column = key.strip().lower(), column.strip()
        if not sign or not column:
            raise ValueError(f"'{part}' is not KEY=COLUMN; write it like email=E-mail")
        if key not in ("email", "name"):
            raise ValueError(f"'{key}' cannot be mapped; map email or name, like "
                             "email=E-mail,name=Full name")
        mapping[key] = column
    return mapping


def columns_for(header: Sequence[str], mapping: dict[str, str] | None = None) -> Columns:
    """The columns of this header: the export it is recognised as (or a plain CSV), with
    ``mapping`` (from --map) choosing the email and name columns. ColumnsError lists every
    problem: a name used twice, no email column, a mapped column that is not there."""
    names = [h.strip() for h in header]
    lower = [n.lower() for n in names]
    problems = _duplicates(names, lower)
    index = {n: at for at, n in reversed(list(enumerate(lower))) if n}
    fmt = next((f for f in FORMATS if f.marks <= index.keys()), PLAIN)
    email = next((index[c] for c in fmt.email if c in index), None)
    name = tuple(index[c] for c in fmt.name if c in index)
    listed = ", ".join(n for n in names if n) or "none"
    for key, column in (mapping or {}).items():
        if column.lower() not in index:
            problems.append(f"--map {key}={column}: there is no column \"{column}\"; the "
                            f"columns are: {listed}")
        elif key == "email":
            email = index[column.lower()]
        else:
            name = (index[column.lower()],)
    if email is None and not (mapping or {}).get("email"):
        guess = next((n for n in names if "mail" in n.lower() or "邮" in n), "")
        which = (f"if {guess} holds the addresses: --map {shlex.quote('email=' + guess)}"
                 if guess else "to name the one that holds the addresses: --map email=COLUMN")
        problems.append("the header has no 'email' column; the first line must name the "
                        f"columns, like: email,name (found: {listed}; {which})")
    if problems:
        raise ColumnsError(problems)
    assert email is not None
    taken = {email, *name}
    expanded = tuple((at, lower[at]) for at in range(len(lower))
                     if lower[at] in fmt.expanded and at not in taken)
    fields = tuple((at, lower[at]) for at in range(len(lower))
                   if lower[at] and at not in taken and lower[at] not in fmt.dropped
                   and lower[at] not in fmt.expanded)
    unnamed = tuple(at for at, n in enumerate(lower) if not n)
    return Columns(fmt, index, email, name, fields, expanded, unnamed)


def _duplicates(names: list[str], lower: list[str]) -> list[str]:
    problems, seen = [], set()
    for n in lower:
        places = [str(at + 1) for at, other in enumerate(lower) if other == n]
        if n and len(places) > 1 and n not in seen:
            seen.add(n)
            shown = names[lower.index(n)]
            if len(places) == 2:
                problems.append(f'the column "{shown}" appears twice (columns {places[0]} '
                                f"and {places[1]}); rename or remove one")
            else:
                problems.append(f'the column "{shown}" appears {len(places)} times (columns '
                                f"{', '.join(places[:-1])} and {places[-1]}); keep one")
    return problems


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003ffff·]+")


def _joined(parts: list[str]) -> str:
    """A name from its parts (First Name, Last Name): with a space, except a Chinese
    name, which is family name first and has none (安 + 周 -> 周安)."""
    parts = [p.strip() for p in parts if p.strip()]
    if len(parts) == 2 and all(_CJK.fullmatch(p) for p in parts):
        return parts[1] + parts[0]
    return " ".join(parts)


def _json_fields(cell: str, column: str) -> dict[str, str]:
    """A JSON object's keys as fields (a value that is not text as JSON); a cell that is
    not a JSON object is kept whole, as the field ``column``."""
    cell = cell.strip()
    if not cell:
        return {}
    try:
        value = json.loads(cell)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return {column: cell}
    return {str(k).strip().lower(): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            for k, v in value.items() if str(k).strip() and v not in (None, "", {}, [])}
