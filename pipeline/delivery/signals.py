"""Stopping a send cleanly on SIGINT or SIGTERM (moved out of the CLI)."""

from __future__ import annotations

import click


class stop_on_signals:
    """SIGINT or SIGTERM: finish the batch in flight, record it, then stop cleanly.
    A second SIGINT interrupts at once."""

    def __enter__(self):
        import signal

        self.flag = False
        self.signal = signal
        self.previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if self.flag and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.flag = True
            click.echo("stopping after the batch in flight…", err=True)

        for sig in self.previous:
            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread (tests driving the CLI in a thread)
                pass
        return lambda: self.flag

    def __exit__(self, *exc):
        for sig, previous in self.previous.items():
            try:
                self.signal.signal(sig, previous)
            except ValueError:
                pass
