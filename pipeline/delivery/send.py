"""send_issue, send_test, plan_send: a built issue becomes delivered messages.

read → render (once) → personalise (per recipient, cheap) → provider.send(batch) →
ledger. Retries, backoff and stopping live here; providers only deliver.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..audience import queries as audience
from ..audience.addresses import email_problem, invalid_reason, shown
from ..config import Config
from ..errors import ConfigError, DeliveryError, DeliveryStopped, PipelineError, display_path
from ..issue import Issue, read_issue, record_id
from ..issue.version import issue_version
from ..render import render_issue, web_url
from ..store import connect, exists
from .ledger import Ledger, LedgerBusy
from .pace import DAY, DailyCap, Pace
from .personalise import Editions, PreparedEmail, Recipient
from .providers import DEFERRED, FAILED, RETRY, Outcome, Provider
from .workers import STOPPED, Encoders, Job, Senders

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
    # progress(label, total)(recipients handled so far, their outcomes so far)
    progress: Callable[[str, int], Callable[[int, Mapping[str, int]], None]] = \
        lambda label, total: lambda done, outcomes: None



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
    outcomes: Counter[str] = field(default_factory=Counter)  # this run's, by status
    problem: str = ""  # why the run stopped before the end (disk full, database locked)
    capped: bool = False  # the daily limit (max_per_day) stopped it

    @property
    def ok(self) -> bool:
        c = self.counts
        return self.done and not (c["failed"] or c["invalid"] or c["unknown"])

    def summary(self, outbox: Path | None = None) -> list[str]:
        """What a person reads after a send; where the outbox's messages went, and what
        to do about readers it could not reach."""
        c = self.counts
        if self.already_sent_on:
            return [f"{self.issue}: already sent on {self.already_sent_on} to {c['sent']} "
                    "readers; nothing to send"]
        state = "done" if self.done else "stopped" if self.stopped else "incomplete"
        lines = [f"{self.issue}: {state} through {self.provider}: sent {c['sent']}, failed "
                 f"{c['failed']}, invalid {c['invalid']}, unknown {c['unknown']}, skipped "
                 f"{c['skipped']}, pending {c['pending']} of {self.total}"]
        if self.provider == "outbox" and c["sent"] and outbox is not None:
            lines.append(f"messages written to {display_path(outbox / self.issue)}/")
        if c["failed"] or c["invalid"]:
            lines.append(f"`newsletter status {self.issue}` lists the failed and invalid "
                         f"addresses; fix them, then `newsletter send {self.issue} "
                         "--resend-failed`")
        return lines


def prepare(folder: Path, config: Config, test: bool = False) -> tuple[Issue, Editions]:
    """The issue, and each of its editions rendered once and prepared to personalise."""
    issue = read_issue(folder, config)
    emails = {}
    for edition in issue.editions:
        emails[edition_key(edition)] = PreparedEmail(
            render_issue(edition, config), config, web_url(edition, config), test,
            issue.lines.get("subject"))
    return issue, Editions(emails)


def edition_key(edition: Issue) -> str:
    """What the ledger records of an edition: its language, when the issue has several."""
    return edition.language if edition.languages else ""


def _require_unsubscribe_url(config: Config) -> None:
    if not config.unsubscribe_url:
        raise ConfigError.one(config.path.name, "unsubscribe_url is not set; readers must be "
                                                "able to leave: set it to where `newsletter "
                                                "serve` answers")


def _refuse_welcome(issue: Issue, ledger: Ledger) -> None:
    """A welcome issue goes to each reader who confirms a signup, one at a time: never
    to the whole audience. Its send, once readers joined it, resumes like any other."""
    if issue.kind == "welcome" and ledger.find(*issue.ledger_keys) is None:
        ledger.db.close()
        raise PipelineError(f"{issue.id}: a welcome issue (kind: welcome) is sent by `newsletter "
                            "serve` to each reader who confirms a signup, never to the whole "
                            f"audience; try it with `newsletter send {issue.slug} --test --to "
                            "ADDR`", path=display_path(issue.folder / "issue.yaml"),
                            line=issue.lines.get("kind"))


def send_issue(folder: Path, config: Config, provider: Provider, rt: Runtime,
               resend_unknown: bool = False, prepared: tuple[Issue, Editions] | None = None,
               fallback: Callable[[], Provider] | None = None) -> SendReport:
    """Send (or resume) an issue to its audience through provider; when the provider
    gives up on a batch (unreachable, 5xx after every retry) and ``[delivery] fallback``
    names another (or ``fallback`` makes one), the readers not yet sent go through that.
    A reader whose request may have reached the first (unknown) is never sent by the
    second: only pending readers are claimed."""
    _require_unsubscribe_url(config)
    issue, email = prepared or prepare(folder, config)
    ledger = Ledger(connect(config.database), config.database_wait.total_seconds(), rt.sleep,
                    rt.stop, rt.log)
    _refuse_welcome(issue, ledger)
    if (ledger.find(*issue.ledger_keys) is None
            and not audience.anyone_in_segment(ledger.db, issue.audience)):
        ledger.db.close()
        raise PipelineError(f"{issue.id}: nobody to send to: {_nobody(issue)}")
    version = issue_version(issue.folder)  # as reviewed: before the id is written
    if "id" not in issue.lines:  # derived once, and kept when the folder is renamed
        record_id(issue.folder, issue.id)
    record, orphans = ledger.start(issue.id, email.subject, provider.name, rt.clock(),
                                   former=issue.ledger_keys[1:], segment=issue.audience,
                                   editions=issue.languages,
                                   version=(version.content_hash, version.commit))
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
    try:
        through = provider
        while not deliver_all(ledger, record.id, through, email, report, rt, config):
            second = _fallback(config, through, fallback)
            if second is None or rt.stop():
                break
            rt.log(f"{issue.id}: {through.name} gave up; the readers not yet sent go "
                   f"through {second.name}")
            report.provider = f"{report.provider}, then {second.name}"
            ledger.rewind(record.id)
            through, fallback = second, None
        if report.capped:
            report.problem = _capped(config, ledger, issue.id, rt)
            rt.log(report.problem)
        report.done = ledger.finish_if_done(record.id, rt.clock())
    except (DeliveryStopped, LedgerBusy) as exc:
        # the outbox cannot be written, or the database stayed locked: the run stops with
        # what it says; what was not delivered stays pending, what was not recorded in flight
        report.problem = exc.format_message()
        rt.log(report.problem)
    finally:
        # a row this run leaves in flight is one nobody is delivering any more: unknown
        counts = ledger.counts_after_run(record.id)
        ledger.db.close()
    report.stopped = rt.stop() or bool(report.problem)
    report.counts = counts
    return report


def _nobody(issue: Issue) -> str:
    if issue.audience.everyone:
        return ("the audience has no active readers; add some (newsletter audience import "
                "FILE) and send again")
    return (f"no active reader is in its audience ({issue.audience.describe()}); tag some "
            "(newsletter audience tag EMAIL TAG) or change `audience` in issue.yaml")


def _fallback(config: Config, used: Provider, make: Callable[[], Provider] | None
              ) -> Provider | None:
    """The provider to fail over to, once: the injected one, or [delivery] fallback."""
    if make is not None:
        return make()
    name = config.delivery.fallback
    if not name or name == used.name or name in (config.provider, ""):
        return None
    from .providers import make_provider

    return make_provider(name, config)


def _capped(config: Config, ledger: Ledger, issue_id: str, rt: Runtime) -> str:
    """What a run stopped by the daily limit says: when the next may continue."""
    limit = config.delivery.max_per_day
    first = ledger.oldest_since(rt.clock() - DAY)
    when = (first + DAY).astimezone(config.zone).strftime("%Y-%m-%d %H:%M") if first else "now"
    return (f"{issue_id}: stopped at the daily limit (max_per_day = {limit} in any 24 hours); "
            f"the rest stays pending: `send --due` from {when} continues it")


def deliver_all(ledger: Ledger, send_id: int, provider: Provider, email: Editions,
                report: SendReport, rt: Runtime, config: Config | None = None) -> bool:
    """Claim and deliver batch after batch until none is left, a stop is asked for, the
    daily limit is reached or a batch cannot be delivered now (False: the provider gave
    up on one, so a fallback may take the rest).

    Up to ``[delivery] concurrency`` batches are in flight, each claimed and committed
    before its request; this loop alone touches the database. A batch of readers of
    several editions goes as one request per edition (one body each)."""
    settings = config.delivery if config else None
    workers = (settings.concurrency if settings else 0) or provider.concurrency
    pace = Pace(settings.max_per_second if settings else 0, rt.sleep)
    cap = DailyCap(settings.max_per_day if settings else 0, ledger.used_since, rt.clock)
    pending = ledger.pending(send_id)
    progress = rt.progress(email.slug, pending)
    busy, claiming, gave_up = 0, True, False
    failure: DeliveryError | None = None
    # before any thread starts: encoder processes are forked
    encoders = Encoders.start(email, provider, pending) if workers > 1 else None
    try:
        with Senders(provider, workers, pace, rt.clock, rt.sleep, rt.stop) as senders:
            while True:
                while claiming and busy < senders.n and failure is None and not rt.stop():
                    size = min(provider.batch_size, cap.allowance())
                    batch = ledger.claim(send_id, size, rt.clock()) if size else []
                    _set_aside(ledger, email, report, rt)
                    if not batch:
                        claiming = False
                        report.capped = cap.reached
                        break
                    cap.take(len(batch))
                    for edition, readers in by_edition(batch).items():
                        senders.submit(Job(readers, email[edition]).personalise(
                            provider, encoders, edition))
                        busy += 1
                if not busy:
                    break
                job, result = senders.result()
                busy -= 1
                if isinstance(result, DeliveryError):
                    _record_failure(ledger, send_id, provider, job.batch, result, rt)
                    failure = failure or result
                    continue
                if isinstance(result, BaseException):
                    raise result
                if result == STOPPED:
                    ledger.release(send_id, job.batch, "not sent: the run stopped while "
                                   f"waiting to retry ({job.error})", rt.clock())
                    continue
                retry = _record_outcomes(ledger, send_id, provider, email, job, result,
                                         report, rt)
                progress(report.handled_now, report.outcomes)
                if not retry:
                    continue
                error, wait = retry[0][1].error, retry[0][1].retry_after
                if job.attempt < MAX_ATTEMPTS and not rt.stop():
                    delay = backoff(job.attempt, wait, rt.random)
                    if wait is not None:  # the provider's limit: every request waits
                        pace.pause(delay)
                    rt.log(f"{email.slug}: {len(retry)} not delivered ({error}); attempt "
                           f"{job.attempt + 1} of {MAX_ATTEMPTS} in {delay:.1f}s")
                    senders.submit(Job([r for r, _ in retry], job.email, job.attempt + 1,
                                       0.0 if wait is not None else delay, error))
                    busy += 1
                    continue
                recipients = [r for r, _ in retry]
                if rt.stop():
                    ledger.release(send_id, recipients, "not sent: the run stopped while "
                                   f"waiting to retry ({error})", rt.clock())
                    continue
                ledger.release(send_id, recipients,
                               f"gave up after {MAX_ATTEMPTS} attempts: {error}", rt.clock())
                rt.log(f"{email.slug}: gave up on a batch after {MAX_ATTEMPTS} attempts "
                       f"({error}) through {provider.name}; the next run resumes it")
                claiming, gave_up = False, True
        if failure is not None:
            raise failure
    finally:
        if encoders is not None:
            encoders.close()
        getattr(progress, "finish", lambda: None)()
    return not gave_up


def by_edition(batch: list[Recipient]) -> dict[str, list[Recipient]]:
    """A claimed batch split by the edition each reader gets, in claim order."""
    first = batch[0].edition if batch else ""
    if all(recipient.edition == first for recipient in batch):  # one edition, mostly
        return {first: batch}
    groups: dict[str, list[Recipient]] = {}
    for recipient in batch:
        groups.setdefault(recipient.edition, []).append(recipient)
    return groups


def _set_aside(ledger: Ledger, email: Editions, report: SendReport, rt: Runtime) -> None:
    """Readers a claim found unsendable (invalid address, left meanwhile): counted."""
    for status, address, why in ledger.set_aside:
        report.outcomes[status] += 1
        report.handled_now += 1
        if status == "invalid":
            rt.log(f"{email.slug}: not sent to '{shown(address)}': {why}")
    ledger.set_aside.clear()


def _record_failure(ledger: Ledger, send_id: int, provider: Provider,
                    batch: list[Recipient], exc: DeliveryError, rt: Runtime) -> None:
    """A request the provider refused for good: what it handled before is recorded; the
    rest was not sent and goes back to pending."""
    handled = [(r, o) for r, o in zip(batch, exc.done, strict=False) if o]
    ids = {r.id for r, _ in handled}
    unsent = [(r, "pending", "", f"not sent: {exc.message}") for r in batch if r.id not in ids]
    ledger.record(send_id, [*_rows(handled), *unsent], provider.name, rt.clock())


def _record_outcomes(ledger: Ledger, send_id: int, provider: Provider, email: Editions,
                     job: Job, outcomes: list[Outcome], report: SendReport, rt: Runtime
                     ) -> list[tuple[Recipient, Outcome]]:
    """Record a batch's final outcomes and whom the server deferred (a 4xx: pending, for
    a later run); the readers to retry soon (RETRY). Readers of one outcome are one
    group, recorded in one statement (a SendGrid request's are all one)."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    retry, deferred, failed = [], [], []
    for recipient, outcome in zip(job.batch, outcomes, strict=True):
        status = outcome.status
        if status == RETRY:
            retry.append((recipient, outcome))
            continue
        if status == DEFERRED:
            deferred.append((recipient, outcome))
            key = ("pending", "", f"deferred: {outcome.error}")
        else:
            if status == FAILED:
                failed.append((recipient, outcome))
            key = (status, outcome.message_id, outcome.error)
        groups.setdefault(key, []).append(recipient.id)
    ledger.record_groups(send_id, groups, provider.name, rt.clock())
    for (status, _, _), ids in groups.items():
        if status != "pending":  # final: sent, failed, unknown
            report.handled_now += len(ids)
            report.outcomes[status] += len(ids)
    _log_refusals(email.slug, provider.name, failed, deferred, rt)
    return retry


def local_date(stamp: str, config: Config) -> str:
    """The date of a ledger time (ISO 8601) in the publication's time zone."""
    return datetime.fromisoformat(stamp).astimezone(config.zone).date().isoformat()


def _rows(pairs: list[tuple[Recipient, Outcome]]) -> list[tuple[Recipient, str, str, str]]:
    return [(r, o.status, o.message_id, o.error) for r, o in pairs]


def _log_refusals(slug: str, provider: str, failed: list[tuple[Recipient, Outcome]],
                  deferred: list[tuple[Recipient, Outcome]], rt: Runtime) -> None:
    """One log line for the readers a batch failed, one for those it deferred."""
    for pairs, what in ((failed, f"refused by {provider}, failed"),
                        (deferred, f"deferred by {provider}; a later run tries again")):
        if pairs:
            first, outcome = pairs[0]
            more = f" and {len(pairs) - 1} more" if len(pairs) > 1 else ""
            rt.log(f"{slug}: {len(pairs)} {what}: {shown(first.email)}{more} "
                   f"({outcome.error})")


def backoff(attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
    """Exponential backoff with full jitter, or what the provider asked for."""
    if retry_after is not None:
        return min(MAX_DELAY, retry_after + rng())
    return min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1) * (0.5 + rng()))


