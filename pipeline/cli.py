"""The `newsletter` command: thin click commands over plain functions."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path

import click

from .config import Config, load_config
from .errors import PipelineError, display_path


class App:
    """What a command needs from outside: the config, the environment and the clock.

    Tests pass their own (``CliRunner().invoke(cli, args, obj=App(...))``), so nothing
    needs patching.
    """

    def __init__(self, config_path: Path | None = None, env: Mapping[str, str] | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.config_path = config_path
        self.env = os.environ if env is None else env
        self.clock = clock or (lambda: datetime.now(UTC))

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path, self.env)

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        zone = self.config.zone
        return self.now().astimezone(zone).date() if zone else self.now().astimezone().date()

    def issue_folder(self, name: str) -> Path:
        from .reader import resolve_issue_path

        return resolve_issue_path(name, self.config)


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="newsletter.toml to use (default: found in this folder or a parent).")
@click.version_option(package_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Write a newsletter as files in git; build, preview, check and send it."""
    if ctx.obj is None:
        ctx.obj = App(config_path)
    elif config_path:
        ctx.obj.config_path = config_path


@cli.command()
@click.argument("slug")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]),
              help="Date of the issue (default: today in the configured time zone).")
@pass_app
def new(app: App, slug: str, on: datetime | None) -> None:
    """Scaffold issues/<date>-<SLUG>/, numbered after the latest issue."""
    from .scaffold import new_issue

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
    from .build import build_issue, format_size
    from .render import GMAIL_CLIP

    result = build_issue(app.issue_folder(issue), app.config, out)
    rendered, shown = result.rendered, display_path(result.out)
    click.echo(f"built {shown}/")
    click.echo(f"  email.html  {format_size(rendered.html_size)}")
    click.echo(f"  email.txt   {format_size(len(rendered.text.encode()))}")
    click.echo(f"  assets/     {len(rendered.assets)} files")
    if result.size_verdict == "error":
        raise PipelineError(f"{format_size(rendered.html_size)} reaches Gmail's "
                            f"{GMAIL_CLIP // 1024} KB limit, where it clips the message; "
                            "shorten the issue or move items to the web version",
                            path=f"{shown}/email.html")
    if result.size_verdict == "warning":
        click.echo(f"{shown}/email.html: warning: {format_size(rendered.html_size)} is close "
                   f"to Gmail's {GMAIL_CLIP // 1024} KB clipping limit", err=True)


def main() -> None:
    cli(prog_name="newsletter")
