"""`newsletter audience bounces FILE`: RFC 3464 delivery status notifications from an
mbox file or a Maildir folder; hard bounces suppress, soft ones do not."""

from __future__ import annotations

import mailbox

ISSUE_ID = "ai-productivity-09"
DIAGNOSTIC = "smtp; 550 %s mailbox unavailable"


def dsn(n: int, recipient: str, status: str, action: str = "failed",
        returned: str = "headers") -> bytes:
    """A notification as Postfix writes one."""
    original = (f"Message-ID: <{ISSUE_ID}.{n}@example.com>\n"
                f"From: newsletter@example.com\nTo: {recipient}\nSubject: AI\n")
    if returned == "headers":
        third = f"Content-Type: text/rfc822-headers\n\n{original}"
    else:
        third = f"Content-Type: message/rfc822\n\n{original}\nthe issue's text\n"
    return (
        f"From: MAILER-DAEMON@mx.example.com\nTo: newsletter@example.com\n"
        f"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn-{n}@mx.example.com>\n"
        "Date: Wed, 06 Dec 2023 16:05:00 +0800\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nI'm sorry to have to inform you...\n\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.com\n"
        "Arrival-Date: Wed, 06 Dec 2023 16:00:00 +0800\n\n"
        f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
        f"Action: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: {DIAGNOSTIC % status}\n\n"
        f"--B\n{third}\n--B--\n").encode()


AUTO_REPLY = (b"From: chen.mo@example.com\nTo: newsletter@example.com\n"
              b"Subject: Out of office\n\nBack on Monday.\n")
BROKEN = (b"From: MAILER-DAEMON@mx.example.com\nSubject: failure\nMIME-Version: 1.0\n"
          b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
          b"--B\nContent-Type: text/plain\n\nsorry\n\n--B\n"
          b"Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
          b"Final-Recipient: rfc822; li.heng@example.com\nAction: failed\n\n--B--\n")
MESSAGES = [
    dsn(2, "chen.mo@example.com", "5.1.1"),
    dsn(3, "zhou.an@example.org", "4.2.2", action="delayed"),
    AUTO_REPLY,
    BROKEN,
    dsn(4, "wang.shu@example.net", "5.2.1", returned="message"),
]


def write_mbox(path, messages) -> None:
    box = mailbox.mbox(path)
    for data in messages:
        box.add(mailbox.mboxMessage(data))
    box.close()


def suppressions(db) -> list[tuple]:
    import sqlite3

    return sqlite3.connect(db).execute(
        "SELECT email_key, reason, source FROM suppressions ORDER BY email_key").fetchall()


def test_an_mbox_of_notifications_suppresses_its_hard_bounces(run, audience, project):
    write_mbox(project / "bounces.mbox", MESSAGES)
    lines = (project / "bounces.mbox").read_bytes().split(b"\n")
    broken_line = 1 + next(n for n, line in enumerate(lines) if line == b"Subject: failure") - 2
    result = run("audience", "bounces", "bounces.mbox")
    assert result.exit_code == 1
    assert result.stdout == ("read 5 messages: 2 hard bounces (2 addresses suppressed now), 1 "
                             "soft bounces (not suppressed), 1 not delivery reports, 1 "
                             "unreadable; 0 bounces were read before\n")
    assert result.stderr == (f"bounces.mbox:{broken_line}: error: no valid Status for "
                             "li.heng@example.com (''); RFC 3464 wants one like 5.1.1; this "
                             "message was passed over\n")
    assert suppressions(audience) == [("chen.mo@example.com", "bounce", "dsn"),
                                      ("wang.shu@example.net", "bounce", "dsn")]
    import sqlite3

    rows = sqlite3.connect(audience).execute(
        "SELECT kind, issue, subscriber_id, email_key, reason FROM events ORDER BY id").fetchall()
    assert rows == [
        ("bounce", ISSUE_ID, 2, "chen.mo@example.com", f"5.1.1 {DIAGNOSTIC % '5.1.1'}"),
        ("deferred", ISSUE_ID, 3, "zhou.an@example.org", f"4.2.2 {DIAGNOSTIC % '4.2.2'}"),
        ("bounce", ISSUE_ID, 4, "wang.shu@example.net", f"5.2.1 {DIAGNOSTIC % '5.2.1'}")]
    # suppressed readers are left out of the next send
    assert run("audience", "count").stdout == \
        "10 active, 0 unsubscribed, 2 suppressed, 12 in all\n"
    again = run("audience", "bounces", "bounces.mbox")
    assert again.stdout.startswith("read 5 messages: 2 hard bounces (0 addresses suppressed "
                                   "now)")
    assert again.stdout.endswith("; 3 bounces were read before\n")


def test_a_maildir_is_read_too(run, audience, project):
    box = mailbox.Maildir(project / "Maildir")
    for data in (dsn(7, "fang.ke@example.org", "5.1.1"), AUTO_REPLY):
        box.add(mailbox.MaildirMessage(data))
    result = run("audience", "bounces", "Maildir")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("read 2 messages: 1 hard bounces (1 addresses suppressed")
    assert suppressions(audience) == [("fang.ke@example.org", "bounce", "dsn")]


def test_a_file_that_is_no_mailbox_is_refused(run, audience, project):
    (project / "notes.txt").write_text("hello\n")
    result = run("audience", "bounces", "notes.txt")
    assert result.exit_code == 1
    assert result.stderr == ("notes.txt: not an mbox file (it does not begin with a 'From ' "
                             "line); give an mbox file or a Maildir folder\n")
    assert run("audience", "bounces", "missing.mbox").exit_code == 2
