"""`newsletter stats`: each sent issue's delivery and engagement, from the ledger (sent)
and the provider's events (delivered, bounced, complaints, unsubscribes, opens, clicks);
and the audience's growth, for `newsletter report`.

Events count readers, not events: a reader who opened an issue five times is one open.
Opens and clicks exist only where the provider tracks them (SendGrid, with open and
click tracking on in its settings): for an issue sent otherwise they are None, not 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from ..store import Database

BOUNCED = ("bounce", "dropped")
UNSUBSCRIBED = ("unsubscribe", "group_unsubscribe")


@dataclass(frozen=True)
class IssueStats:
    issue: str  # the issue's id
    subject: str
    provider: str
    started_at: str
    sent: int
    delivered: int
    bounced: int
    complaints: int
    unsubscribes: int
    opens: int | None  # None: not tracked
    clicks: int | None

    def as_json(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        def shown(value: int | None) -> str:
            return "-" if value is None else str(value)

        return (f"{self.issue}  sent {self.sent}  delivered {self.delivered}  bounced "
                f"{self.bounced}  complaints {self.complaints}  unsubscribes "
                f"{self.unsubscribes}  opens {shown(self.opens)}  clicks {shown(self.clicks)}")


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
            row["issue"], row["subject"], row["provider"], row["started_at"], sent,
            readers.get("delivered", 0), sum(readers.get(k, 0) for k in BOUNCED),
            readers.get("spamreport", 0), sum(readers.get(k, 0) for k in UNSUBSCRIBED),
            readers.get("open", 0) if tracked else None,
            readers.get("click", 0) if tracked else None))
    return found


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
