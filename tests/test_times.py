"""Times that say when an issue was actually sent: each message's Date header, and the
archive's pages, index and Atom feed (from the ledger's send start and finish)."""

from __future__ import annotations

import email
import re
import sqlite3
from datetime import UTC, datetime
from email import policy
from email.utils import parsedate_to_datetime

import feedparser

from tests.test_schedule import populate

ISSUE = "2023-12-07-ai-productivity-09"
ROUNDUP = "2023-03-19-ai-weekly-roundup"


def page_date(html: str) -> str:
    """The date in the meta line of an issue page (name · label · date)."""
    return re.search(r'<p class="meta">.*· (\d{4}-\d{2}-\d{2})</p>', html)[1]


def test_the_archive_dates_an_issue_by_when_its_send_started_and_finished(run, project,
                                                                         sendgrid):
    run("schedule", ISSUE, "--at", "2023-12-07T09:00:00+08:00")
    populate(project / ".newsletter" / "newsletter.db", 250)
    run.env["NEWSLETTER_SENDGRID_BATCH_SIZE"] = "100"
    run.env["NEWSLETTER_DELIVERY_CONCURRENCY"] = "1"  # the first request is the first batch
    sendgrid.faults = lambda n, body: "500" if n > 1 else None
    run.now = datetime(2023, 12, 9, 1, 0, tzinfo=UTC)  # two days after its send_at
    assert run("send", ISSUE, "--yes").exit_code == 3  # 100 sent, the rest put back
    sendgrid.faults = lambda n, body: None
    run.now = datetime(2023, 12, 10, 2, 30, tzinfo=UTC)
    assert run("send", "--due").exit_code == 0  # resumed and finished a day later
    assert run("publish").exit_code == 0

    feed = feedparser.parse((project / "site" / "feed.xml").read_bytes())
    assert not feed.bozo, feed.bozo_exception
    entries = {e.link.rsplit("/", 2)[1]: e for e in feed.entries}
    assert entries[ISSUE].published == "2023-12-09T09:00:00+08:00"  # the send's start
    assert entries[ISSUE].updated == "2023-12-10T10:30:00+08:00"  # its finish
    # published with `publish: true` and never sent: its date
    assert entries[ROUNDUP].published == entries[ROUNDUP].updated == "2023-03-19T00:00:00+08:00"
    assert feed.feed.updated == "2023-12-10T10:30:00+08:00"
    assert [e.link.rsplit("/", 2)[1] for e in feed.entries] == [ISSUE, ROUNDUP]

    site = project / "site"
    assert page_date((site / ISSUE / "index.html").read_text()) == "2023-12-09"
    assert page_date((site / ROUNDUP / "index.html").read_text()) == "2023-03-19"
    index = (site / "index.html").read_text()
    assert "第 9 期 · 2023-12-09" in index and "第 1 期 · 2023-03-19" in index


def test_an_issue_published_before_its_send_is_dated_by_its_send_at(run, project):
    run("schedule", ISSUE, "--at", "2023-12-08T09:30:00+08:00")
    run("publish")
    feed = feedparser.parse((project / "site" / "feed.xml").read_bytes())
    assert feed.entries[0].published == "2023-12-08T09:30:00+08:00"
    assert page_date((project / "site" / ISSUE / "index.html").read_text()) == "2023-12-08"


def test_the_date_header_is_when_the_message_was_sent_not_the_due_time(run, audience, project):
    with run.at(datetime(2023, 12, 6, 0, 0, tzinfo=UTC)):  # scheduled ahead of time
        run("schedule", ISSUE, "--at", "2023-12-06T09:00:00+08:00")
    run.now = datetime(2023, 12, 6, 3, 7, 30, tzinfo=UTC)  # 11:07:30 in Shanghai
    result = run("send", "--due", "--now", "2023-12-06T09:05:00+08:00")  # catching up
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (f"2023-12-06T09:05:00+08:00 {ISSUE}: due at "
                                             "2023-12-06T09:00:00+08:00; sending")
    for eml in (project / "outbox" / ISSUE).glob("*.eml"):
        message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
        assert message["Date"] == "Wed, 06 Dec 2023 03:07:30 +0000"
    db = sqlite3.connect(project / ".newsletter" / "newsletter.db")
    assert db.execute("SELECT started_at, finished_at FROM sends").fetchall() == [
        ("2023-12-06T03:07:30+00:00", "2023-12-06T03:07:30+00:00")]


def test_the_date_header_over_smtp(run, audience, smtp):
    run.now = datetime(2023, 12, 7, 1, 2, 3, tzinfo=UTC)
    run("send", ISSUE, "--yes")
    assert len(smtp.messages) == 11  # one address is refused by the server
    for _, _, raw in smtp.messages:
        date = email.message_from_bytes(raw, policy=policy.default)["Date"]
        assert parsedate_to_datetime(date) == run.now
