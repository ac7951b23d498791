"""outbox: each message as an .eml file under the outbox path. No account needed."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ..personalise import Message
from . import SENT, Outcome, Provider


class OutboxProvider(Provider):
    name = "outbox"
    batch_size = 200

    def __init__(self, config):
        super().__init__(config)
        self.root = config.outbox.path

    def send(self, messages: Sequence[Message], now: datetime) -> list[Outcome]:
        outcomes = []
        for message in messages:
            path = self.path_for(message, now)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(message.as_bytes(now))
            os.replace(temporary, path)  # a crash never leaves half a message
            outcomes.append(Outcome(SENT, message_id=str(path.relative_to(self.root))))
        return outcomes

    def path_for(self, message: Message, now: datetime) -> Path:
        safe = re.sub(r"[^A-Za-z0-9@._+-]", "_", message.recipient.email)
        folder = self.root / message.prepared.slug
        if message.prepared.test:
            return folder / f"test-{now:%Y%m%dT%H%M%S}-{safe}.eml"
        return folder / f"{message.recipient.id:07d}-{safe}.eml"


PROVIDER = OutboxProvider
