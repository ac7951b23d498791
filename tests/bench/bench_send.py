"""Send benchmark: synthetic audiences through the real providers to local servers.

Each measurement runs in a fresh process (so that its peak RSS is its own): the whole
send path in one process — read, render, personalise, deliver, ledger writes — with
the SendGrid server (limits checked, schema validation off: it is the server's cost,
not ours) or an aiosmtpd sink in another process.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLICATION = ROOT / "tests" / "fixtures" / "publication"
ISSUE = "2023-12-07-ai-productivity-09"


def child(provider: str, count: int, port: int) -> None:
    """Runs in its own process: one send of ``count`` recipients; prints JSON."""
    sys.path.insert(0, str(ROOT))
    from datetime import UTC, datetime

    from pipeline.config import load_config
    from pipeline.delivery.providers import make_provider
    from pipeline.delivery.send import Runtime, send_issue
    from tests.sendgrid_server import API_KEY
    from tests.test_schedule import populate

    work = Path(tempfile.mkdtemp(prefix="nl-bench-"))
    shutil.copytree(PUBLICATION, work, dirs_exist_ok=True)
    env = {"NEWSLETTER_SECRET": "bench-secret", "SENDGRID_API_KEY": API_KEY,
           "NEWSLETTER_SENDGRID_API_HOST": f"http://127.0.0.1:{port}",
           "NEWSLETTER_SMTP_HOST": "127.0.0.1", "NEWSLETTER_SMTP_PORT": str(port),
           "NEWSLETTER_SMTP_SECURITY": "none"}
    config = load_config(work / "newsletter.toml", env=env)
    populate(config.database, count)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    report = send_issue(work / "issues" / ISSUE, config, make_provider(provider, config),
                        Runtime(clock=lambda: datetime.now(UTC)))
    elapsed = time.perf_counter() - start
    assert report.ok and report.counts["sent"] == count, report
    print(json.dumps({"rate": count / elapsed, "seconds": elapsed,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_before_send_mb": rss_before / 1024}))
    shutil.rmtree(work)


def run_child(provider: str, count: int, port: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "child", provider, str(count), str(port)],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.sendgrid_server", str(port),
                               "--no-schema"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    server.stdout.readline()  # listening
    try:
        print("send path, sendgrid provider → local SendGrid v3 server (another process):")
        for count in (10_000, 100_000):
            result = run_child("sendgrid", count, port)
            print(f"  {count:>7,} recipients: {result['rate']:>9,.0f} recipients/s "
                  f"({result['seconds']:.2f} s), peak RSS {result['rss_mb']:.0f} MB")
    finally:
        server.terminate()
        server.wait()

    sys.path.insert(0, str(ROOT))
    from tests.smtp_server import Sink, SMTPServer

    sink = Sink()
    with SMTPServer(sink) as smtp:
        result = run_child("smtp", 2_000, smtp.port)
    assert len(sink.messages) == 2_000
    print("send path, smtp provider → local aiosmtpd sink (a thread of this process):")
    print(f"    2,000 messages:   {result['rate']:>9,.0f} messages/s ({result['seconds']:.2f} s), "
          f"peak RSS {result['rss_mb']:.0f} MB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
