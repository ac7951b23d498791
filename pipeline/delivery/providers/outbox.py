"""outbox: each message as an .eml file under the outbox path. No account needed."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ...errors import DeliveryStopped, display_path
from ..personalise import Message
from . import SENT, Outcome, Provider

NAME_PART = 64  # characters of the address a file name shows at most


class OutboxProvider(Provider):
    name = "outbox"
    batch_size = 200

    def __init__(self, config):
        super().__init__(config)
        self.root = config.outbox.path

    def send(self, messages: Sequence[Message], now: datetime,
             encoded: object = None) -> list[Outcome]:
        """Each message written whole (a temporary file renamed into place) or not at all.
        A write that fails (disk full, read-only folder) stops the run: the messages
        written are the outcomes so far, the rest stay pending."""
        outcomes: list[Outcome] = []
        for message in messages:
            path = self.path_for(message, now)
            temporary = partial_path(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary.write_bytes(message.as_bytes(now))
                os.replace(temporary, path)  # a crash never leaves half a message
            except OSError as exc:
                try:
                    temporary.unlink(missing_ok=True)
                except OSError:
                    pass
                raise DeliveryStopped(
                    f"cannot write the message ({exc.strerror or exc}); the run stops and the "
                    "readers not written stay pending: make room or fix the folder, then "
                    "send again", path=display_path(path), done=outcomes) from None
            outcomes.append(Outcome(SENT, message_id=str(path.relative_to(self.root))))
        return outcomes

    def path_for(self, message: Message, now: datetime) -> Path:
        folder = self.root / message.prepared.slug
        if message.prepared.test:
            return folder / f"test-{now:%Y%m%dT%H%M%S}-{file_part(message.recipient.email)}.eml"
        return folder / message_file(message.recipient.id, message.recipient.email)


def message_file(subscriber_id: int, email: str) -> str:
    """The .eml file of a reader: their id (unique), then their address to be readable."""
    return f"{subscriber_id:07d}-{file_part(email)}.eml"


def file_part(email: str) -> str:
    """The address as part of a file name: safe characters only, and never longer than
    NAME_PART whatever the address (a long one is cut and ends in a hash of the whole)."""
    safe = re.sub(r"[^A-Za-z0-9@._+-]", "_", email)
    if len(safe) <= NAME_PART:
        return safe
    digest = hashlib.sha256(email.encode("utf-8")).hexdigest()[:10]
    return f"{safe[:NAME_PART - 11]}~{digest}"


def partial_path(path: Path) -> Path:
    """Where a message is written before it is renamed into place."""
    return path.with_name(path.name + ".part")


PROVIDER = OutboxProvider
