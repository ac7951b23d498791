"""sendgrid: the official client, v3 mail send, up to 1000 personalizations a request.

The body is built as plain dicts: one copy of the HTML and text (with placeholders) per
request, and per recipient only the substitutions and headers that differ. The key
comes from SENDGRID_API_KEY only; the API host is configurable (EU host, local tests).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from datetime import datetime
from html import escape
from http.client import HTTPException
from json.encoder import encode_basestring_ascii

from ...errors import CredentialsError, DeliveryError
from ..personalise import Message, PreparedEmail
from . import FAILED, RETRY, SENT, UNKNOWN, Outcome, Provider

GIVE_UP_AT = 16  # parts of a batch all refused without a field named: the request is wrong
TEXT_KEY = "%%text:"  # the text part's placeholders get their own keys: values differ
_MARKUP = re.compile(r"[&<>\"']")  # what html.escape changes
_NOT_IN_NAMES = re.compile(r"[;,]")
# A str as a JSON string, json's own encoder (in C), all ASCII (\uXXXX escapes): a body
# of ASCII is stored one byte a character, where a single Chinese name would make the
# whole 700 KB text two (Python's str), and encodes to UTF-8 as a copy
_str = encode_basestring_ascii


def sendgrid_client(config):
    """The official client for the configured API host, with the key from the
    environment; a missing key fails here, before any request."""
    key = config.require("SENDGRID_API_KEY")
    from sendgrid import SendGridAPIClient

    # python_http_client logs every request's headers, the API key among them, at
    # DEBUG: keep that logger above DEBUG whatever the root logger's level.
    logging.getLogger("python_http_client").setLevel(logging.INFO)
    client = SendGridAPIClient(api_key=key, host=config.sendgrid.api_host)
    client.client.timeout = config.sendgrid.timeout
    return client


class SendGridProvider(Provider):
    name = "sendgrid"
    concurrency = 8  # requests in flight: each waits a round trip (~150 ms)

    def __init__(self, config):
        super().__init__(config)
        settings = config.sendgrid
        self.client = sendgrid_client(config)
        self.settings = settings
        self.batch_size = settings.batch_size
        # per edition prepared: (the shared part as JSON without its closing brace, the
        # slots as _slots_of makes them); editions alternate batch by batch
        self._encoded: dict[PreparedEmail, tuple[str, list[tuple[str, str, str, bool]]]] = {}

    def personalizations(self, messages: Sequence[Message]) -> str:
        """The JSON array of personalizations: per recipient only what differs (the
        address, substitutions, headers). Written as text, each value encoded by json's
        own string encoder: 9 µs a reader where dicts and json.dumps took 31."""
        slots = self._prepared(messages[0].prepared)[1]
        out = []
        for message in messages:
            values = message.values
            part = ['{"to":[{"email":', _str(message.recipient.email)]
            name = _NOT_IN_NAMES.sub(" ", values["name"]).strip()  # SendGrid refuses ;,
            if name:
                part += ',"name":', _str(name)
            part.append('}],"substitutions":{')
            for key, field, fallback, html in slots:
                value = values.get(field) or fallback
                if html and value is not fallback and _MARKUP.search(value):
                    value = escape(value)  # most values need no escaping
                part += key, _str(value)
            part.append('},"headers":{')
            part.append(",".join(f"{_str(header)}:{_str(value)}"
                                 for header, value in message.headers().items()))
            part += '},"custom_args":{"subscriber":"', str(int(message.recipient.id)), '"}}'
            out.append("".join(part))
        return f"[{','.join(out)}]"

    def _slots_of(self, prepared: PreparedEmail) -> list[tuple[str, str, str, bool]]:
        """Every distinct slot of the issue once, in a fixed order: (its substitution
        key as JSON between a comma and a colon, field, fallback, HTML?)."""
        slots = {(placeholder, name, fallback, True)
                 for placeholder, name, fallback in prepared.html.slots}
        slots |= {(TEXT_KEY + placeholder[2:], name, fallback, False)
                  for placeholder, name, fallback in prepared.text.slots}
        encoded = [("," + _str(key) + ":", name, fallback, html)
                   for key, name, fallback, html in sorted(slots)]
        if encoded:  # the first: no comma before
            encoded[0] = (encoded[0][0][1:], *encoded[0][1:])
        return encoded

    def _prepared(self, prepared: PreparedEmail) -> tuple[str, list]:
        """What every request of this edition shares, encoded once."""
        if prepared not in self._encoded:
            self._encoded[prepared] = (_json(self.shared(prepared))[:-1],
                                       self._slots_of(prepared))
        return self._encoded[prepared]

    def shared(self, prepared: PreparedEmail) -> dict:
        """What every request of the issue carries: sender, subject, both parts, …"""
        sender = self.config.sender
        body = {
            "from": {"email": sender.email, "name": sender.name},
            "subject": prepared.subject,
            "content": [
                {"type": "text/plain",
                 "value": prepared.text.source(lambda t: TEXT_KEY + t[2:])},
                {"type": "text/html", "value": prepared.html.source()},
            ],
            "headers": {
                **({"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
                   if prepared.list_headers else {}),
                "List-Id": f"{self.config.name} <{self.config.list_id}>",
            },
            "custom_args": {"issue": prepared.slug},
        }
        if sender.reply_to:
            body["reply_to"] = {"email": sender.reply_to}
        categories = list(self.settings.categories) + (["test"] if prepared.test else [])
        if categories:
            body["categories"] = categories[:10]
        if self.settings.asm_group_id:
            body["asm"] = {"group_id": self.settings.asm_group_id}
        if self.settings.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    def encode(self, messages: Sequence[Message]) -> str:
        """The request body as JSON text, ASCII only. The shared part (the whole email)
        is encoded once per issue; each request adds only its personalizations."""
        return (self._prepared(messages[0].prepared)[0] + ',"personalizations":'
                + self.personalizations(messages) + "}")

    def send(self, messages: Sequence[Message], now: datetime,
             encoded: object = None) -> list[Outcome]:
        """One request for the batch. SendGrid refuses a whole request for one bad
        personalization (400): the readers its errors name fail alone and the others are
        sent again at once; when it names none, the batch is halved until the bad ones
        are alone."""
        outcomes: list[Outcome | None] = [None] * len(messages)
        level = [list(range(len(messages)))]  # groups of message indices still to send
        while level:
            halves: list[list[int]] = []
            refused_all, refusal = True, None
            for group in level:
                try:
                    whole = len(group) == len(messages)  # its body may be made already
                    answer = self._request(messages if whole else [messages[i] for i in group],
                                           encoded if whole else None)
                except DeliveryError as exc:
                    exc.done = outcomes  # the parts sent before it (None: not sent)
                    raise
                if isinstance(answer, Outcome):
                    refused_all = False
                    for i in group:
                        outcomes[i] = answer
                    continue
                refusal = answer
                named, shared = _blame(answer, len(group))
                if shared or (not named and len(group) == 1):
                    for i in group:  # the request as a whole (from, content, …), or the one
                        outcomes[i] = Outcome(FAILED, error=answer.line())
                elif named:
                    refused_all = False  # the others are fine: send them again now
                    for n, error in named.items():
                        outcomes[group[n]] = Outcome(FAILED, error=error)
                    rest = [i for n, i in enumerate(group) if n not in named]
                    if rest:
                        halves.append(rest)
                else:
                    middle = len(group) // 2
                    halves += [group[:middle], group[middle:]]
            if halves and refused_all and refusal and len(level) >= GIVE_UP_AT:
                # every part refused at every level, no reader named: the request itself
                # is wrong (or a bad reader is in each part), and halving further would
                # only multiply the requests
                error = f"{refusal.line()} (every part of the batch was refused)"
                for i in (i for group in halves for i in group):
                    outcomes[i] = Outcome(FAILED, error=error)
                break
            level = halves
        assert all(outcome is not None for outcome in outcomes)
        return outcomes  # type: ignore[return-value]

    def _request(self, messages: Sequence[Message], body: object = None
                 ) -> Outcome | Refusal:
        """One POST: the outcome for every message of it, or SendGrid's 400."""
        from python_http_client.exceptions import HTTPError

        try:
            # a JSON text with this content type is sent as it is (python_http_client
            # would otherwise encode the whole body again, HTML included)
            response = self.client.client.mail.send.post(
                request_body=body if isinstance(body, str) else self.encode(messages),
                request_headers={"Content-Type": "application/json; charset=utf-8"})
        except HTTPError as exc:
            status = exc.status_code
            if status == 400:
                return Refusal(exc.body)
            error = f"SendGrid answered {status}: {describe_errors(exc.body)}"
            if status in (401, 403):
                raise CredentialsError(f"{error}; check SENDGRID_API_KEY and its permissions "
                                    "(mail send)") from None
            if status == 429 or status >= 500:
                return Outcome(RETRY, error=error, retry_after=retry_after(exc.headers))
            return Outcome(FAILED, error=error)
        except TimeoutError as exc:
            # the request went out and no answer came: SendGrid may be sending it
            return Outcome(UNKNOWN, error=f"no answer from SendGrid: {exc}")
        except (OSError, HTTPException) as exc:
            # refused, reset or closed without an answer: nothing was accepted
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError) and not isinstance(exc, TimeoutError):
                reason = f"timed out while sending: {reason}"
            return Outcome(RETRY, error=f"connection to SendGrid failed: {reason}")
        message_id = response.headers.get("X-Message-Id", "") if response.headers else ""
        return Outcome(SENT, message_id=message_id)


