"""audience sync: SendGrid's suppression lists into ours, with the reason.

Unsubscribed and suppressed addresses are excluded from every send, including a send
that resumes after they left (the ledger checks each batch when it claims it)."""

from __future__ import annotations

import json
from datetime import datetime

from ..audience.queries import suppress
from ..config import Config
from ..errors import DeliveryError
from ..store import Database, transaction

# SendGrid endpoint (under /v3/suppression/) -> our reason
KINDS = {"unsubscribes": "unsubscribe", "bounces": "bounce", "blocks": "block",
         "invalid_emails": "invalid", "spam_reports": "spam"}
PAGE = 500  # SendGrid's largest page


def sync_suppressions(db: Database, config: Config, now: datetime,
                      page_size: int = PAGE) -> dict[str, tuple[int, int]]:
    """For each kind: (addresses SendGrid listed, of which new to us)."""
    from python_http_client.exceptions import HTTPError

    from .providers.sendgrid import describe_errors, sendgrid_client

    client = sendgrid_client(config)
    report = {}
    for kind, reason in KINDS.items():
        listed = added = 0
        offset = 0
        while True:
            endpoint = getattr(client.client.suppression, kind)
            try:
                response = endpoint.get(query_params={"limit": page_size, "offset": offset})
            except HTTPError as exc:
                raise DeliveryError(f"SendGrid answered {exc.status_code} for the {kind} "
                                    f"list: {describe_errors(exc.body)}") from None
            except OSError as exc:
                raise DeliveryError(f"cannot reach SendGrid for the {kind} list: {exc}") \
                    from None
            entries = json.loads(response.body or b"[]")
            with transaction(db):
                for entry in entries:
                    email = str(entry.get("email", "")).strip().lower()
                    if not email:
                        continue
                    listed += 1
                    added += suppress(db, email, reason, "sendgrid", now)
            if len(entries) < page_size:
                break
            offset += page_size
        report[kind] = (listed, added)
    return report
