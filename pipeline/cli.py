"""The `newsletter` command: thin click commands over plain functions.

Each command parses its options, calls one function of a stage package and prints.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path

import click

from .config import Config, load_config
from .errors import ExitStatus, PipelineError, display_path


class App:
    """What a command needs from outside: the config, the environment and the clock.

    Tests pass their own (``CliRunner().invoke(cli, args, obj=App(...))``), so nothing
    needs patching.
    """

    def __init__(self, config_path: Path | None = None, env: Mapping[str, str] | None = None,
                 clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] | None = None):
        self.config_path = config_path
        self.env = os.environ if env is None else env
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sleep = sleep or time.sleep

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path, self.env)

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        zone = self.config.zone
        return self.now().astimezone(zone).date() if zone else self.now().astimezone().date()

    def log(self, line: str) -> None:
        """A log line on stderr, stamped with the (injected) time: fit for a log file."""
        click.echo(f"{self.now().isoformat(timespec='seconds')} {line}", err=True)

    def runtime(self, stop=None):
        """The send loop's view of the world: this clock and sleep, stderr logs, and a
        progress bar on a terminal or a log line per batch under cron."""
        from .delivery.progress import progress_for
        from .delivery.send import Runtime

        progress = progress_for(sys.stderr.isatty(),
                                lambda text: click.echo(text, err=True, nl=False), self.log)
        # a real sleep becomes the stop's wait, which a signal ends at once: a backoff
        # never holds a stopping send (a sleep a test injects is kept as it is)
        sleep = getattr(stop, "wait", self.sleep) if self.sleep is time.sleep else self.sleep
        return Runtime(clock=self.clock, sleep=sleep, log=self.log, progress=progress,
                       stop=stop or (lambda: False))

    def issue_folder(self, name: str) -> Path:
        from .issue import resolve_issue_path

        return resolve_issue_path(name, self.config)

    def db(self):
        from .store import connect

        return connect(self.config.database, self.config.database_wait.total_seconds())


pass_app = click.make_pass_decorator(App)


def needs(*secrets: str):
    """The secrets a command cannot run without, checked before it starts: a missing
    one is a configuration error (exit 4) that says how to provide it."""
    def decorate(command):
        @functools.wraps(command)
        def checked(app: App, *args, **kwargs):
            for secret in secrets:
                app.config.require(secret)
            return command(app, *args, **kwargs)
        return checked
    return decorate


class _Commands(click.Group):
    """Runs the command; a database that stays locked by another program (past
    database_wait), is read-only, full or damaged, or a PostgreSQL server that went away,
    is said as such, never a traceback. Sends wait in the ledger too; what was committed
    before stays committed."""

    def invoke(self, ctx: click.Context):
        from .store import database_errors, database_problem, is_busy, shown

        try:
            return super().invoke(ctx)
        except database_errors() as exc:
            config = ctx.obj.config
            if is_busy(exc):
                why = (f"locked by another program ({exc}) for longer than database_wait "
                       f"({config.database_wait}); nothing was changed: try again when it "
                       "is done")
            else:
                why = database_problem(exc)
                if why is None:
                    raise
                why += "; what was saved before is kept: run the command again once that is fixed"
            raise PipelineError(why, path=shown(config.database)) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="newsletter.toml to use (default: found in this folder or a parent).")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path),
              help="The publication's folder (holding newsletter.toml), instead of --config.")
@click.version_option(package_name="newsletter-as-code")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, project: Path | None) -> None:
    """Write a newsletter as files in git; build, preview, check and send it."""
    if project:
        from .editor.starter import project_config

        if config_path:
            raise click.UsageError("give --project or --config, not both")
        config_path = project_config(project)
    if ctx.obj is None:
        ctx.obj = App(config_path)
    elif config_path:
        ctx.obj.config_path = config_path


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="The publication's name (default: the folder's name).")
@click.option("--language", default="en", show_default=True,
              help="Its language (zh, zh-CN, …: Chinese labels and sample).")
@click.option("--sender", metavar="ADDR", help='The From address: "Name <addr>" or addr.')
@pass_app
def init(app: App, folder: Path, name: str | None, language: str, sender: str | None) -> None:
    """Create a publication in FOLDER: newsletter.toml, a sample issue, .gitignore."""
    from .editor.starter import init_publication, next_steps

    made = init_publication(folder, app.now().astimezone().date(), name, language, sender)
    click.echo(f"created {display_path(made.root)}/")
    for path in made.written:
        click.echo(f"  {path.relative_to(made.root)}")
    for path in made.kept:
        click.echo(f"  {path.relative_to(made.root)} (already there, kept)")
    click.echo("\nNext:\n" + "\n".join(f"  {step}" for step in next_steps(made, str(folder))))


@cli.group()
def templates() -> None:
    """The email, text and web templates: the package's, or the project's own templates/."""


@templates.command("copy")
@click.option("--force", is_flag=True, help="Overwrite files already in templates/.")
@pass_app
def templates_copy(app: App, force: bool) -> None:
    """Copy the package's templates into the project's templates/, to change them."""
    from .editor.starter import copy_templates

    for path in copy_templates(app.config.root, force):
        click.echo(f"wrote {display_path(path)}")


@cli.command()
@click.argument("slug")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]),
              help="Date of the issue (default: today in the configured time zone).")
@pass_app
def new(app: App, slug: str, on: datetime | None) -> None:
    """Scaffold issues/<date>-<SLUG>/, numbered after the latest issue."""
    from .editor.scaffold import new_issue

    folder = new_issue(slug, app.config, on.date() if on else app.today())
    click.echo(f"created {display_path(folder)}/")
    for path in sorted(folder.iterdir()):
        click.echo(f"  {path.name}{'/' if path.is_dir() else ''}")


@cli.command()
@click.argument("issue")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the build (default: build/ beside newsletter.toml).")
@pass_app
def build(app: App, issue: str, out: Path | None) -> None:
    """Build ISSUE into build/<folder>/: email.html, email.txt, email.mjml, assets/."""
    from .editor.build import build_issue

    result = build_issue(app.issue_folder(issue), app.config, out)
    _echo(result.summary())
    finding = result.size_finding()
    if finding and finding.severity == "error":
        raise PipelineError(finding.message, path=finding.path)
    if finding:
        click.echo(finding.as_finding(), err=True)


@cli.command()
@click.argument("issue")
@click.option("--strict", is_flag=True, help="Warnings fail the check too.")
@click.option("--json", "as_json", is_flag=True, help="The findings as a JSON list.")
@click.option("--online", is_flag=True, help="Also check every external link (HEAD/GET).")
@pass_app
def check(app: App, issue: str, strict: bool, as_json: bool, online: bool) -> None:
    """Lint ISSUE's content and output; exit 1 on errors (or warnings with --strict)."""
    import json

    from .editor.check import check_issue

    findings = check_issue(app.issue_folder(issue), app.config, online=online)
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if as_json:
        click.echo(json.dumps([{"path": f.path, "line": f.line, "severity": f.severity,
                                "message": f.message} for f in findings],
                              ensure_ascii=False, indent=2))
    else:
        for finding in findings:
            click.echo(finding.as_finding())
        click.echo(f"{errors} errors, {warnings} warnings", err=True)
    if errors or (strict and warnings):
        raise click.exceptions.Exit(ExitStatus.ERROR)


