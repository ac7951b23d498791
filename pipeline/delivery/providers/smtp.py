"""smtp: smtplib with STARTTLS, SSL or no TLS, one connection reused across batches.

A refused recipient fails alone (5xx) or is deferred to a later run (4xx); after a
refusal RSET clears the transaction and the batch goes on. The password comes from
SMTP_PASSWORD only.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime

from ...errors import CredentialsError, DeliveryError
from ..personalise import Message
from . import DEFERRED, FAILED, RETRY, SENT, UNKNOWN, Outcome, Provider


class SMTPProvider(Provider):
    name = "smtp"
    concurrency = 16  # connections: a relay answers each message after a round trip

    def __init__(self, config):
        super().__init__(config)
        settings = config.smtp
        self.host, self.port = settings.host, settings.port
        self.security = settings.security
        self.username = settings.username
        self.password = config.require("SMTP_PASSWORD") if self.username else ""
        self.timeout = settings.timeout
        self.batch_size = settings.batch_size
        self.ca_file = settings.ca_file or None
        self.connection: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def open(self) -> None:
        """Nothing yet: the connection opens at the first message, so that a server that
        cannot be reached is that batch's outcome, not a crash."""

    def _connect(self) -> None:
        if self.connection is not None:
            return
        try:
            self._login()
        except smtplib.SMTPAuthenticationError as exc:
            raise CredentialsError(f"the SMTP server refused the login ({exc.smtp_code}); check "
                                "smtp.username and SMTP_PASSWORD") from None
        except ssl.SSLCertVerificationError as exc:
            raise CredentialsError(f"the SMTP server's certificate is not trusted "
                                f"({exc.verify_message}); set smtp.ca_file to its CA") from None

    def _login(self) -> None:
        if self.security == "ssl":
            connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                          context=self._context())
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                connection.starttls(context=self._context())
        connection.ehlo_or_helo_if_needed()  # again after STARTTLS, as RFC 3207 asks
        if self.username:
            connection.login(self.username, self.password)
        self.connection = connection

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.connection = None

    def _drop(self) -> None:
        """Forget a connection that cannot be trusted any more; the next message opens
        a new one."""
        if self.connection is not None:
            try:
                self.connection.close()
            except OSError:
                pass
            self.connection = None

    def _reset(self) -> None:
        """RSET after a refused transaction, so that the next MAIL FROM starts afresh
        (without it a server answers every following reader with 503)."""
        assert self.connection is not None
        try:
            code, _ = self.connection.rset()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self._drop()

    def send(self, messages: Sequence[Message], now: datetime,
             encoded: object = None) -> list[Outcome]:
        outcomes: list[Outcome] = []
        sender = self.config.sender.email
        for index, message in enumerate(messages):
            in_data = False
            try:
                try:
                    self._connect()
                except DeliveryError as exc:
                    exc.done = outcomes  # those before it were delivered or refused
                    raise
                connection = self.connection
                assert connection is not None
                code, reply = connection.mail(sender)
                if code == 250:
                    code, reply = connection.rcpt(message.recipient.email)
                if code in (250, 251):
                    in_data = True
                    try:
                        code, reply = connection.data(message.as_bytes(now))
                    except smtplib.SMTPDataError as exc:  # DATA itself refused: nothing sent
                        code, reply = exc.smtp_code, exc.smtp_error
                if code == 250:
                    outcomes.append(Outcome(SENT, message_id=message.message_id))
                    continue
                outcomes.append(_refused(code, reply))
                self._reset()
            except (smtplib.SMTPException, OSError) as exc:
                # Before DATA nothing was accepted: safe to retry. During DATA the server
                # may have taken the message before the connection broke: unknown.
                self._drop()
                error = f"connection to {self.host}:{self.port} broke: {exc}"
                outcomes.append(Outcome(UNKNOWN if in_data else RETRY, error=error))
                outcomes += [Outcome(RETRY, error="not tried: " + error)] * (
                    len(messages) - index - 1)
                break
        return outcomes


def _refused(code: int, reply: bytes | str) -> Outcome:
    """A refused reader: a 4xx is for now (a later run tries again), a 5xx for good."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return Outcome(DEFERRED if 400 <= code < 500 else FAILED, error=f"{code} {text}")


PROVIDER = SMTPProvider
