"""One bad reader never poisons a send: an address SendGrid refuses, a server that
defers or refuses one reader, a stored address that is not one, a name of 12,000
characters. The others are delivered in the same run, exactly once (counted by the
servers), and `send --resend-failed` reaches the bad ones once they are fixed."""

from __future__ import annotations

import email
import re
import sqlite3
from email import policy
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from pipeline.store.database import MIGRATIONS, connect
from tests.test_schedule import populate

ISSUE = "2023-12-07-ai-productivity-09"
REFUSED = ["reader7@example.com", "reader1500@example.com", "reader2999@example.com"]


def rows(db: Path, status: str) -> list[tuple[str, str]]:
    return sqlite3.connect(db).execute(
        "SELECT email, error FROM deliveries WHERE status = ? ORDER BY subscriber_id",
        (status,)).fetchall()


def statuses(db: Path) -> dict[str, int]:
    return dict(sqlite3.connect(db).execute(
        "SELECT status, count(*) FROM deliveries GROUP BY status").fetchall())


# --- SendGrid: a 400 for one personalization --------------------------------------


def test_sendgrid_refusing_three_of_3000_fails_only_them_and_resend_failed_sends_them(
        run, project, sendgrid):
    db = project / ".newsletter" / "newsletter.db"
    populate(db, 3000)
    sendgrid.refuse = set(REFUSED)
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3, result.output
    assert result.stdout.splitlines() == [
        f"{ISSUE}: done through sendgrid: sent 2997, failed 3, invalid 0, unknown 0, "
        "skipped 0, pending 0 of 3000",
        f"`newsletter status {ISSUE}` lists the failed and invalid addresses; fix them, "
        f"then `newsletter send {ISSUE} --resend-failed`"]
    # every batch of 1000 was refused once, then sent again at once without its bad reader
    assert sendgrid.requests == 6 and sendgrid.accepted_requests == 3
    assert run.sleep.waits == []
    assert len(sendgrid.received) == 2997 and set(sendgrid.received.values()) == {1}
    assert not set(REFUSED) & set(sendgrid.received)
    message = "SendGrid answered 400: Does not contain a valid address. (field: to.0.email)"
    assert rows(db, "failed") == [(address, message) for address in REFUSED]
    # the log says so, batch by batch, and counts truthfully
    assert f"{ISSUE}: 1 refused by sendgrid, failed: reader7@example.com ({message})" \
        in result.stderr
    assert re.search(r"batch 3: 3,000/3,000 handled \([\d,]+/s\): sent 2,997, failed 3, "
                     r"invalid 0, unknown 0", result.stderr), result.stderr
    status = run("status", ISSUE).stdout.splitlines()
    assert "partial" in status[0] and "sent 2997, failed 3, invalid 0, unknown 0" in status[0]
    assert status[1:] == [f"  failed or invalid (fix them, then `newsletter send {ISSUE} "
                          "--resend-failed`):",
                          *(f"    {address}  failed: {message}" for address in REFUSED)]

    sendgrid.refuse.clear()  # fixed: SendGrid takes them now
    again = run("send", ISSUE, "--resend-failed")
    assert again.exit_code == 0, again.output
    assert again.stdout == (f"{ISSUE}: done through sendgrid: sent 3000, failed 0, invalid 0, "
                            "unknown 0, skipped 0, pending 0 of 3000\n")
    assert f"{ISSUE}: 3 failed or invalid recipients queued to send again" in again.stderr
    assert sendgrid.requests == 7 and len(sendgrid.bodies[-1]["personalizations"]) == 3
    assert len(sendgrid.received) == 3000 and set(sendgrid.received.values()) == {1}
    assert statuses(db) == {"sent": 3000}
    assert run("send", ISSUE, "--resend-failed").stdout == (  # nothing left to resend
        f"{ISSUE}: already sent on 2023-12-06 to 3000 readers; nothing to send\n")
    assert sendgrid.requests == 7


