"""Progress of a send: a bar on a terminal, one log line per batch under cron."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


class Progress:
    def __init__(self, label: str, total: int, tty: bool, write: Callable[[str], None],
                 timer: Callable[[], float] = time.monotonic):
        self.label, self.total, self.tty, self.write, self.timer = label, total, tty, write, timer
        self.start = timer()
        self.batches = 0

    def __call__(self, done: int, outcomes: Mapping[str, int]) -> None:
        """``done`` recipients handled by this run so far; ``outcomes`` what became of
        them, by status (sent, failed, invalid, unknown, skipped)."""
        self.batches += 1
        elapsed = max(self.timer() - self.start, 1e-9)
        rate = done / elapsed
        left = (self.total - done) / rate if rate and self.total > done else 0
        tally = ", ".join(f"{status} {outcomes.get(status, 0):,}" for status in
                          ("sent", "failed", "invalid", "unknown"))
        if self.tty:
            width = 30
            filled = int(width * done / self.total) if self.total else width
            self.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                       f"{done:,}/{self.total:,}  {tally}  {rate:,.0f}/s  {left:,.0f}s left   ")
        else:
            self.write(f"{self.label}: batch {self.batches}: {done:,}/{self.total:,} "
                       f"handled ({rate:,.0f}/s): {tally}\n")

    def finish(self) -> None:
        if self.tty and self.batches:
            self.write("\n")


def progress_for(tty: bool, echo: Callable[[str], None], log: Callable[[str], None]
                 ) -> Callable[[str, int], Progress]:
    """A bar redrawn in place on a terminal (``echo`` writes as it is); under cron a
    time-stamped log line per batch."""
    def progress(label: str, total: int) -> Progress:
        return Progress(label, total, tty, echo if tty else
                        (lambda text: log(text.rstrip("\n"))))
    return progress
