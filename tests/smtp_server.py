"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives, and refuses
chosen addresses at RCPT (``refuse``) or their DATA command (``refuse_data``, before
354, as a server does when it defers a message)."""

from __future__ import annotations

import asyncio
import socket

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """Accepts every message except for the addresses in ``refuse`` (answered at RCPT)
    and in ``refuse_data`` (answered to DATA); both map an address to the reply."""

    def __init__(self, refuse: dict[str, str] | None = None,
                 refuse_data: dict[str, str] | None = None, hold: float = 0.0):
        self.hold = hold  # seconds before each message's answer (a remote relay)
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}
        self.refuse_data = {k.lower(): v for k, v in (refuse_data or {}).items()}
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.sessions = 0
        self.logins: list[str] = []
        self.replies: list[str] = []  # the first word of every refusal sent, in order

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            self.replies.append(self.refuse[address.lower()].split()[0])
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def data_refusal(self, envelope) -> str | None:
        for address in envelope.rcpt_tos:
            if address.lower() in self.refuse_data:
                self.replies.append(self.refuse_data[address.lower()].split()[0])
                return self.refuse_data[address.lower()]
        return None

    async def handle_DATA(self, server, session, envelope):
        if self.hold:
            await asyncio.sleep(self.hold)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 OK: queued"


class RefusingSMTP(SMTP):
    """aiosmtpd's server, answering DATA with the sink's refusal for chosen recipients.
    Like a real server it keeps the transaction: the client must RSET (a MAIL FROM
    without it is answered 503)."""

    async def smtp_DATA(self, arg: str) -> None:
        refusal = self.envelope and self.event_handler.data_refusal(self.envelope)
        if refusal:
            await self.push(refusal)
            return
        await super().smtp_DATA(arg)


class SinkController(Controller):
    def factory(self):
        return RefusingSMTP(self.handler, **self.SMTP_kwargs)


class SMTPServer:
    def __init__(self, sink: Sink, tls_context=None, credentials: tuple[str, str] | None = None):
        self.sink = sink
        self.port = free_port()
        kwargs = {}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if credentials:
            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = isinstance(auth_data, LoginPassword) and (
                    auth_data.login.decode(), auth_data.password.decode()) == credentials
                if ok:
                    sink.logins.append(auth_data.login.decode())
                return AuthResult(success=ok, handled=False)  # False: the server answers 535

            kwargs.update(authenticator=authenticator, auth_require_tls=True)
        self.controller = SinkController(sink, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
