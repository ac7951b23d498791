"""PostgreSQL as the shared database: the schema and its migrations, one clear message
for a server that cannot be reached, `serve` on another host unsubscribing into it, and
several `send --due` workers sharing one send, one of them killed.

A real PostgreSQL (Debian's postgresql package) runs for the session: tests/postgres.py."""

from __future__ import annotations

import email
import os
import shutil
import signal
import subprocess
import sys
from email import policy

import pytest

from pipeline.delivery.ledger import Ledger
from pipeline.delivery.providers.sendgrid import SendGridProvider
from pipeline.store import MIGRATIONS, connect, database_problem, migrate, transaction
from pipeline.store.database import _set_version
from tests.conftest import NOW, PUBLICATION, SECRET, start_process
from tests.postgres import PASSWORD, PASSWORD_USER, free_port, wait_for
from tests.sendgrid_server import API_KEY, SendGridServer
from tests.test_schedule import populate
from tests.test_unsubscribe import call

ISSUE = "2023-12-07-ai-productivity-09"
ROUNDUP = "2023-03-19-ai-weekly-roundup"


@pytest.fixture
def pg(run, pg_url) -> str:
    """The project pointed at a fresh PostgreSQL database (NEWSLETTER_DATABASE)."""
    run.env["NEWSLETTER_DATABASE"] = pg_url
    return pg_url


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    db = connect(url)
    try:
        return [tuple(row) for row in db.execute(sql, params).fetchall()]
    finally:
        db.close()


# --- the schema ------------------------------------------------------------------------


def test_db_upgrade_applies_every_migration_once_and_says_which(run, pg):
    masked = pg  # no password in this URL
    status = run("db", "status")
    assert status.exit_code == 0
    assert status.stdout.splitlines() == [
        f"{masked}: schema version 0, {len(MIGRATIONS)} to apply",
        *(f"  {m.number}: {m.what}" for m in MIGRATIONS),
        "`newsletter db upgrade` applies them (so does any command that uses the database)"]
    upgrade = run("db", "upgrade")
    assert upgrade.exit_code == 0, upgrade.output
    assert upgrade.stdout.splitlines() == [
        *(f"applied {m.number}: {m.what}" for m in MIGRATIONS),
        f"{masked}: schema version {len(MIGRATIONS)}, up to date"]
    again = run("db", "upgrade")
    assert again.stdout == f"{masked}: schema version {len(MIGRATIONS)}, up to date\n"
    versions = rows(pg, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(m.number,) for m in MIGRATIONS]


def test_first_use_migrates_and_the_audience_behaves_as_on_sqlite(run, pg):
    assert run("audience", "import", "subscribers.csv").stdout == (
        "added 12, updated 0, unchanged 0, kept unsubscribed 0, skipped 0\n")
    again = run("audience", "import", "subscribers.csv")
    assert again.stdout == "added 0, updated 0, unchanged 12, kept unsubscribed 0, skipped 0\n"
    assert run("audience", "remove", "lin.xiaoyu@example.com").stdout == \
        "lin.xiaoyu@example.com: unsubscribed\n"
    assert run("audience", "add", "new@example.com", "--name", "New").stdout == \
        "new@example.com: added\n"
    assert run("audience", "count").stdout == (
        "12 active, 1 unsubscribed, 0 suppressed, 13 in all\n")
    listed = run("audience", "list", "--status", "all").stdout.splitlines()
    assert listed[0] == "lin.xiaoyu@example.com\t林晓雨\tunsubscribed" and len(listed) == 13
    refs = rows(pg, "SELECT ref FROM subscribers")
    assert len({ref for (ref,) in refs}) == 13 and all(len(ref) == 12 for (ref,) in refs)
    # a row written by other means gets a strongly random ref of its own from the schema
    (ref,), = rows(pg, "INSERT INTO subscribers (email, email_key, created_at, updated_at) "
                       "VALUES ('d@example.com', 'd@example.com', 't', 't') RETURNING ref")
    assert isinstance(ref, bytes) and len(ref) == 12


