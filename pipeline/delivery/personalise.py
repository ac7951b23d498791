"""personalise: a RenderedEmail and a Recipient become a Message, cheaply.

Everything that is the same for every recipient is prepared once per issue
(``PreparedEmail``): the parts split at their %%placeholders%%, the fixed headers, the
MIME skeleton. Per recipient, only the placeholders are filled (HTML-escaped in the HTML
part, raw in the text part), a token is signed, and a few headers are written.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from html import escape

from ..audience.addresses import display_name
from ..audience.tokens import new_ref, signer_for
from ..config import Config
from ..errors import PipelineError
from ..render import PLACEHOLDER, RenderedEmail

CRLF = "\r\n"


@dataclass(slots=True)
class Recipient:
    id: int  # the subscriber's id; 0 for a test address
    email: str
    name: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    # what the unsubscribe token signs; an address that is no reader gets a random one,
    # whose link leads to the "not valid" page
    ref: bytes = field(default_factory=new_ref, repr=False)
    edition: str = ""  # the language of the edition they get ("": the default)


class Part:
    """One part of the email, split once at its placeholders."""

    def __init__(self, source: str, constants: Mapping[str, str], html: bool):
        pieces = PLACEHOLDER.split(source)
        self.html = html
        self.literals: list[str] = []  # n + 1 literals around n slots
        self.slots: list[tuple[str, str, str]] = []  # (placeholder, field, fallback)
        literal = pieces[0]
        for i in range(1, len(pieces), 3):
            name, fallback, after = pieces[i], pieces[i + 1] or "", pieces[i + 2]
            placeholder = (f"%%{name}|{fallback}%%" if pieces[i + 1] is not None
                           else f"%%{name}%%")
            if name in constants:  # the same for everyone: filled now, once
                value = constants[name] or fallback
                literal += (escape(value) if html else value) + after
                continue
            self.literals.append(literal)
            self.slots.append((placeholder, name, fallback))
            literal = after
        self.literals.append(literal)

    def value(self, name: str, fallback: str, values: Mapping[str, str]) -> str:
        """A slot's text: the value escaped for HTML, or the fallback as written."""
        value = values.get(name, "")
        if not value:
            return fallback
        return escape(value) if self.html else value

    def fill(self, values: Mapping[str, str]) -> str:
        out = [self.literals[0]]
        for (_, name, fallback), literal in zip(self.slots, self.literals[1:], strict=True):
            out.append(self.value(name, fallback, values))
            out.append(literal)
        return "".join(out)

    def source(self, key: Callable[[str], str] = lambda placeholder: placeholder) -> str:
        """The part with its slots as placeholders (for SendGrid's substitutions)."""
        out = [self.literals[0]]
        for (placeholder, _, _), literal in zip(self.slots, self.literals[1:], strict=True):
            out.append(key(placeholder))
            out.append(literal)
        return "".join(out)


MAX_LINE = 998  # octets a line of a message may hold (RFC 5322), CRLF not counted


