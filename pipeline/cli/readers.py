"""`newsletter audience …`: the subscriber list, kept in the database."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import display_path
from . import App, cli, needs, pass_app


@cli.group()
def audience() -> None:
    """The subscriber list, kept in the database."""


def _encoding_option(ctx, param, value: str | None) -> str | None:
    from ..audience.csv_text import known_encoding

    try:
        return value if value is None else known_encoding(value) and value
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _map_option(ctx, param, value: str | None) -> dict[str, str]:
    from ..audience.csv_formats import parse_mapping

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
    from ..audience.csv_files import import_csv

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
@click.option("--language", default=None, metavar="TAG",
              help="The reader's language (en, zh-CN): the edition of a many-language "
                   "issue they get; \"\" for none.")
@pass_app
def audience_add(app: App, email: str, name: str, language: str | None) -> None:
    """Add one subscriber (or update their name and language)."""
    from ..audience.queries import add

    outcome = add(app.db(), email, name, app.now(), language)
    click.echo(f"{email}: {outcome.replace('_', ' ')}")


@audience.command("remove")
@click.argument("email")
@pass_app
def audience_remove(app: App, email: str) -> None:
    """Mark EMAIL unsubscribed; the row and its history are kept."""
    from ..audience.queries import unsubscribe

    changed = unsubscribe(app.db(), email, app.now(), "operator")
    click.echo(f"{email}: {'unsubscribed' if changed else 'was already unsubscribed'}")


@audience.command("tag")
@click.argument("email")
@click.argument("tags", nargs=-1)
@click.option("--remove", "removed", multiple=True, metavar="TAG",
              help="A tag to take off the reader (repeat for several).")
@pass_app
def audience_tag(app: App, email: str, tags: tuple[str, ...], removed: tuple[str, ...]) -> None:
    """Give the reader EMAIL these TAGS (or --remove some); issue.yaml's `audience: {tags:
    [...]}` sends an issue to the readers of a tag."""
    from ..audience.queries import tag_reader

    if not tags and not removed:
        raise click.UsageError("give TAGS to add, or --remove TAG")
    now = tag_reader(app.db(), email, list(tags), list(removed))
    click.echo(f"{email}: tags " + (", ".join(now) if now else "(none)"))


@audience.command("list")
@click.option("--status", type=click.Choice(["active", "unsubscribed", "suppressed", "all"]),
              default="active", show_default=True)
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Only readers with this tag (repeat: any of them).")
@click.option("--json", "as_json", is_flag=True, help="One JSON list, for scripts.")
@pass_app
def audience_list(app: App, status: str, tags: tuple[str, ...], as_json: bool) -> None:
    """List subscribers."""
    import json

    from ..audience.queries import checked_tags, subscribers
    from ..issue.segment import Segment

    rows = subscribers(app.db(), status, Segment(tuple(checked_tags(list(tags)))))
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
    from ..audience.queries import count

    counts = count(app.db())
    click.echo(f"{counts['active']} active, {counts['unsubscribed']} unsubscribed, "
               f"{counts['suppressed']} suppressed, {counts['all']} in all")


@audience.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8", lazy=False))
@pass_app
def audience_export(app: App, file) -> None:
    """Write every subscriber to FILE.csv (- for standard output), with status and custom
    columns; cells a spreadsheet would run as formulas are written as text."""
    from ..audience.csv_files import export_csv

    written = export_csv(app.db(), file)
    where = "standard output" if file.name == "<stdout>" else display_path(file.name)
    click.echo(f"wrote {written} subscribers to {where}", err=file.name == "<stdout>")


@audience.command("unsubscribe")
@click.argument("token_or_email")
@pass_app
def audience_unsubscribe(app: App, token_or_email: str) -> None:
    """Unsubscribe the reader a TOKEN (from an unsubscribe mail's subject) or EMAIL names."""
    from ..audience.queries import address_of, unsubscribe_address

    db = app.db()
    email = address_of(db, token_or_email, app.config)
    unsubscribe_address(db, email, app.now(), "mailto")
    click.echo(f"{email}: unsubscribed")


@audience.command("bounces")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@pass_app
def audience_bounces(app: App, file: Path) -> None:
    """Suppress the hard bounces (5.x.x) of the delivery status notifications in FILE, an
    mbox file or a Maildir folder; soft bounces (4.x.x) are counted, not suppressed."""
    from ..audience.bounces import read_bounces
    from ..errors import ExitStatus

    report = read_bounces(app.db(), file, app.now())
    for problem in report.problems:
        click.echo(problem.as_finding(), err=True)
    click.echo(report.summary())
    if report.problems:
        raise click.exceptions.Exit(ExitStatus.ERROR)


@audience.command("sync")
@pass_app
@needs("SENDGRID_API_KEY")
def audience_sync(app: App) -> None:
    """Pull SendGrid's unsubscribes, bounces, blocks, invalid addresses and spam reports."""
    from ..delivery.suppressions import sync_suppressions

    report = sync_suppressions(app.db(), app.config, app.now())
    for kind, (listed, added) in report.items():
        click.echo(f"{kind}: {listed} listed, {added} new")
