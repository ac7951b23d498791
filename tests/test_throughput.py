"""Issue 15 (part): requests in flight, rates that hold, a daily limit across runs, and
failover to a second provider; counted on the servers' side."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.delivery.pace import Pace
from pipeline.store import connect
from tests.conftest import NOW
from tests.test_schedule import populate

ISSUE = "2023-12-07-ai-productivity-09"


def ledger(where) -> dict[str, int]:
    """The ledger's counts by status: in the project's SQLite file or an engine's."""
    db = connect(where.location if hasattr(where, "location")
                 else where / ".newsletter" / "newsletter.db")
    try:
        return dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status")
                    .fetchall())
    finally:
        db.close()


@pytest.mark.parametrize("concurrency, expected", [("0", 16), ("1", 1), ("3", 3)])
def test_requests_are_in_flight_at_once(run, project, sendgrid, concurrency, expected):
    """SendGrid's default is 16 requests in flight; [delivery] concurrency sets it."""
    populate(project / ".newsletter" / "newsletter.db", 1600)
    run.env.update({"NEWSLETTER_SENDGRID_BATCH_SIZE": "100",
                    "NEWSLETTER_DELIVERY_CONCURRENCY": concurrency})
    sendgrid.latency = 0.15
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert sendgrid.max_in_flight == expected
    assert sendgrid.requests == 16 and len(sendgrid.received) == 1600
    assert set(sendgrid.received.values()) == {1}
    assert ledger(project) == {"sent": 1600}


def test_smtp_connections_in_flight_deliver_each_reader_once(run, project, smtp):
    populate(project / ".newsletter" / "newsletter.db", 300)
    run.env.update({"NEWSLETTER_SMTP_BATCH_SIZE": "20", "NEWSLETTER_DELIVERY_CONCURRENCY": "3"})
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    delivered = [address for _, rcpt, _ in smtp.messages for address in rcpt]
    assert len(delivered) == 300 and len(set(delivered)) == 300
    assert ledger(project) == {"sent": 300}


def test_max_per_second_spaces_the_requests(run, project, sendgrid):
    """12 readers in batches of 5 at 5 a second: the second request waits a second, the
    third two (the waits are the run's injected sleep; the clock does not move)."""
    populate(project / ".newsletter" / "newsletter.db", 12)
    run.env.update({"NEWSLETTER_SENDGRID_BATCH_SIZE": "5", "NEWSLETTER_DELIVERY_CONCURRENCY": "1",
                    "NEWSLETTER_DELIVERY_MAX_PER_SECOND": "5"})
    assert run("send", ISSUE, "--yes").exit_code == 0
    assert [round(wait, 1) for wait in run.sleep.waits] == [1.0, 2.0]
    assert len(sendgrid.received) == 12


def test_a_pause_a_provider_asks_for_holds_every_request():
    now = [100.0]
    waits: list[float] = []
    pace = Pace(0, waits.append, lambda: now[0])
    assert pace.wait(1000) == 0
    pace.pause(2.5)  # a 429 with X-RateLimit-Reset in 2.5 s
    assert pace.wait(1000) == 2.5 and pace.wait(10) == 2.5  # both in flight wait
    now[0] += 3
    assert pace.wait(1000) == 0 and waits == [2.5, 2.5]


def test_the_daily_limit_stops_a_send_and_the_next_day_continues_it(run, project, sendgrid,
                                                                   engine):
    """max_per_day = 500 of 1,200 readers: 500 a day, over three days, each once."""
    populate(engine.location, 1200)
    run.env.update({"NEWSLETTER_SENDGRID_BATCH_SIZE": "150",
                    "NEWSLETTER_DELIVERY_MAX_PER_DAY": "500"})
    first = run("send", ISSUE, "--yes")
    assert first.exit_code == 3  # partial
    assert first.stdout.startswith(f"{ISSUE}: stopped through sendgrid: sent 500, failed 0, "
                                   "invalid 0, unknown 0, skipped 0, pending 700 of 1200")
    assert (f"{ISSUE}: stopped at the daily limit (max_per_day = 500 in any 24 hours); the "
            "rest stays pending: `send --due` from 2023-12-07 16:00 continues it") in first.stderr
    assert sum(sendgrid.received.values()) == 500
    # the last request of the day took only what was left of the 500
    assert sorted(len(b["personalizations"]) for b in sendgrid.bodies) == [50, 150, 150, 150]
    again = run("send", ISSUE, "--yes")  # the same day: nothing more goes
    assert again.exit_code == 3 and sum(sendgrid.received.values()) == 500
    with run.at(NOW + timedelta(hours=23, minutes=59)):  # a day is 24 hours, not a date
        assert run("send", "--due").exit_code == 3
    assert sum(sendgrid.received.values()) == 500
    with run.at(NOW + timedelta(hours=24, minutes=1)):
        assert run("send", "--due").exit_code == 3  # resumes: 500 more, then the limit
    assert sum(sendgrid.received.values()) == 1000
    with run.at(NOW + timedelta(hours=48, minutes=2)):
        assert run("send", "--due").exit_code == 0
    assert len(sendgrid.received) == 1200 and set(sendgrid.received.values()) == {1}
    assert ledger(engine) == {"sent": 1200}