@cli.command()
@click.argument("issue")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--open/--no-open", "open_browser", default=None,
              help="Open the page in a browser (default: when run from a terminal).")
@click.option("--screenshot", "screenshot_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write PNGs of the email at 375 and 600 px to this folder, and exit.")
@pass_app
def preview(app: App, issue: str, host: str, port: int, open_browser: bool | None,
            screenshot_dir: Path | None) -> None:
    """Serve ISSUE with live reload: desktop, mobile, plain text, and the check's findings."""
    from .editor.preview import run_preview, screenshot_issue

    folder = app.issue_folder(issue)
    if screenshot_dir:
        for path in screenshot_issue(folder, app.config, app.env, host, screenshot_dir):
            click.echo(f"wrote {display_path(path)}")
        return
    if open_browser is None:
        open_browser = sys.stdout.isatty()
    run_preview(folder, app.config, app.env, host, port, open_browser, app.log)


# --- audience ------------------------------------------------------------------------


@cli.group()
def audience() -> None:
    """The subscriber list, kept in the database."""


def _encoding_option(ctx, param, value: str | None) -> str | None:
    from .audience.csv_text import known_encoding

    try:
        return value if value is None else known_encoding(value) and value
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _map_option(ctx, param, value: str | None) -> dict[str, str]:
    from .audience.csv_formats import parse_mapping

    try:
        return parse_mapping(value or "")
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@audience.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--encoding", metavar="NAME", callback=_encoding_option,
              help="The file's encoding (e.g. cp1252, big5), when it is not one that is "
                   "detected: UTF-8, UTF-16 and UTF-32 with a BOM, GB18030.")
@click.option("--map", "mapping", metavar="email=COLUMN,name=COLUMN", callback=_map_option,
              help="Which columns hold the address and the name (matched ignoring case).")
