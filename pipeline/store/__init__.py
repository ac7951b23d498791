"""The database: SQLite (a file, the default) or PostgreSQL (a URL), created and
migrated by the program itself."""

from .database import (
    Database,
    connect,
    database_errors,
    database_problem,
    exists,
    is_busy,
    is_url,
    migrate,
    pending_migrations,
    shown,
    transaction,
)
from .migrations import MIGRATIONS, Migration

__all__ = ["MIGRATIONS", "Database", "Migration", "connect", "database_errors",
           "database_problem", "exists", "is_busy", "is_url", "migrate", "pending_migrations",
           "shown", "transaction"]
