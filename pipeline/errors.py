"""One error family for everything a user can cause.

Every problem carries a path and, where it is known, a line, and prints as
``path:line: message``. Bugs are not caught: they keep their traceback.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import click


class ExitStatus(IntEnum):
    """Exit statuses that scripts and cron can tell apart."""

    OK = 0
    ERROR = 1  # bad input: an issue folder, a CSV, a command line
    USAGE = 2  # click's own usage errors
    PARTIAL = 3  # a send finished with some recipients failed
    CONFIG = 4  # newsletter.toml or the environment is wrong


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"

    def as_finding(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


class PipelineError(click.ClickException):
    """A problem the user can fix. Prints ``path:line: message`` and exits non-zero."""

    exit_code = ExitStatus.ERROR

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.problems = [Problem(self.path or "newsletter", line, message)]
        super().__init__(str(self.problems[0]) if self.path else message)

    def show(self, file=None) -> None:  # no "Error: " prefix: the message says where
        click.echo(self.format_message(), err=True, file=file)


class ProblemsError(PipelineError):
    """Several problems found in one run; all of them are shown."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.path, p.line or 0))
        first = self.problems[0]
        self.path, self.line = first.path, first.line
        click.ClickException.__init__(self, "\n".join(str(p) for p in self.problems))

    @classmethod
    def one(cls, path: str | Path, message: str, line: int | None = None):
        return cls([Problem(str(path), line, message)])


class IssueError(ProblemsError):
    """An issue folder that cannot be read or built."""


class ConfigError(ProblemsError):
    exit_code = ExitStatus.CONFIG


class DeliveryError(PipelineError):
    """A provider refused a request in a way that retrying cannot fix.

    ``done`` holds the outcomes of the batch's messages handled before it, in the
    batch's order (delivered or refused); a message past its end, or whose outcome is
    None, was not sent."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None,
                 done: Sequence[object] = ()):
        super().__init__(message, path, line)
        self.done = list(done)


class CredentialsError(DeliveryError):
    """The provider refused our credentials (an API key, a login, a certificate): a
    configuration error (exit 4), said before anyone is marked."""

    exit_code = ExitStatus.CONFIG


class DeliveryStopped(DeliveryError):
    """Delivery cannot go on (the outbox cannot be written: disk full, read-only): the run
    stops, the readers not yet delivered stay pending. The send is partial (exit 3)."""

    exit_code = ExitStatus.PARTIAL


class Problems:
    """Collects problems so that a whole folder is reported in one run."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str | Path, line: int | None, message: str, severity: str = "error"):
        self.items.append(Problem(str(path), line, message, severity))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    def raise_if_any(self, error_type: type[ProblemsError] = IssueError) -> None:
        if self.errors:
            raise error_type(self.errors)


def display_path(path: str | Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it,
    printable (a name's control characters shown escaped, never acted on)."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    return _displayed(str(path), cwd)


@functools.lru_cache(maxsize=4096)
def _displayed(path: str, cwd: str) -> str:
    """display_path, once per path and working folder (a read asks for the same few
    paths hundreds of times, and each answer resolves links on the disk)."""
    try:
        return printable(str(Path(path).resolve().relative_to(Path(cwd).resolve())))
    except (ValueError, OSError):
        return printable(path)


# Bidirectional overrides reorder what a terminal shows ("Trojan source")
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNPRINTABLE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")


def printable(text: str) -> str:
    """text with control characters, bidi overrides and undecodable bytes escaped:
    ``cr\\r\\nlf``, ``bad\\xff``."""
    return _UNPRINTABLE.sub(lambda m: escaped(m[0]), text) if _UNPRINTABLE.search(text) else text


def escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape of one byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    named = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}.get(char)
    return named or (f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` when a close choice exists, else the empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class listening:
    """``with listening(host, port):`` binding a server; a port that cannot be bound is
    the user's to change, not a traceback."""

    def __init__(self, host: str, port: int):
        self.where = f"{host}:{port}"

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is not None and issubclass(kind, OSError):
            raise PipelineError(f"cannot listen on {self.where}: {error.strerror or error}; "
                                "choose another --port or --host") from None