def test_a_primary_that_refuses_connections_fails_over_with_nobody_sent_twice(run, project,
                                                                              smtp, engine):
    populate(engine.location, 250)
    run.env.update({"NEWSLETTER_PROVIDER": "sendgrid", "SENDGRID_API_KEY": "SG.test",
                    "NEWSLETTER_SENDGRID_API_HOST": "http://127.0.0.1:9",  # nobody listens
                    "NEWSLETTER_DELIVERY_FALLBACK": "smtp"})
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{ISSUE}: done through sendgrid, then smtp: sent 250,")
    assert f"{ISSUE}: sendgrid gave up; the readers not yet sent go through smtp" in result.stderr
    delivered = [address for _, rcpt, _ in smtp.messages for address in rcpt]
    assert len(delivered) == 250 and len(set(delivered)) == 250
    assert ledger(engine) == {"sent": 250}


def test_a_primary_that_goes_down_mid_send_fails_over_and_status_shows_the_split(
        run, project, smtp, sendgrid, engine):
    populate(engine.location, 250)
    run.env.update({"NEWSLETTER_SENDGRID_BATCH_SIZE": "100", "NEWSLETTER_DELIVERY_CONCURRENCY": "1",
                    "NEWSLETTER_DELIVERY_FALLBACK": "smtp"})
    sendgrid.faults = lambda n, body: "500" if n > 1 else None
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    by_sendgrid = set(sendgrid.received)
    by_smtp = {address for _, rcpt, _ in smtp.messages for address in rcpt}
    assert len(by_sendgrid) == 100 and len(by_smtp) == 150
    assert not by_sendgrid & by_smtp  # nobody through both
    status = run("status", ISSUE)
    assert "sent through smtp 150, sendgrid 100" in status.stdout


def test_requests_share_kept_alive_connections(run, project, sendgrid):
    """Each request in flight has a connection of its own, kept for its next request:
    against SendGrid a new one is a TCP and a TLS handshake, two round trips more."""
    populate(project / ".newsletter" / "newsletter.db", 1000)
    run.env.update({"NEWSLETTER_SENDGRID_BATCH_SIZE": "100",
                    "NEWSLETTER_DELIVERY_CONCURRENCY": "2"})
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert sendgrid.requests == 10 and sendgrid.connections == 2
    assert ledger(project) == {"sent": 1000}


def test_a_send_whose_server_closes_every_connection_delivers_each_reader_once(
        run, project, sendgrid):
    """A server that closes each connection after its answer: every request goes on a
    connection of its own, and every reader is sent once."""
    populate(project / ".newsletter" / "newsletter.db", 500)
    run.env.update({"NEWSLETTER_SENDGRID_BATCH_SIZE": "100",
                    "NEWSLETTER_DELIVERY_CONCURRENCY": "1"})
    sendgrid.faults = lambda n, body: "close"
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert sendgrid.requests == 5 and sendgrid.connections == 5
    assert set(sendgrid.received.values()) == {1} and ledger(project) == {"sent": 500}


def test_a_request_never_goes_on_a_connection_the_server_closed():
    """A connection the server closed while it sat idle (as a server does with one idle
    too long) is noticed before the next request, which goes on a new one: it would
    otherwise fail, and the batch wait for a retry."""
    import time

    from pipeline.delivery.providers.keepalive import KeptAliveClient
    from pipeline.delivery.providers.sendgrid import Body
    from tests.sendgrid_server import API_KEY, SendGridServer

    body = (b'{"personalizations":[{"to":[{"email":"a@example.com"}]}],"from":{"email":'
            b'"n@example.com"},"subject":"s","content":[{"type":"text/plain","value":"x"}]}')
    with SendGridServer() as server:
        server.faults = lambda n, body: "close"
        client = KeptAliveClient(host=server.url, version=3, request_headers={
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": "application/json; charset=utf-8"})
        for sent in range(1, 4):
            answer = client.mail.send.post(request_body=Body(body))  # raises if it failed
            assert answer.status_code == 202
            deadline = time.monotonic() + 5
            while server.closed < sent and time.monotonic() < deadline:
                time.sleep(0.01)  # the server closes it after its answer: idle now
            assert server.closed == sent
        assert server.requests == server.connections == 3
        client.connection.close()
