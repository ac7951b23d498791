"""sendgrid: the official client, v3 mail send, up to 1000 personalizations a request.

The body is built as plain dicts: one copy of the HTML and text (with placeholders) per
request, and per recipient only the substitutions and headers that differ. The key
comes from SENDGRID_API_KEY only; the API host is configurable (EU host, local tests).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Sequence
from datetime import datetime
from html import escape
from http.client import HTTPException
from json.encoder import encode_basestring_ascii

from ...audience.addresses import display_name
from ...audience.tokens import REF_BYTES
from ...errors import CredentialsError, DeliveryError
from ..personalise import Message, PreparedEmail, Recipient
from . import FAILED, RETRY, SENT, UNKNOWN, Outcome, Provider
from .keepalive import kept_alive

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
    kept_alive(client)
    client.client.timeout = config.sendgrid.timeout
    return client


class SendGridProvider(Provider):
    name = "sendgrid"
    concurrency = 16  # requests in flight: each waits a round trip (~150 ms)

    def __init__(self, config):
        super().__init__(config)
        settings = config.sendgrid
        self.client = sendgrid_client(config)
        self.settings = settings
        self.batch_size = settings.batch_size
        # per edition prepared, what _prepared makes: editions alternate batch by batch
        self._encoded: dict[PreparedEmail, tuple[str, _Template]] = {}

    def personalizations(self, messages: Sequence[Message]) -> str:
        """The JSON array of personalizations: per recipient only what differs (the
        address, substitutions, headers). Written as text: the links and headers that
        carry the reader's token are the token between JSON made once per edition
        (``_Template``), and only the reader's own values (address, name, fields) are
        encoded, each by json's own string encoder: 3 µs a reader where dicts and
        json.dumps took 31."""
        template = self._prepared(messages[0].prepared)[1]
        out = []
        for message in messages:
            token, recipient = message.token, message.recipient
            values = message.values if template.fields else None
            name = display_name(recipient.name)
            to = (_NOT_IN_NAMES.sub(" ", name) if _NOT_IN_NAMES.search(name) else name).strip()
            part = ['{"to":[{"email":', _str(recipient.email)]
            if to:  # SendGrid refuses a name with ; or ,
                part += ',"name":', _str(to)
            part.append('}],"substitutions":{')
            for key, field, fallback, html, pieces in template.slots:
                if pieces is not None:  # a link: the same for everyone but the token
                    part += key, token.join(pieces)
                    continue
                if field == "name":
                    value = name
                elif field == "email":
                    value = recipient.email
                else:
                    value = values.get(field, "")  # type: ignore[union-attr]
                if not value:
                    value = fallback
                elif html and _MARKUP.search(value):
                    value = escape(value)  # most values need no escaping
                part += key, _str(value)
            part += '},"headers":{', token.join(template.headers)
            part += '},"custom_args":{"subscriber":"', str(int(recipient.id)), '"}}'
            out.append("".join(part))
        return f"[{','.join(out)}]"

    def _prepared(self, prepared: PreparedEmail) -> tuple[str, _Template]:
        """What every request of this edition shares, encoded once: the shared part as
        JSON without its closing brace, and the personalizations' template."""
        if prepared not in self._encoded:
            self._encoded[prepared] = (_json(self.shared(prepared))[:-1], _Template(prepared))
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

    def encode(self, messages: Sequence[Message]) -> bytes:
        """The request body: JSON, ASCII only. The shared part (the whole email) is
        encoded once per issue; each request adds only its personalizations."""
        return (self._prepared(messages[0].prepared)[0] + ',"personalizations":'
                + self.personalizations(messages) + "}").encode("ascii")

    def close(self) -> None:
        self.client.client.connection.close()

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
                request_body=Body(body if isinstance(body, bytes) else self.encode(messages)),
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


class _Template:
    """A personalization of one edition as JSON text, but for what each reader has of
    their own. Every distinct slot once, in a fixed order: (its substitution key as JSON
    between a comma and a colon, field, fallback, HTML?, and for a value made of the
    reader's token and constant text — a link — the JSON pieces that the token joins;
    None for a reader's own value). ``headers``: the per-reader headers likewise.

    Which values are links is asked of the edition itself: a reader's values and
    headers are made with a token no text contains, and the values that contain it
    are the token's (a reader's fields never replace them: PreparedEmail.values)."""

    def __init__(self, prepared: PreparedEmail):
        mark = "tok" + secrets.token_hex(16)  # letters and digits: JSON and HTML keep it
        reader = Recipient(0, "reader@example.com", ref=bytes(REF_BYTES))
        values = prepared.values(reader, mark)
        keyed = {(placeholder, name, fallback, True)
                 for placeholder, name, fallback in prepared.html.slots}
        keyed |= {(TEXT_KEY + placeholder[2:], name, fallback, False)
                  for placeholder, name, fallback in prepared.text.slots}
        self.slots: list[tuple[str, str, str, bool, list[str] | None]] = []
        for key, field, fallback, html in sorted(keyed):
            value = values.get(field, "")
            pieces = None
            if mark in value:
                pieces = _str(escape(value) if html and _MARKUP.search(value) else value)
                pieces = pieces.split(mark)
            self.slots.append(("," + _str(key) + ":", field, fallback, html, pieces))
        if self.slots:  # the first: no comma before
            self.slots[0] = (self.slots[0][0][1:], *self.slots[0][1:])
        # whether a slot needs the reader's fields (beyond their name and address)
        self.fields = any(p is None and f not in ("name", "email")
                          for _, f, _, _, p in self.slots)
        headers = ",".join(f"{_str(h)}:{_str(v)}"
                           for h, v in prepared.headers(values, mark).items())
        self.headers = headers.split(mark)


class Body:
    """A request's JSON, as python_http_client takes a body it sends as it is (it calls
    ``encode``). Its bytes go as a view of them: not copied, and said in the debug
    message python_http_client writes of every body (``'PAYLOAD: {data}'.format(...)``,
    before it asks whether anyone logs at DEBUG) as ``<memory at …>``, where the repr
    of 800 KB of bytes took 5 ms of CPU a request, with the interpreter's lock held."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> memoryview:
        return memoryview(self.data)


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