def header_line(name: str, value: str) -> str:
    """A header folded with CRLF (RFC 5322): ASCII at its spaces; RFC 2047 encoded-words
    when it is not ASCII, or when a word is too long to fit a line."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"a line break in the {name} header")
    if value.isascii():
        if len(name) + 2 + len(value) <= 78:
            return f"{name}: {value}{CRLF}"
        folded = f"{name}: {Header(value, 'us-ascii', header_name=name).encode(linesep=CRLF)}"
        if all(len(line) <= MAX_LINE for line in folded.split(CRLF)):
            return folded + CRLF
    return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=CRLF)}{CRLF}"


def with_query(url: str, name: str, value: str) -> str:
    """url with ``name=value`` added to its query, whatever query and fragment it has."""
    base, hashmark, fragment = url.partition("#")
    joiner = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{joiner}{name}={value}{hashmark}{fragment}"


def phrase(name: str) -> str:
    """A display name for a header: RFC 2047 encoded-words when not ASCII."""
    if "\r" in name or "\n" in name:
        raise ValueError("a line break in a name")
    if name.isascii():
        return formataddr((name, "x@x")).rpartition(" <")[0]
    return Header(name, "utf-8").encode(linesep=CRLF)


def address(name: str, email: str) -> str:
    """``Name <email>``, the name encoded (and folded, when long) by ``phrase``."""
    if "\r" in email or "\n" in email:
        raise ValueError("a line break in an address")
    return f"{phrase(name)} <{email}>" if name else email


def _b64(text: str) -> bytes:
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")


class PreparedEmail:
    """What every message of one send shares, prepared once."""

    def __init__(self, rendered: RenderedEmail, config: Config, web_url: str,
                 test: bool = False, subject_line: int | None = None,
                 list_headers: bool = True):
        """``list_headers``: False for a message that is not of the list (a signup's
        confirmation): no List-Unsubscribe, nothing to leave yet."""
        sender = config.sender
        self.list_headers = list_headers
        self.config = config
        self.slug = rendered.slug  # the id
        self.test = test
        self.subject = ("[TEST] " if test else "") + rendered.subject
        if "\r" in self.subject or "\n" in self.subject:
            raise PipelineError("the subject contains a line break; write it on one line",
                                path=rendered.source, line=subject_line)
        self.signer = signer_for(config)
        # the reader's link is prefix + token + suffix: joined once, filled per reader.
        # An issue's link names the issue too (not a secret: `stats` counts who left from it)
        unsubscribe = with_query(config.unsubscribe_url, "token", "\0")
        if list_headers:
            unsubscribe = with_query(unsubscribe, "issue", rendered.slug)
        self.unsubscribe_prefix, _, self.unsubscribe_suffix = unsubscribe.partition("\0")
        # the preference page's link, when readers have [topics] to choose
        self.preferences_prefix, _, self.preferences_suffix = (
            with_query(config.preferences_page, "token", "\0").partition("\0")
            if config.topics else ("", "", ""))
        self.unsubscribe_email = config.unsubscribe_email
        self.sender_email = sender.email
        self.sender_name = sender.name
        self.reply_to = sender.reply_to
        self.domain = sender.email.rpartition("@")[2] or "localhost"
        constants = {"web_url": web_url}
        self.html = Part(rendered.html, constants, html=True)
        self.text = Part(rendered.text, constants, html=False)
        self.boundary = f"=_nl_{secrets.token_hex(12)}"
        fixed = (
            f"From: {address(self.sender_name, self.sender_email)}{CRLF}"
            + (header_line("Reply-To", self.reply_to) if self.reply_to else "")
            + header_line("Subject", self.subject)
            + header_line("List-Id", f"{phrase(config.name)} <{config.list_id}>")
            # Gmail's feedback loop: complaints counted per issue, list and sender
            + header_line("Feedback-ID", ":".join(field.replace(":", "-") for field in
                                                  (self.slug, config.list_id, self.domain)))
            + ("List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF
               if list_headers else "")
            + "MIME-Version: 1.0" + CRLF
            + f'Content-Type: multipart/alternative; boundary="{self.boundary}"' + CRLF
            + ("X-Newsletter-Test: yes" + CRLF if test else "")
        )
        self.fixed_headers = fixed.encode("ascii")
        part = (f"--{self.boundary}{CRLF}Content-Type: text/%s; charset=\"utf-8\"{CRLF}"
                f"Content-Transfer-Encoding: base64{CRLF}{CRLF}")
        self.text_head = (CRLF + part % "plain").encode("ascii")
        self.html_head = (part % "html").encode("ascii")
        self.closing = f"--{self.boundary}--{CRLF}".encode("ascii")

    def message(self, recipient: Recipient) -> Message:
        return Message(self, recipient)

    def values(self, recipient: Recipient, token: str) -> dict[str, str]:
        """A reader's placeholder values, their links signed with ``token``."""
        values = dict(recipient.fields)
        values["name"] = display_name(recipient.name)  # no control characters, not too long
        values["email"] = recipient.email
        values["unsubscribe_url"] = self.unsubscribe_prefix + token + self.unsubscribe_suffix
        if self.preferences_prefix:
            values["preferences_url"] = (self.preferences_prefix + token
                                         + self.preferences_suffix)
        return values

    def headers(self, values: dict[str, str], token: str) -> dict[str, str]:
        """The headers of a reader's message that differ per reader."""
        if not self.list_headers:
            return {}
        mailto = f"mailto:{self.unsubscribe_email}?subject=unsubscribe%20{token}"
        return {"List-Unsubscribe": f"<{values['unsubscribe_url']}>, <{mailto}>"}


class Editions:
    """An issue's editions, each prepared once: by language, the default first. A
    one-language issue has one. ``message(recipient)`` picks the recipient's."""

    def __init__(self, emails: dict[str, PreparedEmail]):
        self.emails = emails
        self.default = next(iter(emails.values()))
        self.slug = self.default.slug
        self.subject = self.default.subject

    def __getitem__(self, edition: str | None) -> PreparedEmail:
        return self.emails.get(edition or "", self.default)

    def __iter__(self):
        return iter(self.emails.items())

    def message(self, recipient: Recipient) -> Message:
        return self[recipient.edition].message(recipient)


class Message:
    """One recipient's message. Filled lazily: SendGrid needs only the values, and of
    those only the reader's own (the links are the token between constant text)."""

    __slots__ = ("prepared", "recipient", "token", "_values")

    def __init__(self, prepared: PreparedEmail, recipient: Recipient):
        self.prepared = prepared
        self.recipient = recipient
        self.token = prepared.signer.token(recipient.ref)
        self._values: dict[str, str] | None = None

    @property
    def values(self) -> dict[str, str]:
        """What the placeholders are filled with: the reader's fields, name, address,
        and links."""
        if self._values is None:
            self._values = self.prepared.values(self.recipient, self.token)
        return self._values

    @property
    def html(self) -> str:
        return self.prepared.html.fill(self.values)

    @property
    def text(self) -> str:
        return self.prepared.text.fill(self.values)

    @property
    def message_id(self) -> str:
        p = self.prepared
        if p.test or not self.recipient.id:
            return f"<{p.slug}.test.{secrets.token_hex(6)}@{p.domain}>"
        # the same for a resend, so that a receiving server can drop a duplicate
        return f"<{p.slug}.{self.recipient.id}@{p.domain}>"

    def headers(self) -> dict[str, str]:
        """The headers that differ per recipient."""
        return self.prepared.headers(self.values, self.token)

    def as_bytes(self, now: datetime) -> bytes:
        """The full MIME message: multipart/alternative, text/plain first, base64 parts
        (no line over 76 octets), CRLF line ends."""
        p = self.prepared
        unsubscribe = self.headers().get("List-Unsubscribe", "").replace(
            ", <mailto", f",{CRLF} <mailto")
        head = (f"To: {address(self.values['name'], self.recipient.email)}{CRLF}"
                + f"Date: {format_datetime(now)}{CRLF}"
                + f"Message-ID: {self.message_id}{CRLF}"
                + (f"List-Unsubscribe: {unsubscribe}{CRLF}" if unsubscribe else "")
                ).encode("ascii")
        return b"".join((p.fixed_headers, head, p.text_head, _b64(self.text), p.html_head,
                         _b64(self.html), p.closing))
