"""send_issue, send_test, plan_send: a built issue becomes delivered messages.

read → render (once) → personalise (per recipient, cheap) → provider.send(batch) →
ledger. Retries, backoff and stopping live here; providers only deliver.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..audience import queries as audience
from ..audience.addresses import email_problem
from ..config import Config
from ..errors import ConfigError, DeliveryError, PipelineError, display_path
from ..issue import Issue, read_issue, record_id
from ..render import render_issue, web_url
from ..store import connect
from .ledger import Ledger
from .personalise import PreparedEmail, Recipient
from .providers import RETRY, Outcome, Provider

MAX_ATTEMPTS = 6  # a batch is tried this often before the run gives up on it
BASE_DELAY = 1.0  # seconds; doubled per attempt, with jitter
MAX_DELAY = 120.0


@dataclass
class Runtime:
    """What a send needs from the world, injected: tests pass a fake clock and sleep."""

    clock: Callable[[], datetime]
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = random.random
    log: Callable[[str], None] = lambda line: None
    stop: Callable[[], bool] = lambda: False  # set by SIGINT/SIGTERM: finish the batch, stop
    progress: Callable[[str, int], Callable[[int], None]] = lambda label, total: lambda done: None


@dataclass
class SendReport:
    issue: str
    provider: str
    total: int
    counts: dict[str, int]
    done: bool
    orphans: int = 0
    stopped: bool = False
    handled_now: int = 0  # recipients given a final outcome by this run
    already_sent_on: str = ""  # the date a send that was complete before this run ended

    @property
    def ok(self) -> bool:
        return self.done and not self.counts["failed"] and not self.counts["unknown"]

    def summary(self, outbox: Path | None = None) -> list[str]:
        """What a person reads after a send; where the outbox's messages went."""
        c = self.counts
        if self.already_sent_on:
            return [f"{self.issue}: already sent on {self.already_sent_on} to {c['sent']} "
                    "readers; nothing to send"]
        state = "done" if self.done else "stopped" if self.stopped else "incomplete"
        lines = [f"{self.issue}: {state} through {self.provider}: sent {c['sent']}, failed "
                 f"{c['failed']}, unknown {c['unknown']}, skipped {c['skipped']}, pending "
                 f"{c['pending']} of {self.total}"]
        if self.provider == "outbox" and c["sent"] and outbox is not None:
            lines.append(f"messages written to {display_path(outbox / self.issue)}/")
        return lines


def prepare(folder: Path, config: Config, test: bool = False) -> tuple[Issue, PreparedEmail]:
    issue = read_issue(folder, config)
    rendered = render_issue(issue, config)
    prepared = PreparedEmail(rendered, config, web_url(issue, config), test,
                             issue.lines.get("subject"))
    return issue, prepared


def _require_unsubscribe_url(config: Config) -> None:
    if not config.unsubscribe_url:
        raise ConfigError.one(config.path.name, "unsubscribe_url is not set; readers must be "
                                                "able to leave: set it to where `newsletter "
                                                "serve` answers")


def send_issue(folder: Path, config: Config, provider: Provider, rt: Runtime,
               resend_unknown: bool = False, prepared: tuple[Issue, PreparedEmail] | None = None
               ) -> SendReport:
    _require_unsubscribe_url(config)
    issue, email = prepared or prepare(folder, config)
    ledger = Ledger(connect(config.database))
    if ledger.find(*issue.ledger_keys) is None and not audience.count(ledger.db)["active"]:
        ledger.db.close()
        raise PipelineError(f"{issue.id}: nobody to send to: the audience has no active "
                            "readers; add some (newsletter audience import FILE) and send "
                            "again")
    if "id" not in issue.lines:  # derived once, and kept when the folder is renamed
        record_id(issue.folder, issue.id)
    record, orphans = ledger.start(issue.id, email.subject, provider.name, rt.clock(),
                                   former=issue.ledger_keys[1:])
    if orphans:
        rt.log(f"{issue.id}: {orphans} recipients were in flight when a run stopped; "
               "marked unknown (see `newsletter status`; resend with --resend-unknown)")
    report = SendReport(issue.id, provider.name, record.total, {}, False, orphans)
    if record.state == "done" and not orphans and not resend_unknown:
        report.counts = ledger.counts(record.id)
        if not report.counts["failed"] and not report.counts["unknown"]:
            report.done = True  # complete before this run: nobody is sent it again
            report.already_sent_on = local_date(record.finished_at or record.started_at,
                                                config)
            ledger.db.close()
            return report
    if resend_unknown:
        count = ledger.resend_unknown(record.id, rt.clock())
        rt.log(f"{issue.id}: {count} unknown recipients queued to send again")
    progress = rt.progress(issue.id, ledger.counts(record.id)["pending"])
    with provider:
        while not rt.stop():
            batch = ledger.claim(record.id, provider.batch_size, rt.clock())
            if not batch:
                break
            delivered = deliver_batch(ledger, record.id, provider, email, batch, rt)
            report.handled_now += delivered.handled
            progress(report.handled_now)
            if not delivered.finished:
                break
    getattr(progress, "finish", lambda: None)()
    report.stopped = rt.stop()
    report.done = ledger.finish_if_done(record.id, rt.clock())
    report.counts = ledger.counts(record.id)
    ledger.db.close()
    return report


