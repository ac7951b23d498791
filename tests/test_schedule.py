"""Scheduling, `send --due`, status and cron; faults that must not send anyone twice."""

from __future__ import annotations

import json
import random
import sqlite3
import sys
from datetime import UTC, datetime

from pipeline.store import connect, transaction

ISSUE = "2023-12-07-ai-productivity-09"
ROUNDUP = "2023-03-19-ai-weekly-roundup"


def populate(database, count: int, domain: str = "example.com") -> None:
    """``count`` synthetic subscribers, written straight into the real database (a
    SQLite file or a PostgreSQL URL)."""
    db = connect(database)
    with transaction(db):
        db.executemany(
            "INSERT INTO subscribers (email, email_key, name, created_at, updated_at) "
            "VALUES (?, ?, ?, '2023-01-01', '2023-01-01')",
            [(f"reader{n}@{domain}", f"reader{n}@{domain}", f"读者{n}") for n in range(count)])
    db.close()


def test_schedule_writes_send_at_and_keeps_other_lines(run, project):
    meta = project / "issues" / ISSUE / "issue.yaml"
    meta.write_text(meta.read_text().replace("editor: 晓霖", "editor: 晓霖  # 本期编辑"))
    before = meta.read_text()
    result = run("schedule", ISSUE, "--at", "2023-12-07 09:00")  # local: Asia/Shanghai
    assert result.stdout == (f"issues/{ISSUE}/issue.yaml: send_at 2023-12-07T09:00:00+08:00\n")
    after = meta.read_text()
    # the first schedule also records the issue's id (derived from its folder's name)
    recorded = f"id: {ISSUE}  # recorded by newsletter: keep it when you rename the folder\n"
    assert after == before.replace("date: 2023-12-07\n",
                                   "date: 2023-12-07\nsend_at: 2023-12-07T09:00:00+08:00\n"
                                   ) + recorded
    run("schedule", ISSUE, "--at", "2023-12-08T01:00:00Z")
    assert "send_at: 2023-12-08T01:00:00+00:00\n" in meta.read_text()
    assert meta.read_text().count("send_at") == 1
    assert run("schedule", ISSUE, "--cancel").stdout.endswith("schedule removed\n")
    assert meta.read_text() == before + recorded


def test_schedule_rejects_a_bad_time(run, project):
    result = run("schedule", ISSUE, "--at", "next tuesday")
    assert result.exit_code == 1
    assert result.stderr == ("'time' is 'next tuesday', not a real date and time; write it "
                             "like 2024-01-31T09:00:00+08:00\n")


