"""A local HTTP server that speaks SendGrid's v3 API, for tests and benchmarks.

It answers `POST /v3/mail/send` as SendGrid does (202 with X-Message-Id; 200 in
sandbox mode; 400 with SendGrid's error body; 401; 413; 429 with X-RateLimit-*; 500),
validates every body against tests/sendgrid/mail_send.schema.json and the documented
limits, and counts what it accepted per recipient. Like SendGrid, it refuses a whole
request for one address it will not take (``refuse``): 400, each such address named by
its field (``personalizations.N.to.M.email``), or with ``refuse_without_field`` a 400
that names nobody. Faults can be scripted. It also serves the suppression endpoints
(`GET /v3/suppression/...`, paginated).

Run alone for a benchmark: `python -m tests.sendgrid_server PORT [--no-schema]`.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

SCHEMA = Path(__file__).resolve().parent / "sendgrid" / "mail_send.schema.json"
API_KEY = "SG.test-key-for-the-local-server"
MAX_BYTES = 30 * 1024 * 1024
RESERVED_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc",
                    "bcc"}
SUPPRESSION_KINDS = ("unsubscribes", "bounces", "blocks", "invalid_emails", "spam_reports")
# SendGrid's answer for an address it does not take (its documented 400 body)
INVALID_ADDRESS = "Does not contain a valid address."
ERRORS_HELP = ("http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
               "#message.personalizations.to")


def refusal_errors(body: dict, refuse: set[str], without_field: bool) -> list[dict]:
    """SendGrid's errors for the refused addresses of a request, each naming its field,
    or one error naming no field at all."""
    errors = []
    for n, p in enumerate(body.get("personalizations") or []):
        for m, recipient in enumerate(p.get("to") or []):
            if str(recipient.get("email", "")).lower() in refuse:
                errors.append({"message": INVALID_ADDRESS,
                               "field": f"personalizations.{n}.to.{m}.email",
                               "help": ERRORS_HELP})
    if errors and without_field:
        return [{"message": "Bad Request", "field": None, "help": None}]
    return errors


def limit_errors(body: dict) -> list[dict]:
    """The documented limits a JSON Schema cannot say."""
    errors = []

    def error(message: str, field: str | None = None) -> None:
        errors.append({"message": message, "field": field, "help": None})

    personalizations = body.get("personalizations") or []
    if not 1 <= len(personalizations) <= 1000:
        error("The personalizations field must have between 1 and 1000 items.",
              "personalizations")
    seen: set[str] = set()
    custom_top = body.get("custom_args") or {}
    for n, p in enumerate(personalizations):
        for kind in ("to", "cc", "bcc"):
            for recipient in p.get(kind) or []:
                address = recipient.get("email", "").lower()
                if address in seen:
                    error("Each email address in the personalization block should be unique "
                          "between to, cc, and bcc.", f"personalizations.{n}.{kind}")
                seen.add(address)
                if any(c in recipient.get("name", "") for c in ";,"):
                    error("Recipient names may not contain ';' or ','.",
                          f"personalizations.{n}.{kind}.name")
        subs = p.get("substitutions") or {}
        if sum(len(k) + len(v) for k, v in subs.items()) * 3 > 10000 and \
                len(json.dumps(subs, ensure_ascii=False).encode()) > 10000:
            error("The substitutions of a personalization must total less than 10000 bytes.",
                  f"personalizations.{n}.substitutions")
        if any(not isinstance(v, str) for v in subs.values()):
            error("Substitution values must be strings.", f"personalizations.{n}.substitutions")
        merged = {**custom_top, **(p.get("custom_args") or {})}
        if sum(len(k) + len(str(v)) for k, v in merged.items()) * 6 >= 10000 and \
                len(json.dumps(merged).encode()) >= 10000:
            error("custom_args must total less than 10000 bytes.",
                  f"personalizations.{n}.custom_args")
        for header in p.get("headers") or {}:
            if header.lower() in RESERVED_HEADERS:
                error(f"The header {header} is reserved.", f"personalizations.{n}.headers")
    if len(seen) > 1000:
        error("The total number of recipients must be no more than 1000.", "personalizations")
    for header in body.get("headers") or {}:
        if header.lower() in RESERVED_HEADERS:
            error(f"The header {header} is reserved.", "headers")
    categories = body.get("categories") or []
    if len(categories) > 10 or len(set(categories)) != len(categories) or any(
            not c.isascii() or len(c) > 255 for c in categories):
        error("Categories: at most 10, unique, ASCII, 255 characters each.", "categories")
    content = body.get("content") or []
    types = [c.get("type") for c in content]
    if "text/plain" in types and types.index("text/plain") != 0:
        error("If present, text/plain must be first, followed by text/html.", "content")
    if body.get("reply_to") and body.get("reply_to_list"):
        error("reply_to and reply_to_list cannot be used together.", "reply_to")
    return errors


class SendGridServer:
    """``with SendGridServer() as sg:`` … ``sg.url``, ``sg.received``, ``sg.faults``."""

    def __init__(self, validate_schema: bool = True, port: int = 0, keep_bodies: bool = True):
        self.validate_schema = validate_schema
        self.keep_bodies = keep_bodies
        self.validator = None
        if validate_schema:
            from jsonschema import Draft202012Validator

            self.validator = Draft202012Validator(json.loads(SCHEMA.read_text()))
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()  # address -> accepted deliveries
        self.bodies: list[dict] = []
        self.requests = 0
        self.accepted_requests = 0
        # A callable given each request's number and body that returns None or a fault:
        # "429", "500", "drop", "slow", "close" (answered, then the connection closed
        # without a word, as a server does with one idle too long), or a (status, errors)
        # pair.
        self.faults: Callable[[int, dict | None], object] = lambda n, body: None
        self.suppressions: dict[str, list[dict]] = {kind: [] for kind in SUPPRESSION_KINDS}
        self.suppression_requests: list[str] = []
        self.delay = 0.0  # seconds to hold each accepted request
        self.latency = 0.0  # seconds every request waits before its answer (a network)
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests it held at once
        self.connections = 0  # connections clients opened
        self.closed = 0  # connections the server has closed
        self.refuse: set[str] = set()  # addresses (lower case) refused with a 400
        self.refuse_without_field = False  # …with a 400 that names no field
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with server.lock:
                    server.connections += 1

            def reply(self, status: int, payload: object = None, headers: dict | None = None):
                data = b"" if payload is None else json.dumps(payload).encode()
                self.done()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    self.reply(401, {"errors": [{"message": "The provided authorization grant "
                                                "is invalid, expired, or revoked",
                                                "field": None, "help": None}]})
                    return False
                return True

            def do_POST(self):
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                self.counted = True
                try:
                    if server.latency:
                        time.sleep(server.latency)
                    return self.post()
                finally:
                    self.done()

            def done(self) -> None:
                """The request is no longer in flight: before its answer is written (the
                client may send its next request the moment it reads it)."""
                if getattr(self, "counted", False):
                    self.counted = False
                    with server.lock:
                        server.in_flight -= 1

            def post(self):
                length = int(self.headers.get("Content-Length", 0))
                if urlparse(self.path).path != "/v3/mail/send":
                    self.rfile.read(length)
                    return self.reply(404, {"errors": [{"message": "not found"}]})
                if length >= MAX_BYTES:
                    self.rfile.read(length)
                    return self.reply(413, {"errors": [{"message": "Payload Too Large",
                                                        "field": None, "help": None}]})
                raw = self.rfile.read(length)
                if not self.authorised():
                    return None
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self.reply(400, {"errors": [{"message": "Bad Request",
                                                        "field": None, "help": None}]})
                with server.lock:
                    server.requests += 1
                    number = server.requests
                fault = server.faults(number, body)
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)  # no answer at all: nothing was accepted
                    return None
                if fault == "429":
                    reset = int(time.time()) + 1
                    return self.reply(429, {"errors": [{"message": "too many requests",
                                                        "field": None, "help": None}]},
                                      {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                                       "X-RateLimit-Reset": str(reset)})
                if fault == "500":
                    return self.reply(500, {"errors": [{"message": "Internal Server Error",
                                                        "field": None, "help": None}]})
                if isinstance(fault, tuple):
                    status, errors = fault
                    return self.reply(status, {"errors": errors})
                errors = []
                if server.validator is not None:
                    for error in server.validator.iter_errors(body):
                        field = ".".join(str(p) for p in error.absolute_path) or None
                        errors.append({"message": error.message, "field": field,
                                       "help": None})
                errors += limit_errors(body)
                errors += refusal_errors(body, server.refuse, server.refuse_without_field)
                if errors:
                    return self.reply(400, {"errors": errors[:20]})
                with server.lock:
                    server.accepted_requests += 1
                    for p in body["personalizations"]:
                        for recipient in p["to"]:
                            server.received[recipient["email"].lower()] += 1
                    if server.keep_bodies:
                        server.bodies.append(body)
                if fault == "slow":
                    time.sleep(server.delay)
                sandbox = (body.get("mail_settings") or {}).get("sandbox_mode", {})
                status = 200 if sandbox.get("enable") else 202
                self.reply(status, None, {"X-Message-Id": secrets.token_urlsafe(16)})
                if fault == "close":
                    self.close_connection = True
                return None

            def do_GET(self):
                url = urlparse(self.path)
                if not self.authorised():
                    return None
                kind = url.path.removeprefix("/v3/suppression/")
                if url.path == "/v3/asm/suppressions/global":
                    kind = "unsubscribes"
                elif url.path.startswith("/v3/suppression/") and kind in SUPPRESSION_KINDS:
                    pass
                else:
                    return self.reply(404, {"errors": [{"message": "not found"}]})
                query = parse_qs(url.query)
                limit = int(query.get("limit", ["500"])[0])
                offset = int(query.get("offset", ["0"])[0])
                with server.lock:
                    server.suppression_requests.append(f"{url.path}?limit={limit}&offset={offset}")
                return self.reply(200, server.suppressions[kind][offset:offset + limit])

        self.httpd = _Server(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.on_close = self._closed
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _closed(self) -> None:
        with self.lock:
            self.closed += 1

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SendGridServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Server(ThreadingHTTPServer):
    on_close: Callable[[], None] = staticmethod(lambda: None)

    def shutdown_request(self, request) -> None:
        super().shutdown_request(request)
        self.on_close()

    def handle_error(self, request, client_address) -> None:
        """A client killed mid-request (the crash tests do it on purpose) is no error of
        the server's: only other exceptions are printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main() -> None:
    port = int(sys.argv[1])
    server = SendGridServer(validate_schema="--no-schema" not in sys.argv, port=port,
                            keep_bodies=False)
    if "--latency" in sys.argv:  # seconds every request waits, as a network round trip
        server.latency = float(sys.argv[sys.argv.index("--latency") + 1])
    print(f"listening on {server.url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sys.stderr.write(json.dumps({"requests": server.requests,
                                     "recipients": sum(server.received.values()),
                                     "distinct": len(server.received)}) + "\n")


if __name__ == "__main__":
    main()
