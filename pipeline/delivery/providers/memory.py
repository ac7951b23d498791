"""memory: keeps every message in a list, for tests (Django's locmem backend)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..personalise import Message
from . import SENT, Outcome, Provider


class MemoryProvider(Provider):
    name = "memory"
    batch_size = 100

    def __init__(self, config, outcomes: dict[str, Outcome] | None = None):
        super().__init__(config)
        self.sent: list[tuple[str, bytes]] = []  # (address, the full MIME message)
        self.outcomes = outcomes or {}  # an address's scripted outcome (default: sent)

    def send(self, messages: Sequence[Message], now: datetime,
             encoded: object = None) -> list[Outcome]:
        results = []
        for message in messages:
            outcome = self.outcomes.get(message.recipient.email)
            if outcome is None or outcome.status == SENT:
                self.sent.append((message.recipient.email, message.as_bytes(now)))
            results.append(outcome or Outcome(SENT, message_id=message.message_id))
        return results


PROVIDER = MemoryProvider
