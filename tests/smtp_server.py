"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

from __future__ import annotations

import socket

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """Accepts every message except for the addresses in ``refuse``."""

    def __init__(self, refuse: dict[str, str] | None = None):
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.sessions = 0
        self.logins: list[str] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 OK: queued"


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
        self.controller = Controller(sink, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