def test_sendgrid_400_naming_no_field_is_halved_until_the_bad_readers_are_alone(
        run, project, sendgrid):
    db = project / ".newsletter" / "newsletter.db"
    populate(db, 3000)
    sendgrid.refuse, sendgrid.refuse_without_field = set(REFUSED), True
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3, result.output
    assert "sent 2997, failed 3, invalid 0, unknown 0, skipped 0, pending 0 of 3000" in \
        result.stdout
    assert len(sendgrid.received) == 2997 and set(sendgrid.received.values()) == {1}
    assert rows(db, "failed") == [(address, "SendGrid answered 400: Bad Request")
                                  for address in REFUSED]
    # one bad reader in 1000 costs two requests per halving (10 halvings), not 1000
    assert sendgrid.requests <= 3 * (1 + 2 * 10)

    sendgrid.refuse.clear()
    again = run("send", ISSUE, "--resend-failed")
    assert again.exit_code == 0, again.output
    assert len(sendgrid.received) == 3000 and set(sendgrid.received.values()) == {1}


def test_a_400_for_the_request_itself_is_not_halved_for_ever(run, project, sendgrid):
    db = project / ".newsletter" / "newsletter.db"
    populate(db, 1000)
    # no field named, and every part refused: the request is wrong, not a reader
    sendgrid.faults = lambda n, body: (400, [{"message": "Bad Request", "field": None}])
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3
    assert "sent 0, failed 1000," in result.stdout
    assert sendgrid.requests == 1 + 2 + 4 + 8 + 16  # not 1999
    assert {error for _, error in rows(db, "failed")} == {
        "SendGrid answered 400: Bad Request (every part of the batch was refused)"}


def test_a_400_naming_no_field_for_many_bad_readers_still_isolates_them(run, project,
                                                                        sendgrid):
    db = project / ".newsletter" / "newsletter.db"
    populate(db, 1000)
    bad = {f"reader{n}@example.com" for n in range(0, 1000, 125)}  # one in each eighth
    sendgrid.refuse, sendgrid.refuse_without_field = bad, True
    result = run("send", ISSUE, "--yes")
    assert "sent 992, failed 8," in result.stdout
    assert {address for address, _ in rows(db, "failed")} == bad


def test_sendgrid_takes_a_name_of_12000_characters_with_control_characters(
        run, project, sendgrid):
    db = project / ".newsletter" / "newsletter.db"
    populate(db, 5)
    sqlite3.connect(db, isolation_level=None).execute(
        "UPDATE subscribers SET name = ? WHERE email = 'reader2@example.com'",
        ("Long\x07 name\r\nBcc: x@evil.example " + "名" * 12000,))
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert len(sendgrid.received) == 5
    person = next(p for p in sendgrid.bodies[0]["personalizations"]
                  if p["to"][0]["email"] == "reader2@example.com")
    name = person["to"][0]["name"]
    assert name.startswith("Long name Bcc: x@evil.example 名") and len(name) == 100
    assert person["substitutions"]["%%name|读者朋友%%"] == name


# --- SMTP: a 4xx is for later, a 5xx for good, and RSET in between ------------------


def test_smtp_451_at_data_defers_one_reader_and_the_others_go_on(run, audience):
    from tests.smtp_server import Sink, SMTPServer

    greylisted, gone = "sun.qing@example.org", "chen.mo@example.com"
    sink = Sink(refuse={gone: "550 5.1.1 mailbox unavailable"},
                refuse_data={greylisted: "451 4.7.1 greylisted, try again later"})
    with SMTPServer(sink) as server:
        run.env.update({"NEWSLETTER_PROVIDER": "smtp", "NEWSLETTER_SMTP_HOST": "127.0.0.1",
                        "NEWSLETTER_SMTP_PORT": str(server.port),
                        "NEWSLETTER_SMTP_SECURITY": "none",
                        "NEWSLETTER_SMTP_BATCH_SIZE": "20"})  # one batch, one connection
        result = run("send", ISSUE, "--yes")
        assert result.exit_code == 3, result.output
        assert result.stdout.splitlines()[0] == (
            f"{ISSUE}: incomplete through smtp: sent 10, failed 1, invalid 0, unknown 0, "
            "skipped 0, pending 1 of 12")
        delivered = [rcpt for _, rcpts, _ in sink.messages for rcpt in rcpts]
        assert len(delivered) == 10 == len(set(delivered))  # those after it too: no 503
        assert greylisted not in delivered and gone not in delivered
        assert sink.replies == ["550", "451"] and sink.sessions == 1  # RSET kept the connection
        assert run.sleep.waits == []  # deferred to a later run, not retried in a loop
        assert rows(audience, "failed") == [(gone, "550 5.1.1 mailbox unavailable")]
        assert rows(audience, "pending") == [
            (greylisted, "deferred: 451 4.7.1 greylisted, try again later")]
        assert f"{ISSUE}: 1 deferred by smtp; a later run tries again: {greylisted}" in \
            result.stderr

        sink.refuse_data.clear()  # the greylisting has passed
        later = run("send", "--due")  # cron resumes the send
        assert later.exit_code == 3  # chen.mo stays failed
        assert "done through smtp: sent 11, failed 1" in later.stdout
    delivered = [rcpt for _, rcpts, _ in sink.messages for rcpt in rcpts]
    assert len(delivered) == 11 == len(set(delivered)) and greylisted in delivered
    assert statuses(audience) == {"sent": 11, "failed": 1}