def test_migrations_3_and_4_keep_an_older_databases_rows(pg):
    db = connect(pg, upgrade=False)
    for migration in MIGRATIONS[:2]:  # a database of the program as it was at version 2
        with transaction(db):
            for statement in migration.statements("postgresql"):
                db.execute(statement)
            _set_version(db, migration.number)
    db.executemany("INSERT INTO subscribers (id, email, email_key, created_at, updated_at) "
                   "VALUES (?, ?, ?, 't', 't')",
                   [(n, f"r{n}@example.com", f"r{n}@example.com") for n in (3, 7, 9)])
    db.execute("INSERT INTO sends (id, issue, subject, provider, state, started_at) "
               "VALUES (1, 'x', 's', 'outbox', 'sending', 't')")
    db.execute("INSERT INTO deliveries (send_id, subscriber_id, email, status) "
               "VALUES (1, 3, 'r3@example.com', 'inflight')")
    assert [m.number for m in migrate(db)] == [m.number for m in MIGRATIONS[2:]]  # 3, 4, …
    refs = [ref for (ref,) in db.execute("SELECT ref FROM subscribers ORDER BY id").fetchall()]
    assert len(set(refs)) == 3 and all(len(ref) == 12 for ref in refs)
    assert tuple(db.execute("SELECT status, run FROM deliveries").fetchone()) == \
        ("inflight", None)  # claimed by a program before runs: over, for the next start
    ledger = Ledger(db)
    _, orphans = ledger.start("x", "s", "outbox", NOW)
    assert orphans == 1
    db.close()


def test_a_serial_transaction_that_waits_too_long_leaves_the_connection_usable(pg_url):
    """Three workers start one send: two wait for the first's snapshot; one whose wait
    runs out tries again on a clean connection, not inside an aborted transaction."""
    from pipeline.store.database import is_busy

    holder, waiter = connect(pg_url), connect(pg_url, timeout=0.2)
    try:
        with transaction(holder, serial=True):
            with pytest.raises(Exception) as waited:
                with transaction(waiter, serial=True):
                    pass
            assert is_busy(waited.value)
            assert not waiter.in_transaction
            assert waiter.execute("SELECT 1").fetchone()[0] == 1
        with transaction(waiter, serial=True):  # free now
            assert waiter.execute("SELECT 2").fetchone()[0] == 2
    finally:
        holder.close()
        waiter.close()


def test_a_live_workers_rows_in_flight_are_never_marked_unknown_a_dead_ones_are(pg):
    populate(pg, 10)
    first, second = Ledger(connect(pg)), Ledger(connect(pg))
    record, orphans = first.start(ISSUE, "s", "outbox", NOW)
    mine = first.claim(record.id, 4, NOW)  # in flight at the provider, say
    _, orphans = second.start(ISSUE, "s", "outbox", NOW)
    assert orphans == 0  # a live worker's batch is left alone
    theirs = second.claim(record.id, 4, NOW)  # SKIP LOCKED and the cursor: other readers
    assert {r.id for r in mine}.isdisjoint(r.id for r in theirs) and len(theirs) == 4
    second.record(record.id, [(r, "sent", "m", "") for r in theirs], "outbox", NOW)
    assert second.claim(record.id, 4, NOW)  # the last two
    after = second.counts_after_run(record.id)  # were the second to stop now:
    assert (after["inflight"], after["unknown"]) == (4, 2)  # the first's live, its own
    first.db.close()  # the first worker dies: its session, and its lock, end
    third = Ledger(connect(pg))
    _, orphans = third.start(ISSUE, "s", "outbox", NOW)
    assert orphans == 4  # the dead worker's batch, and not the live second's two
    rows = dict(third.db.execute("SELECT subscriber_id, status FROM deliveries").fetchall())
    assert sorted(rows[r.id] for r in mine) == ["unknown"] * 4
    assert list(rows.values()).count("inflight") == 2
    for ledger in (second, third):
        ledger.db.close()


# --- a server that cannot be reached ---------------------------------------------------


def test_a_server_that_refuses_a_wrong_password_or_a_missing_database_is_one_message(
        run, postgres):
    port = free_port()
    cases = {
        f"postgresql://nl:s3cret@127.0.0.1:{port}/news": (
            f"postgresql://nl:***@127.0.0.1:{port}/news: cannot connect to PostgreSQL "
            "(Connection refused); is PostgreSQL running there and accepting connections? "
            "check the host and port in `database`\n"),
        postgres.url("postgres", PASSWORD_USER, "s3cret"): (
            f"postgresql://{PASSWORD_USER}:***@127.0.0.1:{postgres.port}/postgres: cannot "
            f"connect to PostgreSQL (password authentication failed for user \"{PASSWORD_USER}\"); "
            "check the user and password in `database` (or PGPASSWORD, ~/.pgpass)\n"),
        postgres.url("no_such_db", "postgres", "s3cret"): (
            f"postgresql://postgres:***@127.0.0.1:{postgres.port}/no_such_db: cannot connect "
            "to PostgreSQL (database \"no_such_db\" does not exist); create it (createdb "
            "no_such_db), or correct its name in `database`\n"),
    }
    for url, message in cases.items():
        for args in (["audience", "count"], ["send", ISSUE, "--yes"], ["db", "upgrade"]):
            result = run(*args, env={"NEWSLETTER_DATABASE": url})
            assert result.exit_code == 1, result.output  # as every other database error
            assert result.stderr == message
            assert "s3cret" not in result.output and "Traceback" not in result.output


