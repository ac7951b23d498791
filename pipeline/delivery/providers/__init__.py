"""Providers deliver messages; they never render or personalise.

One interface (Django's mail backends are the model): ``open()``, ``close()``, a
context manager, and ``send(messages) -> outcomes``, one outcome per message, in order;
``encode(messages)`` may make a request's body ahead of ``send``.
Misconfiguration fails at construction, not at the first send.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ...config import PROVIDERS, Config
from ...errors import ConfigError
from ..personalise import Message

SENT, FAILED, RETRY, UNKNOWN = "sent", "failed", "retry", "unknown"
DEFERRED = "deferred"


@dataclass(frozen=True)
class Outcome:
    # sent | failed (refused for good: this reader only) | retry (not delivered: the
    # provider could not take the request; safe to retry soon) | deferred (not delivered:
    # the server asked to try this reader later, a 4xx; a later run does) | unknown
    status: str
    message_id: str = ""
    error: str = ""
    retry_after: float | None = None  # seconds the provider asked us to wait


class Provider:
    name = "provider"
    batch_size = 100
    concurrency = 1  # requests in flight unless [delivery] concurrency says otherwise

    def __init__(self, config: Config):
        self.config = config

    def worker(self) -> Provider:
        """Another provider like this one, for a thread of its own (its own connection
        or HTTP client): requests in flight never share one."""
        return type(self)(self.config)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Provider:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def encode(self, messages: Sequence[Message]) -> object:
        """The request for these messages made ahead, or None (``send`` makes it). The
        send loop calls this between its claims, so that the threads sending requests
        only wait on the network: Python runs one thread at a time, and a sender busy
        encoding 1,000 readers would hold up the loop's next claim."""
        return None

    def send(self, messages: Sequence[Message], now: datetime,
             encoded: object = None) -> list[Outcome]:
        """One outcome per message, in order; ``encoded``: what ``encode`` made of
        exactly these messages."""
        raise NotImplementedError


def make_provider(name: str, config: Config) -> Provider:
    if name not in PROVIDERS:
        raise ConfigError.one(str(config.path.name), f"unknown provider '{name}'; use one of: "
                                                     f"{', '.join(PROVIDERS)}")
    module = importlib.import_module(f".{name}", __name__)
    return module.PROVIDER(config)