# --- a stored address that is not one; a name that would break a header ----------------


def insert_subscriber(db: Path, address: str, name: str = "") -> None:
    sqlite3.connect(db, isolation_level=None).execute(
        "INSERT INTO subscribers (email, email_key, name, created_at, updated_at) "
        "VALUES (?, ?, ?, '2023-01-01', '2023-01-01')", (address, address.lower(), name))


LONG_ADDRESS = f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 55}.com"  # valid, 252 characters


def test_a_stored_invalid_address_is_invalid_and_everyone_else_is_delivered(
        run, audience, project):
    assert len(LONG_ADDRESS) == 252
    insert_subscriber(audience, "bob@example.com\n", "Bob")  # got in before addresses were checked
    insert_subscriber(audience, LONG_ADDRESS, "Long Address")
    insert_subscriber(audience, "noisy@example.com", "Noisy\x1b[31m\nBcc: all@evil.example"
                      + "x" * 12000)
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3, result.output
    assert result.stdout.splitlines()[0] == (
        f"{ISSUE}: done through outbox: sent 14, failed 0, invalid 1, unknown 0, skipped 0, "
        "pending 0 of 15")
    reason = ("'bob@example.com\\n' is not a valid email address (the part after the @-sign "
              "contains invalid characters: U+000A)")
    assert rows(audience, "invalid") == [("bob@example.com\n", reason)]
    assert f"{ISSUE}: not sent to 'bob@example.com\\n': {reason}" in result.stderr
    files = sorted((project / "outbox" / ISSUE).glob("*.eml"))
    assert len(files) == 14 and all(len(f.name) <= 80 for f in files)
    long_file = next(f for f in files if f.name.startswith("0000014-"))
    assert re.fullmatch(r"0000014-a{53}~[0-9a-f]{10}\.eml", long_file.name)
    raw = files[-1].read_bytes()
    noisy = email.message_from_bytes(raw, policy=policy.default)
    assert noisy["To"].addresses[0].addr_spec == "noisy@example.com"
    assert noisy["Bcc"] is None
    # the name without its control characters, cut to 100 characters, in a folded header
    shown = ("Noisy [31m Bcc: all@evil.example" + "x" * 12000)[:99] + "…"
    to = email.message_from_bytes(raw)["To"]  # as written: encoded words, folded
    assert str(make_header(decode_header(to))) == f"{shown} <noisy@example.com>"
    assert f"你好，{shown}：" in noisy.get_body(("plain",)).get_content()
    status = run("status", ISSUE).stdout.splitlines()
    assert status[-1] == f"    bob@example.com\\n  invalid: {reason}"

    fixed = run("audience", "add", "bob@example.com")  # the operator corrects the address
    assert fixed.stdout == "bob@example.com: corrected\n"
    again = run("send", ISSUE, "--resend-failed")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"{ISSUE}: done through outbox: sent 15, failed 0, "
                                   "invalid 0,")
    names = {f.name for f in (project / "outbox" / ISSUE).glob("*.eml")}
    assert len(names) == 15 and "0000013-bob@example.com.eml" in names


def test_an_address_still_invalid_is_set_aside_again(run, audience):
    insert_subscriber(audience, "not an address", "")
    assert run("send", ISSUE, "--yes").exit_code == 3
    again = run("send", ISSUE, "--resend-failed")
    assert again.exit_code == 3
    assert "sent 12, failed 0, invalid 1," in again.stdout
    assert statuses(audience) == {"sent": 12, "invalid": 1}