def resend_failed(config: Config, issue: Issue, rt: Runtime) -> int:
    """`send ISSUE --resend-failed`: the readers the provider refused (failed) and those
    whose address was invalid back to pending, once the operator has fixed them; how
    many. An address still invalid is set aside again at its claim, never sent."""
    db = connect(config.database)
    try:
        ledger = Ledger(db, config.database_wait.total_seconds(), rt.sleep, rt.stop, rt.log)
        record = ledger.find(*issue.ledger_keys)
        count = ledger.requeue(record.id, ("failed", "invalid"), rt.clock()) if record else 0
    finally:
        db.close()
    rt.log(f"{issue.id}: {count} failed or invalid recipients queued to send again")
    return count


def send_test(folder: Path, config: Config, provider: Provider, addresses: list[str],
              rt: Runtime) -> list[tuple[str, Outcome]]:
    """A test message to each address (subscriber or not); not recorded as the send."""
    for address in addresses:
        problem = email_problem(address)
        if problem:
            raise PipelineError(f"{problem}; give --to a full address like you@example.com")
    _, email = prepare(folder, config, test=True)
    refs: dict[str, bytes] = {}
    if exists(config.database):  # a reader's test has their own link; nobody else's works
        db = connect(config.database)
        try:
            refs = audience.refs_of(db, addresses)
        finally:
            db.close()
    # one message of each edition to each address; "address (en)" for an edition's
    recipients = [Recipient(0, address, ref=refs.get(address.lower()) or audience.new_ref(),
                            edition=edition)
                  for edition, _ in email for address in addresses]
    shown_as = [f"{r.email} ({r.edition})" if r.edition else r.email for r in recipients]
    with provider:
        outcomes = provider.send([email.message(r) for r in recipients], rt.clock())
    return list(zip(shown_as, outcomes, strict=True))