@pass_app
def audience_import(app: App, file: Path, encoding: str | None,
                    mapping: dict[str, str]) -> None:
    """Import FILE.csv: a header naming the columns (email, name and any others) and a
    reader a row; or an export of Mailchimp, Substack, Buttondown or listmonk, whose
    readers who left are imported unsubscribed. The whole file, or nothing if any line is
    broken."""
    from .audience.csv_files import import_csv

    report = import_csv(app.db(), file, app.now(), encoding, mapping)
    for problem in report.warnings:
        click.echo(problem.as_finding(), err=True)
    if report.unshown_warnings:
        click.echo(f"{display_path(file)}: {report.unshown_warnings} more warnings like these "
                   "(the summary counts them)", err=True)
    click.echo(report.summary())


@audience.command("add")
@click.argument("email")
@click.option("--name", default="", help="The reader's name, for the greeting.")
@pass_app
def audience_add(app: App, email: str, name: str) -> None:
    """Add one subscriber (or update their name)."""
    from .audience.queries import add

    outcome = add(app.db(), email, name, app.now())
    click.echo(f"{email}: {outcome.replace('_', ' ')}")


@audience.command("remove")
@click.argument("email")
@pass_app
def audience_remove(app: App, email: str) -> None:
    """Mark EMAIL unsubscribed; the row and its history are kept."""
    from .audience.queries import unsubscribe

    changed = unsubscribe(app.db(), email, app.now(), "operator")
    click.echo(f"{email}: {'unsubscribed' if changed else 'was already unsubscribed'}")


@audience.command("list")
@click.option("--status", type=click.Choice(["active", "unsubscribed", "suppressed", "all"]),
              default="active", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON list, for scripts.")
@pass_app
def audience_list(app: App, status: str, as_json: bool) -> None:
    """List subscribers."""
    import json

    from .audience.queries import subscribers

    rows = subscribers(app.db(), status)
    if as_json:
        click.echo("[", nl=False)
        for n, sub in enumerate(rows):
            click.echo(("," if n else "") + json.dumps(sub.as_json(), ensure_ascii=False),
                       nl=False)
        click.echo("]")
        return
    for sub in rows:
        click.echo(sub.line())


@audience.command("count")
@pass_app
def audience_count(app: App) -> None:
    """How many subscribers, by status."""
    from .audience.queries import count

    counts = count(app.db())
    click.echo(f"{counts['active']} active, {counts['unsubscribed']} unsubscribed, "
               f"{counts['suppressed']} suppressed, {counts['all']} in all")


@audience.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8", lazy=False))
@pass_app
def audience_export(app: App, file) -> None:
    """Write every subscriber to FILE.csv (- for standard output), with status and custom
    columns; cells a spreadsheet would run as formulas are written as text."""
    from .audience.csv_files import export_csv

    written = export_csv(app.db(), file)
    where = "standard output" if file.name == "<stdout>" else display_path(file.name)
    click.echo(f"wrote {written} subscribers to {where}", err=file.name == "<stdout>")


@audience.command("unsubscribe")
@click.argument("token_or_email")
@pass_app
def audience_unsubscribe(app: App, token_or_email: str) -> None:
    """Unsubscribe the reader a TOKEN (from an unsubscribe mail's subject) or EMAIL names."""
    from .audience.queries import address_of, unsubscribe_address

    db = app.db()
    email = address_of(db, token_or_email, app.config)
    unsubscribe_address(db, email, app.now(), "mailto")
    click.echo(f"{email}: unsubscribed")


@audience.command("sync")
@pass_app
@needs("SENDGRID_API_KEY")
def audience_sync(app: App) -> None:
    """Pull SendGrid's unsubscribes, bounces, blocks, invalid addresses and spam reports."""
    from .delivery.suppressions import sync_suppressions

    report = sync_suppressions(app.db(), app.config, app.now())
    for kind, (listed, added) in report.items():
        click.echo(f"{kind}: {listed} listed, {added} new")


# --- db ------------------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """The database's schema: SQLite file or PostgreSQL URL (`database`)."""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply the migrations the database has not had (any command applies them too)."""
    from .store import connect, migrate, shown

    db = connect(app.config.database, app.config.database_wait.total_seconds(), upgrade=False)
    try:
        applied = migrate(db)
        version = db.version()
    finally:
        db.close()
    for migration in applied:
        click.echo(f"applied {migration.number}: {migration.what}")
    click.echo(f"{shown(app.config.database)}: schema version {version}, up to date")


@db_group.command("status")
@pass_app
def db_status(app: App) -> None:
    """The schema's version, and the migrations `db upgrade` would apply."""
    from .store import connect, pending_migrations, shown

    db = connect(app.config.database, app.config.database_wait.total_seconds(), upgrade=False)
    try:
        version, pending = db.version(), pending_migrations(db)
    finally:
        db.close()
    state = f"{len(pending)} to apply" if pending else "up to date"
    click.echo(f"{shown(app.config.database)}: schema version {version}, {state}")
    for migration in pending:
        click.echo(f"  {migration.number}: {migration.what}")
    if pending:
        click.echo("`newsletter db upgrade` applies them (so does any command that uses the "
                   "database)")


# --- publish -------------------------------------------------------------------------


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("site"),
              show_default=True, help="Folder for the static site.")