def test_the_dry_run_shows_the_first_reader_that_can_be_sent_to(run, project):
    db = project / ".newsletter" / "newsletter.db"
    connect(db).close()
    insert_subscriber(db, "first@example.com\r\n", "First")  # id 1, not an address
    assert run("audience", "import", "subscribers.csv").exit_code == 0
    result = run("send", ISSUE, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "recipients: 13" in result.stdout
    assert "To: =?utf-8?b?5p6X5pmT6Zuo?= <lin.xiaoyu@example.com>" in result.stdout


def test_import_and_add_refuse_control_characters_in_names(run, project):
    (project / "list.csv").write_text('email,name\nok@example.com,"A\x07B"\n', encoding="utf-8")
    result = run("audience", "import", "list.csv")
    assert result.stderr == ("list.csv:2: warning: the name contains the control character "
                             "U+0007, which would break the email's headers; row skipped\n")
    added = run("audience", "add", "ok@example.com", "--name", "A\tB")
    assert added.exit_code == 1
    assert added.stderr == ("the name contains the control character U+0009, which would "
                            "break the email's headers\n")


def test_resend_failed_is_not_for_due(run, project):
    result = run("send", "--due", "--resend-failed")
    assert result.exit_code == 2
    assert ("--due sends every due issue; it takes no ISSUE, --test, --to, --dry-run, "
            "--resend-unknown, --resend-failed or --force") in result.stderr


# --- the ledger's migration ------------------------------------------------------------


def test_migration_2_keeps_the_ledger_and_allows_invalid(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(MIGRATIONS[0].sqlite + "; PRAGMA user_version = 1;")
    old.execute("INSERT INTO sends (id, issue, subject, provider, state, total, started_at) "
                "VALUES (1, 'x', 's', 'outbox', 'done', 2, 't')")
    old.execute("INSERT INTO deliveries (send_id, subscriber_id, email, status, attempts, "
                "provider, message_id, error, updated_at) VALUES "
                "(1, 1, 'a@example.com', 'sent', 1, 'outbox', 'm1', NULL, 't'), "
                "(1, 2, 'b@example.com', 'failed', 2, 'outbox', NULL, '550', 't')")
    old.close()
    db = connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] >= 2
    assert [tuple(r)[:9] for r in db.execute("SELECT * FROM deliveries ORDER BY subscriber_id")
            ] == [
        (1, 1, "a@example.com", "sent", 1, "outbox", "m1", None, "t"),
        (1, 2, "b@example.com", "failed", 2, "outbox", None, "550", "t")]
    db.execute("UPDATE deliveries SET status = 'invalid' WHERE subscriber_id = 2")
    try:
        db.execute("UPDATE deliveries SET status = 'bogus' WHERE subscriber_id = 2")
    except sqlite3.IntegrityError:
        pass
    else:
        raise AssertionError("the CHECK constraint is gone")
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_migration_10_keeps_the_ledger_and_its_check(tmp_path):
    path = tmp_path / "v9.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA foreign_keys = ON")
    for migration in MIGRATIONS[:9]:
        old.executescript(migration.sqlite + f"; PRAGMA user_version = {migration.number};")
    old.execute("INSERT INTO sends (id, issue, subject, provider, state, total, started_at) "
                "VALUES (1, 'x', 's', 'sendgrid', 'sending', 3, 't')")
    rows = [(1, 1, "a@example.com", "sent", 1, "sendgrid", "m1", None, "t1", 7, "en"),
            (1, 2, "b@example.com", "inflight", 2, None, None, None, "t2", 8, None),
            (1, 3, "c@example.com", "unknown", 1, "smtp", None, "lost", "t3", 7, "zh-CN")]
    old.executemany("INSERT INTO deliveries (send_id, subscriber_id, email, status, attempts, "
                    "provider, message_id, error, updated_at, run, edition) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    old.close()
    db = connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [tuple(r) for r in db.execute(
        "SELECT send_id, subscriber_id, email, status, attempts, provider, message_id, error, "
        "updated_at, run, edition FROM deliveries ORDER BY subscriber_id")] == rows
    schema = db.execute("SELECT sql FROM sqlite_master WHERE name = 'deliveries'").fetchone()[0]
    assert "WITHOUT ROWID" in schema and "status IN" not in schema
    for status in ("pending", "inflight", "sent", "failed", "invalid", "unknown", "skipped"):
        db.execute("UPDATE deliveries SET status = ? WHERE subscriber_id = 2", (status,))
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE deliveries SET status = 'bogus' WHERE subscriber_id = 2")
    with pytest.raises(sqlite3.IntegrityError):  # the send it belongs to must exist
        db.execute("INSERT INTO deliveries (send_id, subscriber_id, email) VALUES (9, 1, 'x')")
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