def test_a_connection_lost_mid_command_is_said_as_such(pg, postgres):
    db = connect(pg)
    admin = postgres.admin()
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = %s AND pid <> pg_backend_pid()", (pg.rsplit("/", 1)[1],))
    admin.close()
    with pytest.raises(Exception) as raised:
        db.execute("SELECT count(*) FROM subscribers").fetchone()
    assert database_problem(raised.value).startswith(
        "cannot be reached: the connection to PostgreSQL was lost (")
    db.close()


def test_a_user_without_rights_on_the_schema_is_told_what_to_grant(run, postgres, pg):
    # PostgreSQL 15 lets only the owner create tables in the public schema
    url = postgres.url(pg.rsplit("/", 1)[1], PASSWORD_USER, PASSWORD)
    result = run("audience", "count", env={"NEWSLETTER_DATABASE": url})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(
        f"postgresql://{PASSWORD_USER}:***@127.0.0.1:{postgres.port}/")
    assert ": refuses this user (permission denied for schema public); grant the user in " \
           "`database` the right to create and change tables in the database's schema" in \
           result.stderr
    assert PASSWORD not in result.output


# --- serve on another host -------------------------------------------------------------


def test_serve_on_another_host_unsubscribes_into_the_shared_database(run, pg, project,
                                                                     tmp_path_factory):
    assert run("audience", "import", "subscribers.csv").exit_code == 0
    assert run("send", ISSUE, "--yes").exit_code == 0  # the sender's machine
    web_host = tmp_path_factory.mktemp("web-host")  # another checkout, another machine
    shutil.copytree(PUBLICATION, web_host, dirs_exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_process(web_host, ["serve", "--port", str(port)], base + "/healthz",
                           {"NEWSLETTER_SECRET": SECRET, "NEWSLETTER_DATABASE": pg})
    try:
        raw = next((project / "outbox" / ISSUE).glob("*lin.xiaoyu*.eml")).read_bytes()
        message = email.message_from_bytes(raw, policy=policy.default)
        https = str(message["List-Unsubscribe"]).split(",")[0].strip(" <>")
        local = https.replace("https://news.example.com", base)
        assert call(local, b"List-Unsubscribe=One-Click")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert not (web_host / ".newsletter").exists()  # nothing written on the web host
    (state, source), = rows(pg, "SELECT status, unsubscribe_source FROM subscribers WHERE "
                                "email_key = ?", ("lin.xiaoyu@example.com",))
    assert (state, source) == ("unsubscribed", "one-click")
    result = run("send", ROUNDUP, "--yes")
    assert "sent 11, failed 0, invalid 0, unknown 0, skipped 0, pending 0 of 11" in result.stdout
    assert not list((project / "outbox" / ROUNDUP).glob("*lin.xiaoyu*"))


# --- several workers share one send ----------------------------------------------------


def test_three_workers_share_a_send_and_one_killed_leaves_only_its_batch_unknown(
        project, pg):
    """Three `send --due` processes on one PostgreSQL database share a send of 100,000
    readers through the local SendGrid server (SendGrid's batches of 1,000, each request
    held a moment); one is SIGKILLed with batches in flight. The server counts what it
    accepted, per reader (the schema is checked by the other SendGrid tests: here it
    would only cost time)."""
    total, batch = 100_000, 1000
    populate(pg, total)
    meta = project / "issues" / ISSUE / "issue.yaml"
    meta.write_text(meta.read_text() + "send_at: 2023-12-07T09:00:00+08:00\n")
    with SendGridServer(validate_schema=False, keep_bodies=False) as server:
        server.faults = lambda n, body: "slow"
        server.delay = 0.05
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update({"NEWSLETTER_DATABASE": pg, "NEWSLETTER_SECRET": SECRET,
                    "NEWSLETTER_PROVIDER": "sendgrid", "SENDGRID_API_KEY": API_KEY,
                    "NEWSLETTER_SENDGRID_API_HOST": server.url,
                    "NEWSLETTER_SENDGRID_BATCH_SIZE": str(batch)})

        def worker(*args: str) -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "pipeline", "send", *args],
                                    cwd=project, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)

        due = ("--due", "--now", "2023-12-07T09:02:00+08:00")
        workers = [worker(*due) for _ in range(3)]
        victim = workers[0]

        def victim_mid_batch() -> bool:  # its run has a batch in flight and has sent some
            found = dict(rows(pg, "SELECT d.status, count(*) FROM deliveries d JOIN runs r "
                                  "ON r.id = d.run WHERE r.pid = ? GROUP BY d.status",
                              (victim.pid,)))
            return found.get("inflight", 0) > 0 and found.get("sent", 0) > 0

        assert wait_for(victim_mid_batch, timeout=60), victim.communicate()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        (killed_run,), = rows(pg, "SELECT id FROM runs WHERE pid = ?", (victim.pid,))
        for w in workers[1:]:
            out, err = w.communicate(timeout=120)
            assert w.returncode in (0, 3), err  # 3: the killed worker's rows are unknown
            assert "Traceback" not in err

        statuses = dict(rows(pg, "SELECT status, count(*) FROM deliveries GROUP BY status"))
        assert set(statuses) == {"sent", "unknown"}, statuses
        assert statuses["sent"] + statuses["unknown"] == total
        # at most the killed worker's batches in flight: [delivery] concurrency of them
        assert 0 < statuses["unknown"] <= batch * SendGridProvider.concurrency
        assert rows(pg, "SELECT DISTINCT run FROM deliveries WHERE status = 'unknown'") == [
            (killed_run,)]  # never a live worker's rows
        by_run = dict(rows(pg, "SELECT run, count(*) FROM deliveries WHERE status = 'sent' "
                               "GROUP BY run"))
        print(f"sent by run: {by_run}; unknown: {statuses['unknown']}")
        assert killed_run in by_run and len(by_run) >= 2  # shared (a slow start may miss out)
        sent = {a for (a,) in rows(pg, "SELECT email FROM deliveries WHERE status = 'sent'")}
        unknown = {a for (a,) in rows(pg, "SELECT email FROM deliveries "
                                          "WHERE status = 'unknown'")}
        received = dict(server.received)
        assert all(received.get(a) == 1 for a in sent)  # server-side: exactly once
        assert all(received.get(a, 0) <= 1 for a in unknown)
        assert set(received) <= sent | unknown

        resumed = worker(*due)  # cron again: nobody is sent anything twice
        out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err
        assert "nothing due" in err and dict(server.received) == received

        decided = worker(ISSUE, "--resend-unknown")  # an operator's decision completes it
        out, err = decided.communicate(timeout=60)
        assert decided.returncode == 0, err
        assert out.startswith(f"{ISSUE}: done through sendgrid: sent {total}, failed 0, "
                              "invalid 0, unknown 0")
        assert len(server.received) == total
        assert all(server.received[a] == 1 for a in sent)


