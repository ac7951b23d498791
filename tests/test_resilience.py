"""The machine never poisons a send: a database another program holds locked, a disk
that fills up under the outbox, SIGTERM or SIGINT in the middle of a retry's backoff.

Sends run as real processes (`python -m pipeline send ...`, as in tests/test_crash.py)
against the local SendGrid server in this process, or through the CLI on the outbox;
the lock is a second SQLite connection's BEGIN IMMEDIATE, the full disk /dev/full."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from pipeline.delivery.providers.outbox import message_file, partial_path
from tests.sendgrid_server import SendGridServer
from tests.test_crash import start, statuses
from tests.test_schedule import populate

ISSUE = "2023-12-07-ai-productivity-09"


@pytest.fixture
def server():
    with SendGridServer() as sg:
        sg.delay = 0.03  # a request takes a while, as over a real network ("slow")
        yield sg


def hold_write_lock(db: Path, seconds: float) -> threading.Thread:
    """Another program's write transaction on the database, held for a while."""
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("ROLLBACK")
        holder.close()

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    return thread


# --- a locked database -----------------------------------------------------------------


def test_a_database_locked_for_a_while_delays_the_send_and_loses_nothing(project, server):
    db = project / ".newsletter" / "newsletter.db"
    populate(db, 3000)
    holders = []

    def lock_before_answering(n, body):
        if n == 2:  # batch 2 is at SendGrid; its outcome will find the database locked
            holders.append(hold_write_lock(db, 3.0))
        return "slow"

    server.faults = lock_before_answering
    process = start(project, server, "send", ISSUE, "--yes")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "the database is locked by another program (database is locked); trying again " \
           "for up to 600s" in err
    assert "Traceback" not in err
    assert out.startswith(f"{ISSUE}: done through sendgrid: sent 3000, failed 0, invalid 0, "
                          "unknown 0,")
    assert len(server.received) == 3000 and set(server.received.values()) == {1}
    assert statuses(project).keys() == {"sent"}


def test_a_database_locked_too_long_leaves_the_delivered_unknown_never_pending(project,
                                                                                server):
    db = project / ".newsletter" / "newsletter.db"
    populate(db, 3000)
    holders = []

    def lock_before_answering(n, body):
        if n == 2:
            holders.append(hold_write_lock(db, 6.0))
        return "slow"

    server.faults = lock_before_answering
    # one request at a time, so that which batch meets the lock is known
    env = {"NEWSLETTER_DATABASE_WAIT": "2s", "NEWSLETTER_DELIVERY_CONCURRENCY": "1"}
    process = start(project, server, "send", ISSUE, "--yes", extra_env=env)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 3, err  # partial, and says why
    assert "Traceback" not in err
    assert (".newsletter/newsletter.db: the database is locked by another program (database "
            "is locked) for longer than database_wait (2s); the outcomes of 1000 recipients "
            "could not be recorded: they stay in flight and count as unknown (see `newsletter "
            "status`; --resend-unknown sends to them again)") in err
    assert out.startswith(f"{ISSUE}: stopped through sendgrid: sent 1000, failed 0, invalid 0, "
                          "unknown 1000, skipped 0, pending 1000 of 3000")
    assert server.accepted_requests == 2
    holders[0].join()
    found = statuses(project)
    assert {k: len(v) for k, v in found.items()} == {"sent": 1000, "inflight": 1000,
                                                    "pending": 1000}

    resumed = start(project, server, "send", "--due")  # cron, once the lock is gone
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 3, err  # 1000 unknown: an operator decides about them
    assert f"{ISSUE}: 1000 recipients were in flight when a run stopped; marked unknown" in err
    assert "sent 2000, failed 0, invalid 0, unknown 1000, skipped 0, pending 0 of 3000" in out
    found = statuses(project)
    assert {k: len(v) for k, v in found.items()} == {"sent": 2000, "unknown": 1000}
    # everyone was delivered exactly once: the unknown ones were, and were not sent again
    assert len(server.received) == 3000 and set(server.received.values()) == {1}