class Refusal:
    """SendGrid's 400 for a request: its errors, each with the field it blames."""

    def __init__(self, body: bytes | str | None):
        self.body = body
        self.errors = _errors(body) or []

    def line(self) -> str:
        return f"SendGrid answered 400: {describe_errors(self.body)}"


PERSONALIZATION = re.compile(r"^personalizations\.(\d+)(?:\.(.+))?$")


def _blame(refusal: Refusal, size: int) -> tuple[dict[int, str], bool]:
    """({index of a personalization it names: that reader's error}, whether an error
    blames the request as a whole: a field that is no one reader's)."""
    named: dict[int, list[str]] = {}
    shared = False
    for error in refusal.errors:
        field = str(error.get("field") or "")
        match = PERSONALIZATION.match(field)
        if match and int(match[1]) < size:
            where = f" (field: {match[2]})" if match[2] else ""
            message = str(error.get("message", "")).strip()
            named.setdefault(int(match[1]), []).append(message + where)
        elif field:
            shared = True
    return {n: "SendGrid answered 400: " + "; ".join(parts) for n, parts in named.items()}, shared


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))  # ASCII, like _str


def _errors(body: bytes | str | None) -> list[dict] | None:
    """The list of errors of SendGrid's error body, or None when it is not one."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        errors = json.loads(text)["errors"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
        return None
    return errors


def describe_errors(body: bytes | str | None) -> str:
    """SendGrid's error body, as a line a person can read."""
    errors = _errors(body)
    if errors is None:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        return text.strip()[:500] or "no details"
    parts = []
    for error in errors:
        part = str(error.get("message", "")).strip()
        if error.get("field"):
            part += f" (field: {error['field']})"
        parts.append(part)
    return "; ".join(parts) or "no details"


def retry_after(headers) -> float | None:
    """Seconds to wait, from X-RateLimit-Reset (unix time) or Retry-After."""
    if headers is None:
        return None
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    after = headers.get("Retry-After")
    try:
        return max(0.0, float(after)) if after else None
    except ValueError:
        return None


PROVIDER = SendGridProvider
