"""The database: SQLite today, created and migrated by the program itself."""

from .database import connect, migrate, transaction

__all__ = ["connect", "migrate", "transaction"]