# --- a full disk, a folder that cannot be written ------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_stops_the_outbox_and_leaves_the_unwritten_pending(run, audience,
                                                                       project):
    folder = project / "outbox" / ISSUE
    folder.mkdir(parents=True)
    readers = sqlite3.connect(audience).execute(
        "SELECT id, email FROM subscribers ORDER BY id").fetchall()
    for subscriber_id, address in readers[5:]:  # from the 6th reader on, the disk is full
        partial_path(folder / message_file(subscriber_id, address)).symlink_to("/dev/full")
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3
    sixth = f"outbox/{ISSUE}/{message_file(*readers[5])}"
    assert (f"{sixth}: cannot write the message (No space left on device); the run stops and "
            "the readers not written stay pending: make room or fix the folder, then send "
            "again") in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout.startswith(f"{ISSUE}: stopped through outbox: sent 5, failed 0, "
                                    "invalid 0, unknown 0, skipped 0, pending 7 of 12")
    written = sorted(folder.glob("*.eml"))
    assert [f.name for f in written] == [message_file(*r) for r in readers[:5]]
    assert not [f for f in folder.iterdir() if f.name.endswith(".part") and not f.is_symlink()]
    db = sqlite3.connect(audience)
    assert dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status")) == {
        "sent": 5, "pending": 7}
    before = {f.name: f.stat().st_ino for f in written}

    for link in folder.glob("*.part"):  # room again
        link.unlink()
    again = run("send", ISSUE, "--yes")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"{ISSUE}: done through outbox: sent 12, failed 0")
    files = sorted(folder.glob("*.eml"))
    assert [f.name for f in files] == [message_file(*r) for r in readers]
    # the first five were not written again: the same files
    assert {f.name: f.stat().st_ino for f in files[:5]} == before
    assert dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status")) == {
        "sent": 12}


def test_an_outbox_that_is_not_a_folder_stops_the_send_with_its_path(run, audience, project):
    (project / "not-a-folder").write_text("a file where the outbox should be\n")
    result = run("send", ISSUE, "--yes", env={"NEWSLETTER_OUTBOX_PATH": "not-a-folder"})
    assert result.exit_code == 3
    first = message_file(1, "lin.xiaoyu@example.com")
    assert result.stderr.splitlines()[-1].endswith(
        f"not-a-folder/{ISSUE}/{first}: cannot write the message (Not a directory); the run "
        "stops and the readers not written stay pending: make room or fix the folder, then "
        "send again")
    assert "pending 12 of 12" in result.stdout


# --- signals during a backoff ----------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_backoff_stops_within_two_seconds_with_nobody_in_flight(
        project, server, signum):
    populate(project / ".newsletter" / "newsletter.db", 50)
    server.faults = lambda n, body: "500"  # SendGrid is down: backoffs ever longer
    process = start(project, server, "send", ISSUE, "--yes")
    deadline = time.monotonic() + 60
    while server.requests < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.requests == 3
    time.sleep(0.3)  # well inside the third backoff (2 to 6 s)
    asked = time.monotonic()
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    took = time.monotonic() - asked
    assert took < 2.0, f"took {took:.1f}s to stop"
    assert process.returncode == 3, err
    assert "stopping after the batch in flight" in err
    assert out.startswith(f"{ISSUE}: stopped through sendgrid: sent 0, failed 0, invalid 0, "
                          "unknown 0, skipped 0, pending 50 of 50")
    assert server.requests == 3  # no attempt after the signal
    rows = sqlite3.connect(project / ".newsletter" / "newsletter.db").execute(
        "SELECT status, error, count(*) FROM deliveries GROUP BY status, error").fetchall()
    assert rows == [("pending", "not sent: the run stopped while waiting to retry (SendGrid "
                     "answered 500: Internal Server Error)", 50)]


def test_stop_wait_returns_at_once_when_stopped():
    from pipeline.delivery.signals import Stop

    stop = Stop()
    threading.Timer(0.1, stop.set).start()
    began = time.monotonic()
    stop.wait(30)
    assert stop() and time.monotonic() - began < 1
    stop.close()


def test_any_command_on_a_database_locked_too_long_says_so_and_changes_nothing(run, audience):
    run.env["NEWSLETTER_DATABASE_WAIT"] = "1s"
    holder = hold_write_lock(audience, 4)
    started = time.monotonic()
    result = run("audience", "add", "late.comer@example.com")
    waited = time.monotonic() - started
    holder.join()
    assert result.exit_code == 1 and 1 <= waited < 3.5  # database_wait, not the lock's 4 s
    assert result.stderr == (".newsletter/newsletter.db: locked by another program (database "
                             "is locked) for longer than database_wait (0:00:01); nothing was "
                             "changed: try again when it is done\n")
    assert run("audience", "count").stdout.startswith("12 active")