def test_a_worker_that_finds_the_rest_being_claimed_by_another_is_done(pg):
    """Rows another worker is claiming this moment (locked, still pending) are that
    worker's: this one finishes as done, and leaves the send for the other to complete.
    A pending row nobody holds is not: the run is not done."""
    populate(pg, 6)
    first, second = Ledger(connect(pg)), Ledger(connect(pg))
    record, _ = first.start(ISSUE, "s", "outbox", NOW)
    mine = first.claim(record.id, 4, NOW)
    first.record(record.id, [(r, "sent", "m", "") for r in mine], "outbox", NOW)
    second.start(ISSUE, "s", "outbox", NOW)
    with transaction(second.db):  # the second worker, mid-claim of the last two
        second.db.execute("SELECT subscriber_id FROM deliveries WHERE status = 'pending' "
                          "FOR UPDATE")
        assert first.claim(record.id, 4, NOW) == []  # SKIP LOCKED: nothing for the first
        assert first.finish_if_done(record.id, NOW)  # done, as far as the first goes
        assert first.db.execute("SELECT state FROM sends").fetchone()[0] == "sending"
    assert not first.finish_if_done(record.id, NOW)  # unlocked, still pending: not done
    theirs = second.claim(record.id, 4, NOW)
    second.record(record.id, [(r, "sent", "m", "") for r in theirs], "outbox", NOW)
    assert len(theirs) == 2 and second.finish_if_done(record.id, NOW)
    assert second.db.execute("SELECT state FROM sends").fetchone()[0] == "done"
    for ledger in (first, second):
        ledger.db.close()


def test_a_new_sends_ledger_is_analysed_for_the_planner(pg):
    """The planner knows how many rows a new send has: thinking the ledger empty, it
    sorted the whole send at every claim to take its first batch (180 ms a claim at
    100,000 readers, where the key's order takes 3)."""
    populate(pg, 5000)
    ledger = Ledger(connect(pg))
    ledger.start(ISSUE, "s", "outbox", NOW)
    rows = ledger.db.execute("SELECT reltuples FROM pg_class WHERE relname = 'deliveries'")
    assert rows.fetchone()[0] == 5000
    ledger.db.close()
