"""`newsletter send`, `schedule`, `status`, `cron`: getting an issue to its readers,
now or when it is due, and what became of it."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Config
from ..errors import ExitStatus, display_path
from . import App, _echo, cli, needs, pass_app


@cli.command()
@click.argument("issue", required=False)
@click.option("--test", is_flag=True, help="Send one test message to each --to address.")
@click.option("--to", "addresses", multiple=True, metavar="ADDR",
              help="An address for --test (repeat for several).")
@click.option("--dry-run", is_flag=True,
              help="Show the provider, the count and the first message's headers; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option("--provider", "provider_name", type=click.Choice(["outbox", "smtp", "sendgrid"]),
              help="Override `provider` of newsletter.toml.")
@click.option("--resend-unknown", is_flag=True,
              help="Also send to recipients whose delivery is unknown after a crash.")
@click.option("--resend-failed", is_flag=True,
              help="Also send again to recipients the provider refused or whose address was "
                   "invalid (after you fixed them).")
@click.option("--force", is_flag=True,
              help="Send even if `newsletter check` finds errors (never with --due).")
@click.option("--due", is_flag=True,
              help="For cron: send every issue whose send_at has come and is not sent.")
@click.option("--now", "now_text", metavar="TIME",
              help="With --due: the time to decide what is due at (ISO 8601), for tests and "
                   "catch-up; messages and the ledger still carry the real time.")
@pass_app
@needs("NEWSLETTER_SECRET")
def send(app: App, issue: str | None, test: bool, addresses: tuple[str, ...], dry_run: bool,
         yes: bool, provider_name: str | None, resend_unknown: bool, resend_failed: bool,
         force: bool, due: bool, now_text: str | None) -> None:
    """Send ISSUE to every active subscriber, a --test to any address, or --due issues."""
    _check_send_options(issue, test, addresses, dry_run,
                        resend_unknown or resend_failed or force, due,
                        now_text)
    name = provider_name or app.config.provider
    if due:
        _send_due(app, name, now_text)
    elif test:
        _send_test(app, app.issue_folder(issue), name, addresses)
    else:
        _send_audience(app, app.issue_folder(issue), name, dry_run, yes, resend_unknown,
                       resend_failed, force)


def _check_send_options(issue, test, addresses, dry_run, for_a_person, due, now_text):
    if due and (issue or test or addresses or dry_run or for_a_person):
        raise click.UsageError("--due sends every due issue; it takes no ISSUE, --test, "
                               "--to, --dry-run, --resend-unknown, --resend-failed or "
                               "--force")
    if now_text and not due:
        raise click.UsageError("--now goes with --due")
    if not due and not issue:
        raise click.UsageError("give the ISSUE to send, or --due")
    if test and not addresses:
        raise click.UsageError("--test needs at least one --to ADDR")
    if addresses and not test:
        raise click.UsageError("--to goes with --test; a real send goes to the audience")


def _send_due(app: App, name: str, now_text: str | None) -> None:
    from ..delivery.due import run_due
    from ..delivery.providers import make_provider
    from ..delivery.signals import stop_on_signals
    from ..editor.check import send_blockers

    config = app.config
    with stop_on_signals() as stop:
        rt = app.runtime(stop)  # the real clock: the ledger's times, each message's Date
        as_of = None
        if now_text:
            from ..delivery.schedule import parse_time

            as_of = parse_time(now_text, config)
            app.clock = lambda: as_of  # what is due, and the log's stamps
        status = run_due(config, lambda: make_provider(name, config), rt,
                         on_report=lambda report: _print_report(report, config),
                         gate=send_blockers, now=as_of)
    raise click.exceptions.Exit(status)


def _send_test(app: App, folder: Path, name: str, addresses: tuple[str, ...]) -> None:
    from ..delivery.providers import make_provider
    from ..delivery.send import send_test

    results = send_test(folder, app.config, make_provider(name, app.config), list(addresses),
                        app.runtime())
    for address, outcome in results:
        click.echo(f"test to {address}: {outcome.status} ({name}: "
                   f"{outcome.message_id or outcome.error})")
    if any(outcome.status != "sent" for _, outcome in results):
        raise click.exceptions.Exit(ExitStatus.PARTIAL)


def _send_audience(app: App, folder: Path, name: str, dry_run: bool, yes: bool,
                   resend_unknown: bool, resend_failed: bool, force: bool) -> None:
    from ..delivery.due import send_now
    from ..delivery.providers import make_provider
    from ..delivery.send import plan_send
    from ..delivery.signals import stop_on_signals
    from ..editor.check import send_blockers

    plan = plan_send(folder, app.config, name, app.now())
    if dry_run:
        click.echo(f"provider: {plan.provider}")
        click.echo(f"recipients: {plan.recipients}"
                   + (f" (already sent: {plan.already_sent})" if plan.already_sent else "")
                   + (f" (audience: {plan.audience})" if plan.audience != "everyone" else ""))
        click.echo("first message's headers:")
        click.echo(plan.first_headers)
        return
    if not yes and not (resend_unknown or resend_failed) and plan.recipients:
        click.confirm(f"Send {folder.name} to {plan.recipients} subscribers through {name}?",
                      abort=True, err=True)
    with stop_on_signals() as stop:
        report = send_now(folder, app.config, make_provider(name, app.config),
                          app.runtime(stop), resend_unknown, resend_failed,
                          None if force else send_blockers)
    _print_report(report, app.config)
    if not report.ok:
        raise click.exceptions.Exit(ExitStatus.PARTIAL)


@cli.command()
@click.argument("issue")
@click.option("--at", "at", metavar="TIME",
              help="ISO 8601 with a zone, or a local time in the configured timezone.")
@click.option("--cancel", is_flag=True, help="Remove the schedule.")
@pass_app
def schedule(app: App, issue: str, at: str | None, cancel: bool) -> None:
    """Set (or --cancel) ISSUE's send_at; cron's `send --due` sends it then."""
    from ..delivery.schedule import parse_time, schedule_issue

    if bool(at) == cancel:
        raise click.UsageError("give either --at TIME or --cancel")
    when = None if cancel else parse_time(at, app.config)
    path = schedule_issue(app.issue_folder(issue), app.config, when, app.now())
    click.echo(f"{display_path(path)}: " + (f"send_at {when.isoformat()}" if when else
                                            "schedule removed"))


@cli.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for scripts.")
@pass_app
def status(app: App, issue: str | None, as_json: bool) -> None:
    """Each issue's schedule, state and recipients: sent, failed, unknown, pending."""
    import json

    from ..delivery.schedule import issue_states

    folders = [app.issue_folder(issue)] if issue else None
    states = issue_states(app.config, folders, app.now(), list_unknown=bool(issue))
    if as_json:
        click.echo(json.dumps([s.as_json() for s in states], ensure_ascii=False, indent=2))
        return
    for state in states:
        _echo(state.summary())


