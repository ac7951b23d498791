"""The official SendGrid client, its requests over one connection kept open.

python_http_client (under the `sendgrid` library) sends each request through a new
``urllib`` opener, which opens a connection and closes it after the answer: against
SendGrid that is a TCP and a TLS handshake, two round trips more, for every 1,000
readers, and on the local test server a thread and a socket more a request. Its
``Client`` has one place meant for replacing (``_make_request``); here it sends the
request urllib built over a connection of its own, kept for the next one. A client per
sender thread: connections are never shared.

A connection the server closed while it sat idle is noticed before it is used (the
socket reads as closed) and opened again: a request never goes out on one that is
known dead. With an HTTP proxy in the environment (urllib honours ``https_proxy``),
requests go through urllib as before.
"""

from __future__ import annotations

import http.client
import select
import ssl
import urllib.request
from io import BytesIO
from urllib.error import HTTPError
from urllib.parse import urlsplit

from python_http_client import Client
from python_http_client.exceptions import handle_error


class Connection:
    """One HTTP(S) connection, opened on first use and again when it was closed."""

    def __init__(self) -> None:
        self.http: http.client.HTTPConnection | None = None
        self.origin: tuple[str, str, int | None] | None = None

    def send(self, request: urllib.request.Request, timeout: float | None) -> Answer:
        """The request's answer, read in full; python_http_client's HTTPError (as its
        own ``_make_request`` raises) for a status of 400 or more."""
        url = urlsplit(request.full_url)
        origin = (url.scheme, url.hostname or "", url.port)
        if self.http is not None and (origin != self.origin or _closed(self.http)):
            self.close()
        if self.http is None:
            self.http = _connect(*origin, timeout)
            self.origin = origin
        try:
            self.http.request(request.get_method(), request.selector, request.data,
                              dict(request.header_items()))
            response = self.http.getresponse()
            body = response.read()
        except BaseException:
            self.close()  # half a request or answer: the connection is of no further use
            raise
        if response.will_close:
            self.close()
        if response.status >= 400:
            raise handle_error(HTTPError(request.full_url, response.status, response.reason,
                                         response.headers, BytesIO(body)))
        return Answer(response.status, body, response.headers)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


class Answer:
    """What python_http_client's Response reads of urllib's answer."""

    def __init__(self, status: int, body: bytes, headers):
        self.status, self.body, self.headers = status, body, headers

    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return self.body

    def info(self):
        return self.headers


def _connect(scheme: str, host: str, port: int | None, timeout: float | None
             ) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=ssl.create_default_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _closed(connection: http.client.HTTPConnection) -> bool:
    """Whether the server closed an idle connection: its socket is readable (at its end,
    or with bytes nobody asked for) while no request is out."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class KeptAliveClient(Client):
    """python_http_client's Client (``client.mail.send.post(...)``) whose requests share
    one Connection; the clients it makes for each step of a URL share it too."""

    def __init__(self, *args, connection: Connection | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.connection = connection or Connection()

    def _build_client(self, name=None):
        return KeptAliveClient(host=self.host, version=self._version,
                               request_headers=self.request_headers,
                               url_path=self._url_path + [name] if name else self._url_path,
                               append_slash=self.append_slash, timeout=self.timeout,
                               connection=self.connection)

    def _make_request(self, opener, request, timeout=None):
        if _proxied(request):
            return super()._make_request(opener, request, timeout)
        return self.connection.send(request, timeout or self.timeout)


def _proxied(request: urllib.request.Request) -> bool:
    url = urlsplit(request.full_url)
    return url.scheme in urllib.request.getproxies() and \
        not urllib.request.proxy_bypass(url.hostname or "")


def kept_alive(sendgrid_client) -> None:
    """Make a SendGridAPIClient's requests go over a kept connection."""
    inner = sendgrid_client.client
    sendgrid_client.client = KeptAliveClient(host=inner.host, version=inner._version,
                                             request_headers=inner.request_headers,
                                             timeout=inner.timeout)