@pass_app
def publish(app: App, out: Path) -> None:
    """Build the web archive: a page per published issue, an index, an Atom feed."""
    from .archive.site import publish_site

    report = publish_site(app.config, out)
    click.echo(f"published {len(report.issues)} issues to {display_path(report.out)}/")
    for slug in report.issues:
        click.echo(f"  {slug}/")


@cli.command()
@click.argument("issue")
@click.option("--format", "fmt", type=click.Choice(["jekyll"]), default="jekyll",
              show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The blog's folder (holding _posts/).")
@pass_app
def export(app: App, issue: str, fmt: str, out: Path) -> None:
    """Write ISSUE as a post for an existing blog (Jekyll: _posts/*.html and assets/).

    The post's body is the archive page's HTML, with Liquid in the content shown as
    text and images under the blog's baseurl."""
    from .archive.jekyll import export_jekyll
    from .issue import read_issue

    post = export_jekyll(read_issue(app.issue_folder(issue), app.config), app.config, out)
    click.echo(f"wrote {display_path(post.path)}")
    if post.replaced:
        click.echo(f"removed {display_path(post.replaced)} (an earlier export, now HTML)")


# --- serve ---------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@pass_app
@needs("NEWSLETTER_SECRET")
def serve(app: App, host: str, port: int) -> None:
    """Answer unsubscribe links (one-click POST and the page) behind your reverse proxy."""
    from .web.server import run_server

    run_server(app.config, app.clock, host, port, app.log)


# --- send ----------------------------------------------------------------------------


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
    from .delivery.due import run_due
    from .delivery.providers import make_provider
    from .delivery.signals import stop_on_signals
    from .editor.check import send_blockers

    config = app.config
    with stop_on_signals() as stop:
        rt = app.runtime(stop)  # the real clock: the ledger's times, each message's Date
        as_of = None
        if now_text:
            from .delivery.schedule import parse_time

            as_of = parse_time(now_text, config)
            app.clock = lambda: as_of  # what is due, and the log's stamps
        status = run_due(config, lambda: make_provider(name, config), rt,
                         on_report=lambda report: _print_report(report, config),
                         gate=send_blockers, now=as_of)
    raise click.exceptions.Exit(status)


def _send_test(app: App, folder: Path, name: str, addresses: tuple[str, ...]) -> None:
    from .delivery.providers import make_provider
    from .delivery.send import send_test

    results = send_test(folder, app.config, make_provider(name, app.config), list(addresses),
                        app.runtime())
    for address, outcome in results:
        click.echo(f"test to {address}: {outcome.status} ({name}: "
                   f"{outcome.message_id or outcome.error})")
    if any(outcome.status != "sent" for _, outcome in results):
        raise click.exceptions.Exit(ExitStatus.PARTIAL)


def _send_audience(app: App, folder: Path, name: str, dry_run: bool, yes: bool,
                   resend_unknown: bool, resend_failed: bool, force: bool) -> None:
    from .delivery.due import send_now
    from .delivery.providers import make_provider
    from .delivery.send import plan_send
    from .delivery.signals import stop_on_signals
    from .editor.check import send_blockers

    plan = plan_send(folder, app.config, name, app.now())
    if dry_run:
        click.echo(f"provider: {plan.provider}")
        click.echo(f"recipients: {plan.recipients}"
                   + (f" (already sent: {plan.already_sent})" if plan.already_sent else ""))
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
    from .delivery.schedule import parse_time, schedule_issue

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

    from .delivery.schedule import issue_states

    folders = [app.issue_folder(issue)] if issue else None
    states = issue_states(app.config, folders, app.now(), list_unknown=bool(issue))
    if as_json:
        click.echo(json.dumps([s.as_json() for s in states], ensure_ascii=False, indent=2))
        return
    for state in states:
        _echo(state.summary())


@cli.command()
@click.option("--check", is_flag=True,
              help="Run the line once, as cron would (env -i, /bin/sh), and report.")
@click.option("--systemd", is_flag=True, help="Print a systemd service and timer instead.")
@pass_app
def cron(app: App, check: bool, systemd: bool) -> None:
    """Print the crontab line that sends due issues every five minutes."""
    from .config import ENV_FILE
    from .delivery.cron import cron_line, missing_under_cron, run_as_cron, systemd_units

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


def _echo(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


def main() -> None:
    cli(prog_name="newsletter")
