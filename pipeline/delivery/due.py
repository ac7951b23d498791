"""The send decision: what `send --due` sends, in which order, what it refuses, and one
sender at a time.

An issue is due when its send_at has come and its send has not completed, or when a
send of it was interrupted (that resumes, scheduled or not). One more than
max_lateness past send_at is refused unless its send had already started.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..config import Config
from ..errors import ConfigError, ExitStatus, PipelineError, Problem, display_path
from ..issue import issue_folders, issue_ids
from ..store import Database, connect
from .ledger import Ledger
from .lock import SendLock
from .providers import Provider
from .schedule import IssueState, format_delta, issue_state
from .send import Runtime, SendReport, prepare, resend_failed, send_issue

# What stops an issue from being sent (check's errors): injected by the caller, which
# knows the editor's checks; this stage does not.
Gate = Callable[[Path, Config], list[Problem]]


class SendBusyError(PipelineError):
    """Another process holds the send lock of this database."""


class SendRefusedError(PipelineError):
    """The gate found errors in the issue: nothing was sent."""

    def __init__(self, slug: str, problems: list[Problem]):
        lines = [str(problem) for problem in problems]
        lines.append(f"{slug}: not sent: `newsletter check` finds {len(problems)} "
                     f"error{'s' if len(problems) > 1 else ''}; fix them, or send with --force")
        super().__init__("\n".join(lines))
        self.problems = problems


class exclusive_send:
    """``with exclusive_send(config):`` one send run at a time per database."""

    def __init__(self, config: Config):
        self.lock = SendLock(config.database)

    def __enter__(self) -> SendLock:
        if not self.lock.acquire():
            raise SendBusyError(f"another send is in progress (process {self.lock.holder()}); "
                                "wait for it to finish", path=display_path(self.lock.path))
        return self.lock

    def __exit__(self, *exc) -> None:
        self.lock.release()


def send_now(folder: Path, config: Config, provider: Provider, rt: Runtime,
             resend_unknown: bool = False, failed_too: bool = False,
             gate: Gate | None = None) -> SendReport:
    """`send ISSUE`: the whole audience now, or what an interrupted send left; with
    ``failed_too`` (--resend-failed) also the readers it failed or found invalid.
    Refused when the gate finds errors (a person may pass gate=None: --force)."""
    problems = gate(folder, config) if gate else []
    if problems:
        raise SendRefusedError(folder.name, problems)
    with exclusive_send(config):
        prepared = prepare(folder, config)
        if failed_too:
            resend_failed(config, prepared[0], rt)
        return send_issue(folder, config, provider, rt, resend_unknown, prepared)


def due_issues(config: Config, db: Database, now: datetime
               ) -> tuple[list[IssueState], list[IssueState], list[IssueState]]:
    """(to send, oldest first; refused as too late; unreadable) for `send --due`.

    An issue is due when its send_at has come and its send has not completed, or when
    a send of it was interrupted. One more than max_lateness past send_at is refused
    unless its send had already started."""
    ledger = Ledger(db)
    ids = issue_ids(config)
    due, late, invalid = [], [], []
    for folder in issue_folders(config):
        state = issue_state(folder, config, ledger, now, ids)
        if state.state == "invalid":
            invalid.append(state)
        elif state.state in ("due", "sending"):  # an interrupted send resumes, scheduled or not
            due.append(state)
        elif state.state == "late":
            late.append(state)
    due.sort(key=lambda s: s.send_at or now)
    return due, late, invalid


def run_due(config: Config, new_provider: Callable[[], Provider], rt: Runtime,
            on_report: Callable[[SendReport], None] = lambda report: None,
            gate: Gate | None = None, now: datetime | None = None) -> ExitStatus:
    """What cron runs. A run that finds another in progress says so and exits 0.
    ``now``: the time to decide what is due at (default: the runtime's clock)."""
    lock = SendLock(config.database)
    if not lock.acquire():
        rt.log(f"another send run is in progress (process {lock.holder()}); exiting")
        return ExitStatus.OK
    try:
        return send_due(config, new_provider, rt, on_report, gate, now)
    finally:
        lock.release()


def send_due(config: Config, new_provider: Callable[[], Provider], rt: Runtime,
             on_report: Callable[[SendReport], None] = lambda report: None,
             gate: Gate | None = None, now: datetime | None = None) -> ExitStatus:
    """What cron runs: every due issue, oldest first, and every interrupted send.

    Late issues, and issues the gate refuses, are not sent and said so on every run (no
    --force here: nobody is watching); an unreadable issue is reported and the others go
    on. The caller holds the send lock."""
    db = connect(config.database)
    now = now or rt.clock()
    due, late, invalid = due_issues(config, db, now)
    db.close()
    status = ExitStatus.OK
    for state in invalid:
        rt.log(f"{state.slug}: cannot read: {state.problem}")
        status = ExitStatus.PARTIAL
    for state in late:
        rt.log(f"{state.slug}: not sent: send_at {state.send_at.isoformat()} was "
               f"{format_delta(now - state.send_at)} ago, more than max_lateness "
               f"{format_delta(config.max_lateness)}; send it with `newsletter send "
               f"{state.slug}` if it should still go out, or reschedule it")
        status = ExitStatus.PARTIAL
    if not (due or late or invalid):
        rt.log("nothing due")
    for state in due:
        when = state.send_at.isoformat() if state.send_at else "-"
        problems = gate(state.folder, config) if gate else []
        if problems:
            rt.log(f"{state.slug}: not sent: `newsletter check` finds {len(problems)} "
                   f"error{'s' if len(problems) > 1 else ''}, the first {problems[0]}; fix "
                   "them and the next run sends it")
            status = ExitStatus.PARTIAL
            continue
        rt.log(f"{state.slug}: due at {when}; "
               f"{'resuming' if state.state == 'sending' else 'sending'}")
        try:
            report = send_issue(state.folder, config, new_provider(), rt)
        except ConfigError:
            raise
        except PipelineError as exc:
            rt.log(f"{state.slug}: failed: {exc.format_message()}")
            status = ExitStatus.PARTIAL
            continue
        on_report(report)
        if not report.ok:
            status = ExitStatus.PARTIAL
        if report.stopped:
            break
    return status


