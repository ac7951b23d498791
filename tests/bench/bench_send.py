"""Send benchmark: synthetic audiences through the real providers to local servers,
each figure beside the one it is judged against, measured in the same run.

Each measurement runs in a fresh process (so that its peak RSS is its own): the whole
send path — read, render, personalise, deliver, ledger writes — against the SendGrid
server (limits checked, schema validation off: that is the server's cost, not ours) in
another process, or an aiosmtpd sink. The references:

- SendGrid: a client that only POSTs request bodies built before its clock starts,
  with as many requests in flight as our send, to the same server;
- SMTP: smtplib sending prebuilt messages over as many connections.

A virtual machine's speed drifts by tens of per cent within a minute, and the two sides
of a ratio are measured seconds apart: each comparison is made ROUNDS times, its sides
one right after the other, and the median of the rounds' ratios is printed beside each
round's. (The aiosmtpd sink parses every line of a message in Python, about 4 ms a
message: on two cores it, more than the sender, sets the SMTP figures.)
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLICATION = ROOT / "tests" / "fixtures" / "publication"
ISSUE = "2023-12-07-ai-productivity-09"
CONCURRENCY = 16  # SendGrid's default requests in flight (SendGridProvider.concurrency)
SMTP_CONNECTIONS = 16  # SMTP's default connections (SMTPProvider.concurrency)


def _project(count: int, port: int, extra: dict | None = None):
    sys.path.insert(0, str(ROOT))
    from pipeline.config import load_config
    from tests.sendgrid_server import API_KEY
    from tests.test_schedule import populate

    work = Path(tempfile.mkdtemp(prefix="nl-bench-"))
    shutil.copytree(PUBLICATION, work, dirs_exist_ok=True)
    env = {"NEWSLETTER_SECRET": "bench-secret", "SENDGRID_API_KEY": API_KEY,
           "NEWSLETTER_SENDGRID_API_HOST": f"http://127.0.0.1:{port}",
           "NEWSLETTER_SMTP_HOST": "127.0.0.1", "NEWSLETTER_SMTP_PORT": str(port),
           "NEWSLETTER_SMTP_SECURITY": "none", **(extra or {})}
    config = load_config(work / "newsletter.toml", env=env)
    populate(config.database, count)
    return work, config


def peak_rss_kb() -> int:
    """This process's peak resident memory. VmHWM belongs to the process's own memory
    map; getrusage's ru_maxrss would start from the parent's size at fork (a parent that
    held a sink's messages made a send look 496 MB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(provider: str, count: int, port: int) -> None:
    """Runs in its own process: one send of ``count`` recipients; prints JSON."""
    from datetime import UTC, datetime

    work, config = _project(count, port)
    from pipeline.delivery.providers import make_provider
    from pipeline.delivery.send import Runtime, send_issue

    warm_imports()
    rss_before = peak_rss_kb()  # the synthetic audience's insert peaks here: forget it
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the present size
    except OSError:
        pass
    start, cpu = time.perf_counter(), time.process_time()
    report = send_issue(work / "issues" / ISSUE, config, make_provider(provider, config),
                        Runtime(clock=lambda: datetime.now(UTC)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert report.ok and report.counts["sent"] == count, report
    print(json.dumps({"rate": count / elapsed, "seconds": elapsed, "cpu_us": cpu / count * 1e6,
                      "rss_mb": peak_rss_kb() / 1024,
                      "rss_before_send_mb": rss_before / 1024}))
    shutil.rmtree(work)


def warm_imports() -> None:
    """The renderer's libraries, which the send imports on first use: loading modules is
    the process's start, not the send's, and the reference's happen before its clock."""
    import mjml  # noqa: F401
    import premailer  # noqa: F401


def worker(count: int, port: int, url: str) -> None:
    """One of several `send` runs sharing a send in PostgreSQL at ``url`` (the readers
    are there already); prints JSON: how many this worker sent."""
    from datetime import UTC, datetime

    work, config = _project(0, port, {"NEWSLETTER_DATABASE": url})
    from pipeline.delivery.providers import make_provider
    from pipeline.delivery.send import Runtime, send_issue

    report = send_issue(work / "issues" / ISSUE, config, make_provider("sendgrid", config),
                        Runtime(clock=lambda: datetime.now(UTC)))
    print(json.dumps({"sent": report.outcomes["sent"], "ok": report.ok}))
    shutil.rmtree(work)


def reference_sendgrid(count: int, port: int) -> None:
    """The reference: request bodies for ``count`` readers built first (by our own
    provider, untimed), then only POSTed, CONCURRENCY at a time, over kept-alive
    connections; prints JSON."""
    import http.client

    from pipeline.delivery.personalise import Recipient
    from pipeline.delivery.providers import make_provider
    from pipeline.delivery.send import prepare
    from tests.sendgrid_server import API_KEY

    work, config = _project(0, port)
    _, email = prepare(work / "issues" / ISSUE, config)
    provider = make_provider("sendgrid", config)
    bodies = []
    for first in range(0, count, 1000):
        batch = [email.message(Recipient(n, f"reader{n}@example.com", f"读者{n}", ref=b"x" * 12))
                 for n in range(first, min(first + 1000, count))]
        bodies.append(provider.encode(batch))
    headers = {"Authorization": f"Bearer {API_KEY}",
               "Content-Type": "application/json; charset=utf-8"}
    todo = list(bodies)
    lock = threading.Lock()

    def post_all() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not todo:
                    break
                body = todo.pop()
            connection.request("POST", "/v3/mail/send", body, headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 202, response.status
        connection.close()

    timed_in_threads(post_all, CONCURRENCY, count)
    shutil.rmtree(work)


def reference_smtp(count: int, port: int) -> None:
    """smtplib sending ``count`` prebuilt messages over SMTP_CONNECTIONS connections."""
    import smtplib
    from datetime import UTC, datetime

    from pipeline.delivery.personalise import Recipient
    from pipeline.delivery.send import prepare

    work, config = _project(0, port)
    _, email = prepare(work / "issues" / ISSUE, config)
    now = datetime.now(UTC)
    messages = [(f"reader{n}@example.com",
                 email.message(Recipient(n, f"reader{n}@example.com", f"读者{n}",
                                         ref=b"x" * 12)).as_bytes(now))
                for n in range(count)]
    lock = threading.Lock()

    def send_all() -> None:
        with smtplib.SMTP("127.0.0.1", port) as connection:
            while True:
                with lock:
                    if not messages:
                        break
                    to, raw = messages.pop()
                connection.sendmail(config.sender.email, [to], raw)

    timed_in_threads(send_all, SMTP_CONNECTIONS, count)
    shutil.rmtree(work)


def timed_in_threads(work, threads: int, count: int) -> None:
    """Runs ``work`` on that many threads at once; prints JSON: count a second."""
    start = time.perf_counter()
    running = [threading.Thread(target=work) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    elapsed = time.perf_counter() - start
    print(json.dumps({"rate": count / elapsed, "seconds": elapsed}))


def run_child(kind: str, provider: str, count: int, port: int) -> dict:
    done = subprocess.run([sys.executable, __file__, kind, provider, str(count), str(port)],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The local SendGrid server in a process of its own."""

    def __init__(self, latency: float = 0.0):
        self.port = free_port()
        args = [sys.executable, "-m", "tests.sendgrid_server", str(self.port), "--no-schema"]
        if latency:
            args += ["--latency", str(latency)]
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.process.stdout.readline()  # listening

    def __enter__(self) -> int:
        return self.port

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait()


def sendgrid(count: int) -> None:
    print(f"sendgrid path, {count:,} recipients → local SendGrid v3 server (another process), "
          f"{CONCURRENCY} requests in flight; {ROUNDS} rounds, each figure their median:")

    def measure(kind: str, latency: float) -> dict:
        with Server(latency) as port:
            return run_child(kind, "sendgrid", count, port)

    _compare(LATENCIES, measure, "reference_sendgrid", "server answers after",
             "prebuilt bodies", 0.90)


def smtp(count: int) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.smtp_server import Sink, SMTPServer

    print(f"smtp path, {count:,} messages → local aiosmtpd sink, {SMTP_CONNECTIONS} connections; "
          f"{ROUNDS} rounds, each figure their median:")

    def measure(kind: str, hold: float) -> dict:
        with SMTPServer(Sink(hold=hold)) as server:
            return run_child(kind, "smtp", count, server.port)

    _compare(HOLDS, measure, "reference_smtp", "sink holds each message", "smtplib prebuilt",
             0.80)


def _compare(delays: tuple[float, float], measure, reference: str, what: str, named: str,
             goal: float) -> None:
    """ROUNDS rounds, each measuring ours then the reference at every delay; then each
    delay's medians, and ours with the longer delay against ours with none."""
    rounds = [{delay: (measure("child", delay), measure(reference, delay)) for delay in delays}
              for _ in range(ROUNDS)]
    for delay in delays:
        pairs = [r[delay] for r in rounds]
        print(f"  {what} {delay * 1000:>3.0f} ms: ours {_median(o['rate'] for o, _ in pairs):>8,.0f}"
              f"/s, {named} {_median(r['rate'] for _, r in pairs):>8,.0f}/s: "
              f"{_ratios([o['rate'] / r['rate'] for o, r in pairs])} "
              f"(peak RSS {max(o['rss_mb'] for o, _ in pairs):.0f} MB)")
    none, longer = delays
    print(f"  ours with {longer * 1000:.0f} ms against ours with none: "
          f"{_ratios([r[longer][0]['rate'] / r[none][0]['rate'] for r in rounds])} "
          f"(goal ≥ {goal:.2f})")


ROUNDS = 3  # each comparison made this often, interleaved: this machine's speed drifts
LATENCIES = (0.0, 0.15)  # the SendGrid server's answer, seconds
HOLDS = (0.0, 0.02)  # the SMTP sink's, a message


def _median(values) -> float:
    return statistics.median(list(values))


def _ratios(ratios: list[float]) -> str:
    """The median of a figure's ratios, and each round's: "0.52 (0.48 0.52 0.60)"."""
    return f"{_median(ratios):.2f} ({' '.join(f'{r:.2f}' for r in ratios)})"


def memory(counts: tuple[int, ...]) -> None:
    print("peak RSS of a send, from the issue's read to the last record (sendgrid path):")
    with Server() as port:
        for count in counts:
            result = run_child("child", "sendgrid", count, port)
            print(f"  {count:>9,} recipients: {result['rss_mb']:>4.0f} MB "
                  f"({result['rate']:,.0f}/s)")


def workers(count: int, latency: float) -> None:
    """Three workers on one PostgreSQL against one send on SQLite, same server."""
    from tests.postgres import PostgresServer, binaries
    from tests.test_schedule import populate

    found = binaries()
    if found is None:
        print("PostgreSQL workers: skipped (apt-get install postgresql)")
        return
    print(f"{count:,} recipients, server answering after {latency * 1000:.0f} ms:")
    with Server(latency) as port:
        alone = run_child("child", "sendgrid", count, port)
    with PostgresServer(found) as postgres, Server(latency) as port:
        url = postgres.create_database()
        populate(url, count)
        start = time.perf_counter()
        runs = [subprocess.Popen([sys.executable, __file__, "worker", str(count), str(port),
                                  url], stdout=subprocess.PIPE, text=True, cwd=ROOT)
                for _ in range(3)]
        results = [json.loads(run.communicate()[0].strip().splitlines()[-1]) for run in runs]
        elapsed = time.perf_counter() - start
    sent = [r["sent"] for r in results]
    assert sum(sent) == count, sent
    print(f"  SQLite, one send:          {alone['rate']:>8,.0f}/s")
    print(f"  PostgreSQL, three workers: {count / elapsed:>8,.0f}/s (each sent {sent}), "
          f"{count / elapsed / alone['rate']:.2f} of one on SQLite (start-up included)")


def main() -> None:
    sendgrid(100_000)
    print()
    smtp(2_000)
    print()
    memory((100_000, 1_000_000) if "--big" in sys.argv else (100_000,))
    print()
    workers(100_000, 0.15)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] in ("child", "reference_sendgrid", "reference_smtp"):
        globals()[sys.argv[1]](*([sys.argv[2]] if sys.argv[1] == "child" else []),
                               int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
