"""Stopping a send cleanly on SIGINT or SIGTERM (moved out of the CLI)."""

from __future__ import annotations

import os
import select

import click


class Stop:
    """Whether a stop was asked for (``stop()``), and a wait that a stop ends at once
    (``stop.wait(seconds)``), so that a retry's backoff never holds a stopping send.

    The wait watches a pipe that ``set()`` writes a byte to: that is safe inside a
    signal handler, where taking a lock (threading.Event.set) could deadlock the very
    thread it interrupted."""

    def __init__(self) -> None:
        self.flag = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def __call__(self) -> bool:
        return self.flag

    def set(self) -> None:
        self.flag = True
        try:
            os.write(self._write, b"!")
        except OSError:  # the pipe is full: the waiter is woken already
            pass

    def wait(self, seconds: float) -> None:
        if not self.flag:
            select.select([self._read], [], [], max(0.0, seconds))

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class stop_on_signals:
    """SIGINT or SIGTERM: finish the request in flight, record it, then stop cleanly
    (a backoff between retries ends at once). A second SIGINT interrupts at once."""

    def __enter__(self) -> Stop:
        import signal

        self.stop = Stop()
        self.signal = signal
        self.previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if self.stop() and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stop.set()
            click.echo("stopping after the batch in flight…", err=True)

        for sig in self.previous:
            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread (tests driving the CLI in a thread)
                pass
        return self.stop

    def __exit__(self, *exc):
        for sig, previous in self.previous.items():
            try:
                self.signal.signal(sig, previous)
            except ValueError:
                pass
        self.stop.close()