def test_due_sends_what_has_come_oldest_first(run, audience, project):
    run.now = datetime(2023, 12, 6, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai: scheduled ahead
    run("schedule", ROUNDUP, "--at", "2023-12-06T08:30:00+08:00")
    run("schedule", ISSUE, "--at", "2023-12-06T09:00:00+08:00")
    result = run("send", "--due", "--now", "2023-12-06T09:05:00+08:00")
    assert result.exit_code == 0, result.output
    log = result.stderr.splitlines()
    assert log[0] == (f"2023-12-06T09:05:00+08:00 {ROUNDUP}: due at "
                      "2023-12-06T08:30:00+08:00; sending")
    assert f"2023-12-06T09:05:00+08:00 {ISSUE}: due at 2023-12-06T09:00:00+08:00; sending" in log
    assert result.stdout.splitlines()[0].startswith(f"{ROUNDUP}: done through outbox: sent 12")
    again = run("send", "--due", "--now", "2023-12-06T09:10:00+08:00")
    assert again.exit_code == 0
    assert again.stderr == "2023-12-06T09:10:00+08:00 nothing due\n"


def test_an_issue_scheduled_for_tomorrow_is_not_sent(run, audience, project):
    run("schedule", ISSUE, "--at", "2023-12-07T09:00:00+08:00")
    result = run("send", "--due", "--now", "2023-12-06T09:00:00+08:00")
    assert result.exit_code == 0
    assert result.stderr == "2023-12-06T09:00:00+08:00 nothing due\n"
    assert not (project / "outbox").exists()


def test_an_issue_seven_hours_late_is_refused_every_run(run, audience, project):
    run.now = datetime(2023, 12, 5, 17, 0, tzinfo=UTC)  # 01:00 in Shanghai
    run("schedule", ISSUE, "--at", "2023-12-06T02:00:00+08:00")
    for _ in range(2):
        result = run("send", "--due", "--now", "2023-12-06T09:00:00+08:00")
        assert result.exit_code == 3
        assert result.stderr == (
            f"2023-12-06T09:00:00+08:00 {ISSUE}: not sent: send_at 2023-12-06T02:00:00+08:00 "
            "was 7h ago, more than max_lateness 6h; send it with `newsletter send "
            f"{ISSUE}` if it should still go out, or reschedule it\n")
    assert not (project / "outbox").exists()
    run.now = datetime(2023, 12, 6, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    status = run("status", ISSUE)
    assert status.stdout.startswith(f"{ISSUE}  late ")
    assert run("send", ISSUE, "--yes").exit_code == 0  # an explicit send still works


def test_status_shows_state_and_counts(run, audience, project):
    run("schedule", ROUNDUP, "--at", "2030-01-01T09:00:00+08:00")
    run.env["NEWSLETTER_SENDGRID_BATCH_SIZE"] = "5"
    run("send", ISSUE, "--yes")
    result = run("status")
    lines = result.stdout.splitlines()
    db = sqlite3.connect(project / ".newsletter" / "newsletter.db")
    (version,), = db.execute("SELECT content_hash FROM sends").fetchall()  # no git: no commit
    db.close()
    assert len(version) == 64
    version = version[:12]
    assert lines[0] == (f"{ROUNDUP}  scheduled  send_at 2030-01-01T09:00:00+08:00  audience "
                        "everyone: 12 readers")
    assert lines[1] == (f"{ISSUE}  sent       send_at -  outbox: 12 recipients, sent 12, "
                        "failed 0, invalid 0, unknown 0, pending 0  started "
                        "2023-12-06T08:00:00+00:00 finished 2023-12-06T08:00:00+00:00  "
                        f"version sha256:{version}")
    data = json.loads(run("status", "--json").stdout)
    assert [(d["issue"], d["state"], d["sent"]) for d in data] == [
        (ROUNDUP, "scheduled", 0), (ISSUE, "sent", 12)]


def test_status_of_a_draft(run, project):
    assert run("status", ROUNDUP).stdout == (f"{ROUNDUP}  draft      send_at -  audience "
                                             "everyone: 0 readers\n")


def test_cron_prints_the_crontab_line(run, project):
    # not run as the `newsletter` script here, so the line runs this python -m pipeline;
    # tests/test_init.py runs the script and the printed line themselves
    assert run("cron").stdout == (f"*/5 * * * * cd {project} && mkdir -p logs && "
                                  f"{sys.executable} -m pipeline send --due "
                                  f">> {project}/logs/send.log 2>&1\n")


def test_twenty_percent_faults_still_deliver_everyone_exactly_once(run, project, sendgrid):
    populate(project / ".newsletter" / "newsletter.db", 3000)
    run.env["NEWSLETTER_SENDGRID_BATCH_SIZE"] = "100"
    rng = random.Random(2026)
    sendgrid.faults = lambda n, body: rng.choice(["429", "500", "drop"]) \
        if rng.random() < 0.2 else None
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert len(sendgrid.received) == 3000 and set(sendgrid.received.values()) == {1}
    assert sendgrid.requests > 30 + 3  # some requests failed and were retried
    assert run.sleep.waits  # and the retries waited
    rows = sqlite3.connect(project / ".newsletter" / "newsletter.db").execute(
        "SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
    assert rows == [("sent", 3000)]


def test_a_provider_down_for_long_puts_the_batch_back(run, project, sendgrid):
    populate(project / ".newsletter" / "newsletter.db", 250)
    run.env["NEWSLETTER_SENDGRID_BATCH_SIZE"] = "100"
    run.env["NEWSLETTER_DELIVERY_CONCURRENCY"] = "1"  # the first request is the first batch
    sendgrid.faults = lambda n, body: "500" if n > 1 else None
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3
    assert result.stdout == (f"{ISSUE}: incomplete through sendgrid: sent 100, failed 0, "
                             "invalid 0, unknown 0, skipped 0, pending 150 of 250\n")
    assert "gave up on a batch after 6 attempts (SendGrid answered 500: Internal Server Error)" \
        in result.stderr
    sendgrid.faults = lambda n, body: None
    resumed = run("send", "--due")  # cron resumes an interrupted send
    assert resumed.exit_code == 0, resumed.output
    assert len(sendgrid.received) == 250 and set(sendgrid.received.values()) == {1}


def test_an_unknown_batch_is_never_resent_without_asking(run, project, sendgrid):
    populate(project / ".newsletter" / "newsletter.db", 30)
    db = sqlite3.connect(project / ".newsletter" / "newsletter.db")
    run.env["NEWSLETTER_SENDGRID_BATCH_SIZE"] = "10"
    run("send", ISSUE, "--yes")
    # as if a run had died with a batch in flight
    db.execute("UPDATE deliveries SET status = 'inflight' WHERE subscriber_id <= 10")
    db.execute("UPDATE sends SET state = 'sending'")
    db.commit()
    result = run("send", ISSUE, "--yes")
    assert "10 recipients were in flight when a run stopped; marked unknown" in result.stderr
    assert result.exit_code == 3
    assert sum(sendgrid.received.values()) == 30  # nobody was sent again
    status = run("status", ISSUE).stdout
    assert "unknown 10" in status and "reader0@example.com" in status
    resend = run("send", ISSUE, "--resend-unknown")
    assert resend.exit_code == 0
    assert sum(sendgrid.received.values()) == 40
