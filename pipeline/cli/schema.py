"""`newsletter db …`: the database's schema, SQLite file or PostgreSQL URL."""

from __future__ import annotations

import click

from . import App, cli, pass_app


@cli.group("db")
def db_group() -> None:
    """The database's schema: SQLite file or PostgreSQL URL (`database`)."""


def _schema(app: App, change):
    """change(db) on the database as it is (no migration applied on connecting), and
    its schema version after: (what change returned, version)."""
    from ..store import connect

    db = connect(app.config.database, app.config.database_wait.total_seconds(), upgrade=False)
    try:
        return change(db), db.version()
    finally:
        db.close()


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply the migrations the database has not had (any command applies them too)."""
    from ..store import migrate, shown

    applied, version = _schema(app, migrate)
    for migration in applied:
        click.echo(f"applied {migration.number}: {migration.what}")
    click.echo(f"{shown(app.config.database)}: schema version {version}, up to date")


@db_group.command("status")
@pass_app
def db_status(app: App) -> None:
    """The schema's version, and the migrations `db upgrade` would apply."""
    from ..store import pending_migrations, shown

    pending, version = _schema(app, pending_migrations)
    state = f"{len(pending)} to apply" if pending else "up to date"
    click.echo(f"{shown(app.config.database)}: schema version {version}, {state}")
    for migration in pending:
        click.echo(f"  {migration.number}: {migration.what}")
    if pending:
        click.echo("`newsletter db upgrade` applies them (so does any command that uses the "
                   "database)")