@dataclass
class Delivered:
    handled: int = 0
    finished: bool = True  # False: the batch was put back after too many attempts


def deliver_batch(ledger: Ledger, send_id: int, provider: Provider, email: PreparedEmail,
                  batch: list[Recipient], rt: Runtime) -> Delivered:
    """Send one claimed batch, retrying what was certainly not delivered."""
    result = Delivered()
    pending = batch
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            outcomes = provider.send([email.message(r) for r in pending], rt.clock())
        except DeliveryError:
            ledger.release(send_id, pending, "not sent: the provider refused the request",
                           rt.clock())
            raise
        done, retry = [], []
        for recipient, outcome in zip(pending, outcomes, strict=True):
            if outcome.status == RETRY:
                retry.append((recipient, outcome))
            else:
                done.append((recipient, outcome.status, outcome.message_id, outcome.error))
                result.handled += 1
        ledger.record(send_id, done, provider.name, rt.clock())
        if not retry:
            return result
        error = retry[0][1].error
        if attempt == MAX_ATTEMPTS:
            break
        delay = backoff(attempt, retry[0][1].retry_after, rt.random)
        rt.log(f"{email.slug}: {len(retry)} not delivered ({error}); attempt {attempt + 1} "
               f"of {MAX_ATTEMPTS} in {delay:.1f}s")
        rt.sleep(delay)
        pending = [recipient for recipient, _ in retry]
    ledger.release(send_id, [r for r, _ in retry],
                   f"gave up after {MAX_ATTEMPTS} attempts: {error}", rt.clock())
    rt.log(f"{email.slug}: gave up on a batch after {MAX_ATTEMPTS} attempts ({error}); "
           "the next run resumes it")
    result.finished = False
    return result


def local_date(stamp: str, config: Config) -> str:
    """The date of a ledger time (ISO 8601) in the publication's time zone."""
    return datetime.fromisoformat(stamp).astimezone(config.zone).date().isoformat()


def backoff(attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
    """Exponential backoff with full jitter, or what the provider asked for."""
    if retry_after is not None:
        return min(MAX_DELAY, retry_after + rng())
    return min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1) * (0.5 + rng()))


def send_test(folder: Path, config: Config, provider: Provider, addresses: list[str],
              rt: Runtime) -> list[tuple[str, Outcome]]:
    """A test message to each address (subscriber or not); not recorded as the send."""
    for address in addresses:
        problem = email_problem(address)
        if problem:
            raise PipelineError(f"{problem}; give --to a full address like you@example.com")
    _, email = prepare(folder, config, test=True)
    recipients = [Recipient(0, address) for address in addresses]
    with provider:
        outcomes = provider.send([email.message(r) for r in recipients], rt.clock())
    return list(zip(addresses, outcomes, strict=True))


@dataclass(frozen=True)
class Plan:
    provider: str
    recipients: int
    already_sent: int
    first_headers: str


def plan_send(folder: Path, config: Config, provider_name: str, now: datetime) -> Plan:
    """What `send` would do, without sending: for --dry-run and the confirmation."""
    _require_unsubscribe_url(config)
    issue, email = prepare(folder, config)
    db = connect(config.database)
    try:
        ledger = Ledger(db)
        record = ledger.find(*issue.ledger_keys)
        if record:
            counts = ledger.counts(record.id)
            remaining, done = counts["pending"], counts["sent"]
            first = ledger.first_pending(record.id)
        else:
            remaining, done = audience.count(db)["active"], 0
            sub = next(audience.subscribers(db, "active"), None)
            first = Recipient(sub.id, sub.email, sub.name) if sub else None
    finally:
        db.close()
    recipient = first or Recipient(0, "reader@example.com")
    raw = email.message(recipient).as_bytes(now).decode("ascii")
    headers = raw.split("\r\n\r\n", 1)[0].replace("\r\n", "\n")
    return Plan(provider_name, remaining, done, headers)
