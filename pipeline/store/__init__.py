"""The database: SQLite today, created and migrated by the program itself."""

from .database import connect, is_busy, migrate, transaction

__all__ = ["connect", "is_busy", "migrate", "transaction"]
