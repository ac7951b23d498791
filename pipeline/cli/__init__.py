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

from ..config import Config, load_config
from ..errors import ExitStatus, PipelineError, display_path


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
        from ..delivery.progress import progress_for
        from ..delivery.send import Runtime

        progress = progress_for(sys.stderr.isatty(),
                                lambda text: click.echo(text, err=True, nl=False), self.log)
        # a real sleep becomes the stop's wait, which a signal ends at once: a backoff
        # never holds a stopping send (a sleep a test injects is kept as it is)
        sleep = getattr(stop, "wait", self.sleep) if self.sleep is time.sleep else self.sleep
        return Runtime(clock=self.clock, sleep=sleep, log=self.log, progress=progress,
                       stop=stop or (lambda: False))

    def issue_folder(self, name: str) -> Path:
        from ..issue import resolve_issue_path

        return resolve_issue_path(name, self.config)

    def db(self):
        from ..store import connect

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
        from ..store import database_errors, database_problem, is_busy, shown

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
        from ..editor.starter import project_config

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
    from ..editor.starter import init_publication, next_steps

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
    from ..editor.starter import copy_templates

    for path in copy_templates(app.config.root, force):
        click.echo(f"wrote {display_path(path)}")


@cli.command()
@click.argument("slug")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]),
              help="Date of the issue (default: today in the configured time zone).")
@pass_app
def new(app: App, slug: str, on: datetime | None) -> None:
    """Scaffold issues/<date>-<SLUG>/, numbered after the latest issue."""
    from ..editor.scaffold import new_issue

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
    from ..editor.build import build_issue

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

    from ..editor.check import check_issue, count_findings, summarise

    findings = check_issue(app.issue_folder(issue), app.config, online=online)
    errors, warnings = count_findings(findings)
    if as_json:
        click.echo(json.dumps([{"path": f.path, "line": f.line, "severity": f.severity,
                                "message": f.message} for f in findings],
                              ensure_ascii=False, indent=2))
    else:
        for finding in findings:
            click.echo(finding.as_finding())
        click.echo(summarise(findings), err=True)
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
    from ..editor.preview import run_preview, screenshot_issue

    folder = app.issue_folder(issue)
    if screenshot_dir:
        for path in screenshot_issue(folder, app.config, app.env, host, screenshot_dir):
            click.echo(f"wrote {display_path(path)}")
        return
    if open_browser is None:
        open_browser = sys.stdout.isatty()
    run_preview(folder, app.config, app.env, host, port, open_browser, app.log)


@cli.command()
@click.argument("base", required=False)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("review"), show_default=True,
              help="Folder for the reports and screenshots.")
@click.option("--no-screenshots", "no_screenshots", is_flag=True,
              help="The reports only (no Chromium).")
@pass_app
def review(app: App, base: str | None, out: Path, no_screenshots: bool) -> None:
    """Report every issue changed since BASE, for a pull request: subject, size, check,
    audience, the text's changes, screenshots (600/375 px, light/dark).

    BASE defaults to the merge base with [review] base_branch (main)."""
    from ..editor.review import review_changes

    commit, reviews = review_changes(app.config, base, out, not no_screenshots)
    click.echo(f"reviewed {len(reviews)} issues changed since {commit[:12]}: "
               f"{display_path(out)}/report.md")
    for item in reviews:
        click.echo(f"  {display_path(item.folder)}")


# --- publish -------------------------------------------------------------------------


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("site"),
              show_default=True, help="Folder for the static site.")
@pass_app
def publish(app: App, out: Path) -> None:
    """Build the web archive: a page per published issue, an index, an Atom feed."""
    from ..archive.site import publish_site

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
    from ..archive.jekyll import export_jekyll
    from ..issue import read_issue

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
    """Answer unsubscribe links (one-click POST and the page) and signups (POST /subscribe,
    the confirmation link, the welcome issue) behind your reverse proxy."""
    from ..web.server import run_server

    run_server(app.config, app.clock, host, port, app.log)


def _echo(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


# the command groups of their own modules register themselves on cli
from . import readers, schema, sending  # noqa: E402,F401


def main() -> None:
    cli(prog_name="newsletter")
