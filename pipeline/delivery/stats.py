"""`newsletter stats`: each sent issue's delivery and engagement, from the ledger (sent)
and the provider's events (delivered, bounced, complaints, unsubscribes, opens, clicks);
and the audience's growth, for `newsletter report`.

Events count readers, not events: a reader who opened an issue five times is one open.
Opens and clicks exist only where the provider tracks them (SendGrid, with open and
click tracking on in its settings): for an issue sent otherwise they are None, not 0.

An issue sent in more than one edition (issue 18) is also counted per edition: the
ledger row of each reader says which edition they were sent, and an event is tied to it
by the reader's id (an event with no reader, such as a bounce notice for an address no
longer in the audience, counts for the issue only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from ..store import Database

BOUNCED = ("bounce", "dropped")
UNSUBSCRIBED = ("unsubscribe", "group_unsubscribe")


@dataclass(frozen=True)
class Counts:
    """Readers sent, and readers by what the provider's events say of them."""

    sent: int
    delivered: int
    bounced: int
    complaints: int
    unsubscribes: int
    opens: int | None  # None: not tracked
    clicks: int | None

    @staticmethod
    def engagement(readers: dict[str, int], tracked: bool) -> dict[str, int | None]:
        """The counts but sent, from the number of readers of each kind of event."""
        return {"delivered": readers.get("delivered", 0),
                "bounced": sum(readers.get(k, 0) for k in BOUNCED),
                "complaints": readers.get("spamreport", 0),
                "unsubscribes": sum(readers.get(k, 0) for k in UNSUBSCRIBED),
                "opens": readers.get("open", 0) if tracked else None,
                "clicks": readers.get("click", 0) if tracked else None}

    def counts(self) -> str:
        def shown(value: int | None) -> str:
            return "-" if value is None else str(value)

        return (f"sent {self.sent}  delivered {self.delivered}  bounced {self.bounced}  "
                f"complaints {self.complaints}  unsubscribes {self.unsubscribes}  "
                f"opens {shown(self.opens)}  clicks {shown(self.clicks)}")


@dataclass(frozen=True, kw_only=True)
class EditionStats(Counts):
    edition: str  # the edition's language


@dataclass(frozen=True, kw_only=True)
class IssueStats(Counts):
    issue: str  # the issue's id
    subject: str
    provider: str
    started_at: str
    editions: tuple[EditionStats, ...] = ()  # empty for an issue of one edition

    def as_json(self) -> dict:
        data = asdict(self)
        first = ("issue", "subject", "provider", "started_at")
        return {**{key: data.pop(key) for key in first}, **data}

    def lines(self) -> list[str]:
        """The issue's line, then one indented line per edition."""
        return [f"{self.issue}  {self.counts()}",
                *(f"  {e.edition}  {e.counts()}" for e in self.editions)]


def issue_stats(db: Database, keys: tuple[str, ...] | None = None) -> list[IssueStats]:
    """Every send in the order they started, or the one recorded under one of ``keys``
    (an issue's id, then the folder name it was once sent under)."""
    sends = db.execute("SELECT id, issue, subject, provider, started_at FROM sends "
                       "ORDER BY started_at, id").fetchall()
    if keys is not None:
        sends = [row for key in keys for row in sends if row["issue"] == key][:1]
    found = []
    for row in sends:
        sent = db.execute("SELECT count(*) FROM deliveries WHERE send_id = ? AND "
                          "status = 'sent'", (row["id"],)).fetchone()[0]
        readers = dict(db.execute("SELECT kind, count(DISTINCT email_key) FROM events "
                                  "WHERE issue = ? GROUP BY kind", (row["issue"],)).fetchall())
        tracked = "sendgrid" in row["provider"] or "open" in readers or "click" in readers
        found.append(IssueStats(
            issue=row["issue"], subject=row["subject"], provider=row["provider"],
            started_at=row["started_at"], sent=sent, **Counts.engagement(readers, tracked),
            editions=_edition_stats(db, row["id"], row["issue"], tracked)))
    return found


def _edition_stats(db: Database, send_id: int, issue: str,
                   tracked: bool) -> tuple[EditionStats, ...]:
    """Each edition's counts, by language tag; () for a send of one edition."""
    sent: dict[str, int] = {}
    for edition, status, count in db.execute(
            "SELECT edition, status, count(*) FROM deliveries WHERE send_id = ? "
            "GROUP BY edition, status", (send_id,)).fetchall():
        sent[edition or ""] = sent.get(edition or "", 0) + (count if status == "sent" else 0)
    if len(sent) < 2:
        return ()
    readers: dict[str, dict[str, int]] = {edition: {} for edition in sent}
    for edition, kind, count in db.execute(
            "SELECT d.edition, e.kind, count(DISTINCT e.email_key) FROM events e "
            "JOIN deliveries d ON d.send_id = ? AND d.subscriber_id = e.subscriber_id "
            "WHERE e.issue = ? GROUP BY d.edition, e.kind", (send_id, issue)).fetchall():
        readers[edition or ""][kind] = count
    return tuple(EditionStats(edition=edition, sent=sent[edition],
                              **Counts.engagement(readers[edition], tracked))
                 for edition in sorted(sent))


def audience_growth(db: Database) -> list[tuple[date, int]]:
    """The number of subscribed readers at the end of each day a reader joined or left."""
    change: dict[str, int] = {}
    for column, sign in (("created_at", 1), ("unsubscribed_at", -1)):
        for day, n in db.execute(f"SELECT substr({column}, 1, 10) AS day, count(*) FROM "
                                 f"subscribers WHERE {column} IS NOT NULL GROUP BY day"):
            change[day] = change.get(day, 0) + sign * n
    total, growth = 0, []
    for day in sorted(change):
        total += change[day]
        growth.append((date.fromisoformat(day), total))
    return growth