@dataclass(frozen=True)
class Plan:
    provider: str
    recipients: int
    already_sent: int
    first_headers: str
    audience: str = "everyone"  # the issue's segment, described


def plan_send(folder: Path, config: Config, provider_name: str, now: datetime) -> Plan:
    """What `send` would do, without sending: for --dry-run and the confirmation."""
    _require_unsubscribe_url(config)
    issue, email = prepare(folder, config)
    db = connect(config.database)
    try:
        ledger = Ledger(db)
        _refuse_welcome(issue, ledger)
        record = ledger.find(*issue.ledger_keys)
        if record:
            counts = ledger.counts(record.id)
            remaining, done = counts["pending"], counts["sent"]
            first = ledger.first_pending(record.id)
        else:
            remaining, done = audience.count_segment(db, issue.audience), 0
            sub = next((s for s in audience.subscribers(db, "active", issue.audience)
                        if not invalid_reason(s.email)), None)
            first = Recipient(sub.id, sub.email, sub.name, ref=sub.ref) if sub else None
    finally:
        db.close()
    message = email.message(first or Recipient(0, "reader@example.com"))
    raw = message.as_bytes(now).decode("ascii")
    # the headers as sent, but a real reader's token never shows on a screen or in a log
    headers = raw.split("\r\n\r\n", 1)[0].replace("\r\n", "\n").replace(message.token,
                                                                         "TOKEN")
    return Plan(provider_name, remaining, done, headers, issue.audience.describe())
