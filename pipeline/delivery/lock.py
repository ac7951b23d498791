"""One sender at a time per SQLite database: an exclusive flock beside it.

The kernel drops the lock when its process dies, SIGKILL included, so a crash never
leaves a stale lock behind. A PostgreSQL database has no such lock: any number of runs,
on any number of machines, share its sends (``delivery.ledger`` says how)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..store import is_url


class SendLock:
    def __init__(self, database: Path | str):
        self.path = None if is_url(database) else \
            Path(database).with_name(Path(database).name + ".lock")
        self.fd: int | None = None

    def acquire(self) -> bool:
        if self.path is None:  # PostgreSQL: shared by every run
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?" if self.path else "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
