"""POST /webhooks/sendgrid: SendGrid's signed Event Webhook.

Untrusted until proven otherwise. In this order:

- a body over ``MAX_BODY`` is refused before it is read (413, in ``web.app``);
- the signature (ECDSA over the timestamp header and the raw body, verified with
  ``[sendgrid] webhook_public_key`` by the ``sendgrid`` package's ``EventWebhook``) must
  hold, and the timestamp must be within ``webhook_max_age`` seconds of now: a missing,
  forged or altered signature, or an old request played again, gets 403 and nothing is
  read; so does every request while no key is configured;
- a signed body that is not a JSON list of events gets 400;
- each event is stored once (``sg_event_id``), so SendGrid's retries and a replayed body
  count once; an event lacking what it needs is passed over and counted as ignored.

Answers are short plain text; nothing of the request or the configuration is echoed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime

from ..audience.events import KINDS, Event, record_events
from ..config import Config
from ..store import connect
from .routing import Request, Response

PATH = "/webhooks/sendgrid"
MAX_BODY = 1024 * 1024  # SendGrid posts batches of events of up to a few hundred KB
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


def _text(status: int, line: str) -> Response:
    return Response(status, (line + "\n").encode(), "text/plain; charset=utf-8")


def sendgrid_webhook_route(config: Config, clock: Callable[[], datetime]
                           ) -> Callable[[Request], Response]:
    from sendgrid.helpers.eventwebhook import EventWebhook

    key_text = config.sendgrid.webhook_public_key.strip()
    verifier = EventWebhook(key_text) if key_text else None  # checked by the config
    max_age = config.sendgrid.webhook_max_age

    def webhook(request: Request) -> Response:
        if request.method != "POST":
            return _text(405, "POST SendGrid's events here")
        if verifier is None:
            return _text(403, "the event webhook is off: no [sendgrid] webhook_public_key")
        signature, stamp = request.headers.get(SIGNATURE, ""), request.headers.get(TIMESTAMP, "")
        now = clock()
        if not stamp.isdigit() or abs(now.timestamp() - int(stamp)) > max_age:
            return _text(403, "missing or stale timestamp")
        try:
            payload = request.raw.decode("utf-8")
            base64.b64decode(signature, validate=True)
            valid = bool(signature) and verifier.verify_signature(payload, signature, stamp)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            valid = False
        if not valid:
            return _text(403, "signature not valid")
        try:
            items = json.loads(payload)
        except ValueError:
            return _text(400, "not JSON: SendGrid posts a JSON list of events")
        if not isinstance(items, list):
            return _text(400, "not a JSON list of events")
        events = [event for item in items if (event := read_event(item)) is not None]
        db = connect(config.database)
        try:
            report = record_events(db, events, now)
        finally:
            db.close()
        return _text(200, f"{report.line()}, {len(items) - len(events)} ignored")

    return webhook


def read_event(item: object) -> Event | None:
    """One element of SendGrid's list as an Event; None when it is not one we keep (no
    id, no address, a kind we do not count, fields of the wrong type)."""
    if not isinstance(item, dict):
        return None
    event_id, kind, email = item.get("sg_event_id"), item.get("event"), item.get("email")
    if not (isinstance(event_id, str) and event_id and isinstance(email, str) and "@" in email
            and isinstance(kind, str) and kind in KINDS):
        return None
    if kind == "bounce" and item.get("type") == "blocked":
        kind = "blocked"  # SendGrid's soft bounce: the receiving server refused for now
    stamp = item.get("timestamp")
    try:
        occurred = datetime.fromtimestamp(int(stamp), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    issue = item.get("issue")
    subscriber = item.get("subscriber")
    reason = item.get("reason") or item.get("response") or ""
    return Event(
        event_id=event_id, kind=kind, email=email.strip()[:320], occurred_at=occurred,
        source="sendgrid", issue=issue if isinstance(issue, str) and issue else None,
        subscriber_id=int(subscriber) if isinstance(subscriber, str) and subscriber.isdigit()
        and len(subscriber) < 19 else None,
        reason=reason if isinstance(reason, str) else "")
