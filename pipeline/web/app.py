"""`newsletter serve`: the WSGI application (Flask's app factory, without Flask).

``create_app(config, clock)`` returns a WSGI callable. Each route is a small function
that takes a ``Request`` and returns a ``Response``; the request limits and the security
headers are applied once, here, around every response. Routes: the unsubscribe page and
its one-click POST (``web.unsubscribe``), the preference page when [topics] are
configured (``web.preferences``), signup with double opt-in (``web.signup``:
/subscribe and /confirm, or where [signup] url puts them), SendGrid's Event Webhook
(``web.webhooks``), and ``/healthz`` for the reverse proxy. No redirects, no cookies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs, urlparse

from ..config import Config
from ..delivery.providers import Provider, make_provider
from ..delivery.signup import SignupMail
from ..store import connect
from .preferences import preferences_route
from .routing import Request, Response, Route
from .signup import Signups
from .unsubscribe import unsubscribe_route
from .webhooks import MAX_BODY as WEBHOOK_BODY
from .webhooks import PATH as WEBHOOK
from .webhooks import sendgrid_webhook_route

MAX_BODY = 16 * 1024
SECURITY_HEADERS = [
    ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"),
    ("X-Robots-Tag", "noindex"), ("X-Content-Type-Options", "nosniff"),
    # no script at all; the pages' own inline style; forms post only back here
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
]
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Payload Too Large", 429: "Too Many Requests"}
BODY_LIMITS = {WEBHOOK: WEBHOOK_BODY}  # routes that take more than MAX_BODY


METHODS = ("GET", "HEAD", "POST")


def create_app(config: Config, clock: Callable[[], datetime],
               new_provider: Callable[[], Provider] | None = None,
               log: Callable[[str], None] = lambda line: None,
               signup_mail: SignupMail | None = None):
    """``new_provider``: a provider for a request (default: the configured one);
    ``signup_mail``: the confirmation and welcome emails, rendered (default: on the
    first signup)."""
    def provider() -> Provider:
        return new_provider() if new_provider else make_provider(config.provider, config)

    signups = Signups(config, clock, provider, log, signup_mail)
    unsubscribe = unsubscribe_route(config, clock, signups.resubscribe)
    handlers: dict[str, Route] = {
        "unsubscribe": unsubscribe, "subscribe": signups.subscribe, "confirm": signups.confirm,
        "webhook": sendgrid_webhook_route(config, clock),
        "health": lambda request: _health(config)}
    if config.topics:
        handlers["preferences"] = preferences_route(config)
    routes = {path: handlers[name] for name, paths in served_paths(config).items()
              for path in paths}

    def app(environ, start_response):
        response = _answer(environ, routes, unsubscribe)
        headers = [("Content-Type", response.content_type),
                   ("Content-Length", str(len(response.body))), *response.headers,
                   *SECURITY_HEADERS]
        start_response(f"{response.status} {REASONS[response.status]}", headers)
        return [response.body]

    return app


def served_paths(config: Config) -> dict[str, list[str]]:
    """What `serve` answers, by route, at which paths: each at its default path and, if
    the configured URL puts it elsewhere, there too."""
    def at(default: str, url: str) -> list[str]:
        return sorted({default, urlparse(url).path or default})

    paths = {"unsubscribe": at("/unsubscribe", config.unsubscribe_url)}
    if config.topics:
        paths["preferences"] = at("/preferences", config.preferences_page)
    paths |= {"subscribe": at("/subscribe", config.subscribe_url),
              "confirm": at("/confirm", config.confirm_url), "webhook": [WEBHOOK],
              "health": ["/healthz"]}
    return paths


def _answer(environ, routes: dict[str, Route], fallback: Route) -> Response:
    """The route's response; limits that hold for every route are checked first (their
    error pages are the fallback route's, so that a reader sees the publication)."""
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
    route = routes.get(path)
    if route is None:
        return _error(fallback, 404)
    if method not in METHODS:
        return _error(fallback, 405)
    request = Request(method, path, parse_qs(environ.get("QUERY_STRING", "")))
    if method == "POST":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(fallback, 400)
        limit = BODY_LIMITS.get(path, MAX_BODY)
        if length > limit or length < 0:
            status = 413 if length > limit else 400
            return _plain(status) if path in BODY_LIMITS else _error(fallback, status)
        raw = environ["wsgi.input"].read(length)
        body = raw.decode("utf-8", "replace")
        headers = {name[5:].replace("_", "-").lower(): value
                   for name, value in environ.items() if name.startswith("HTTP_")}
        content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        form = parse_qs(body) if length <= MAX_BODY and content_type != "application/json" \
            else {}
        request = Request(method, path, request.query, form, body, raw, headers,
                          environ.get("REMOTE_ADDR", ""), environ.get("HTTP_USER_AGENT", ""),
                          content_type)
    return route(request)


def _error(route: Route, status: int) -> Response:
    page = route(Request("GET", "", {"token": [""]}))  # the route's own "invalid" page
    return Response(status, page.body, page.content_type)


def _plain(status: int) -> Response:
    """A short plain-text answer, for a route that machines call (the webhook)."""
    return Response(status, f"{status} {REASONS[status]}\n".encode(), "text/plain; charset=utf-8")


def _health(config: Config) -> Response:
    db = connect(config.database)
    try:
        db.execute("SELECT 1").fetchone()
    finally:
        db.close()
    return Response(200, b"ok\n", "text/plain")
