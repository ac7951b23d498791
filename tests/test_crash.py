"""Real processes killed, interrupted and racing: nobody is sent twice, nobody forgotten.

Each send here is `python -m pipeline send ...` in its own process, against the local
SendGrid server running in the test process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from pipeline.store import connect
from tests.sendgrid_server import API_KEY, SendGridServer
from tests.test_schedule import populate

ISSUE = "2023-12-07-ai-productivity-09"


@pytest.fixture
def server():
    with SendGridServer() as sg:
        sg.faults = lambda n, body: "slow"
        sg.delay = 0.03  # a request takes a while, as over a real network
        yield sg


def environment(project, server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update({"NEWSLETTER_PROVIDER": "sendgrid", "NEWSLETTER_SENDGRID_API_HOST": server.url,
                "SENDGRID_API_KEY": API_KEY, "NEWSLETTER_SECRET": "crash-test-secret"})
    return env


def start(project, server, *args: str, extra_env: dict[str, str] | None = None
          ) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=project,
                            env={**environment(project, server), **(extra_env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def processes_in(folder) -> list[int]:
    """Processes but this one whose working directory is ``folder`` (a send and what it
    forked)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(folder):
                    found.append(int(entry))
            except OSError:
                pass
    return found


def statuses(project, database: str | None = None) -> dict[str, list[str]]:
    """The ledger's addresses by status, in the project's SQLite file or ``database``."""
    db = connect(database or project / ".newsletter" / "newsletter.db")
    found: dict[str, list[str]] = {}
    for status, email in db.execute("SELECT status, email FROM deliveries").fetchall():
        found.setdefault(status, []).append(email)
    db.close()
    return found


def test_sigkill_at_random_moments_never_sends_twice(project, server, engine):
    """Sends killed at random moments until one finishes. Two requests of 200 in flight,
    so that a kill leaves at most 400 readers in doubt and most of the 20,000 are sent
    (with 8 of SendGrid's 1,000 a few kills could leave every reader unknown, and the
    test prove nothing)."""
    total, batch, in_flight = 20_000, 200, 2
    populate(engine.location, total)
    database = engine.env.get("NEWSLETTER_DATABASE")
    env = {**engine.env, "NEWSLETTER_SENDGRID_BATCH_SIZE": str(batch),
           "NEWSLETTER_DELIVERY_CONCURRENCY": str(in_flight)}
    rng = random.Random(20231207)
    kills, window = 0, 0.6
    for _ in range(80):
        process = start(project, server, "send", ISSUE, "--yes", extra_env=env)
        try:
            process.wait(timeout=rng.uniform(0.2, window))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            window += 0.15  # later runs live longer, so the send ends
            continue
        out, err = process.communicate()
        assert process.returncode in (0, 3), err
        break
    else:
        pytest.fail("the send never finished")
    assert kills >= 3, "the test should kill the sender several times"
    print(f"killed {kills} times")
    # a send this long encodes in forked processes: none outlives its killed parent
    deadline = time.monotonic() + 10
    while processes_in(project) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes_in(project)
    found = statuses(project, database)
    assert set(found) <= {"sent", "unknown"}
    unknown = set(found.get("unknown", []))
    # at most the batches in flight, per kill: [delivery] concurrency of them
    assert len(unknown) <= in_flight * batch * kills
    print(f"unknown after the kills: {len(unknown)}")
    assert len(found["sent"]) + len(unknown) == total and len(found["sent"]) > total // 2
    for address in found["sent"]:
        assert server.received[address] == 1, address
    for address in unknown:
        assert server.received[address] in (0, 1), address
    # an explicit decision completes the rest
    process = start(project, server, "send", ISSUE, "--resend-unknown", extra_env=env)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    found = statuses(project, database)
    assert list(found) == ["sent"] and len(found["sent"]) == total
    assert len(server.received) == total
    assert all(server.received[a] == 1 for a in set(found["sent"]) - unknown)


def test_two_due_runs_at_once_send_exactly_once(project, server, engine):
    populate(engine.location, 4000)
    meta = project / "issues" / ISSUE / "issue.yaml"
    meta.write_text(meta.read_text() + "send_at: 2023-12-07T09:00:00+08:00\n")
    now = ["send", "--due", "--now", "2023-12-07T09:02:00+08:00"]
    # one request at a time each, so that neither run has claimed everything before the
    # other starts
    env = {**engine.env, "NEWSLETTER_DELIVERY_CONCURRENCY": "1"}
    first, second = (start(project, server, *now, extra_env=env) for _ in range(2))
    results = [p.communicate(timeout=120) + (p.returncode,) for p in (first, second)]
    assert [code for _, _, code in results] == [0, 0]
    sending = [err for _, err, _ in results if f"{ISSUE}: due at" in err]
    waiting = [err for _, err, _ in results if "another send run is in progress" in err]
    if engine.name == "sqlite":  # one sender at a time: the other waits for the next run
        assert len(sending) == 1 and len(waiting) == 1, results
    else:  # PostgreSQL: both share the send
        assert len(sending) == 2 and not waiting, results
    assert len(server.received) == 4000 and set(server.received.values()) == {1}
    assert statuses(project, engine.env.get("NEWSLETTER_DATABASE")).keys() == {"sent"}


def test_sigterm_finishes_the_batch_in_flight_and_the_next_run_resumes(project, server,
                                                                       engine):
    populate(engine.location, 8000)
    # two requests in flight: with the default eight, all 8 batches could be in flight
    # before the signal, and the run would end done, with nothing left to stop
    env = {**engine.env, "NEWSLETTER_DELIVERY_CONCURRENCY": "2"}
    process = start(project, server, "send", ISSUE, "--yes", extra_env=env)
    deadline = time.monotonic() + 60
    while server.requests < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 3, err
    assert "stopping after the batch in flight" in err
    assert f"{ISSUE}: stopped through sendgrid: sent" in out
    found = statuses(project, engine.env.get("NEWSLETTER_DATABASE"))
    assert "inflight" not in found and "unknown" not in found
    assert len(found["sent"]) == server.accepted_requests * 1000 < 8000
    assert all(server.received[a] == 1 for a in found["sent"])
    resumed = start(project, server, "send", "--due",  # cron picks the send up again
                    extra_env=engine.env)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "resuming" in err
    assert len(server.received) == 8000 and set(server.received.values()) == {1}