@cli.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for scripts.")
@pass_app
def stats(app: App, issue: str | None, as_json: bool) -> None:
    """Each sent issue's delivery and engagement: sent, delivered, bounced, complaints,
    unsubscribes, and opens and clicks where the provider tracks them."""
    import json

    from ..delivery.stats import issue_stats

    keys = None
    if issue:
        from ..issue import issue_ids, read_metadata

        folder = app.issue_folder(issue)
        ids = issue_ids(app.config)
        keys = ids.ledger_keys(read_metadata(folder, app.config, ids)[0]["id"], folder)
    db = app.db()
    try:
        found = issue_stats(db, keys)
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps([s.as_json() for s in found], ensure_ascii=False, indent=2))
        return
    if issue and not found:
        click.echo(f"{issue}: not sent yet; nothing to count")
    _echo([line for s in found for line in s.lines()])


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default="report.html", show_default=True, help="The page to write.")
@pass_app
def report(app: App, out: Path) -> None:
    """Write one static page (no JavaScript) with charts: the audience's growth and each
    issue's delivery and engagement."""
    from ..archive.report import write_report

    db = app.db()
    try:
        written = write_report(db, app.config, out, app.now())
    finally:
        db.close()
    click.echo(f"wrote {display_path(written)}")


@cli.command()
@click.option("--check", is_flag=True,
              help="Run the line once, as cron would (env -i, /bin/sh), and report.")
@click.option("--systemd", is_flag=True, help="Print a systemd service and timer instead.")
@pass_app
def cron(app: App, check: bool, systemd: bool) -> None:
    """Print the crontab line that sends due issues every five minutes."""
    from ..config import ENV_FILE
    from ..delivery.cron import cron_line, missing_under_cron, run_as_cron, systemd_units

    if check and systemd:
        raise click.UsageError("give --check or --systemd, not both")
    line = cron_line(app.config.root)
    click.echo(systemd_units(app.config.root, app.config.name) if systemd else line)
    for secret in missing_under_cron(app.config):
        click.echo(f"warning: {secret} is not in {ENV_FILE}: an unattended run (cron, "
                   f"systemd) will not have it and exits 4; put it there (mode 600)", err=True)
    if check:
        ran = run_as_cron(line, app.config.root)
        click.echo(f"ran it as cron would (env -i, /bin/sh, from the home folder): exit "
                   f"{ran.status}; it wrote to logs/send.log:")
        _echo([f"  {entry}" for entry in ran.log] or ["  (nothing)"])
        raise click.exceptions.Exit(ran.status)


def _print_report(report, config: Config) -> None:
    _echo(report.summary(config.outbox.path))
