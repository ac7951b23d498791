"""What a route takes and gives: a parsed request, a response to send."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)
    body: str = ""
    raw: bytes = b""  # the body as it came (a signature covers these bytes)
    headers: dict[str, str] = field(default_factory=dict)  # by lower-case name
    client: str = ""  # the client's address (REMOTE_ADDR)
    agent: str = ""  # its User-Agent
    content_type: str = ""  # of the body, lower-cased, without parameters

    def value(self, name: str) -> str:
        """A parameter from the query string or, failing that, the form."""
        return (self.query.get(name) or self.form.get(name) or [""])[0]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()  # more headers (Retry-After)


Route = Callable[[Request], Response]
