"""`newsletter serve`: the WSGI application behind unsubscribe_url.

- GET  /unsubscribe?token=…  a page that names the publication and offers a button; a
  GET alone changes nothing (link scanners and prefetchers follow GETs).
- POST /unsubscribe?token=…  RFC 8058 one-click (body ``List-Unsubscribe=One-Click``)
  or the page's button: the reader is unsubscribed, with the time and the source.
  Repeating it is harmless.
- A forged, altered, truncated or foreign token: 400, and nothing changes. No
  redirects, no cookies.
- GET /healthz for the reverse proxy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs, urlparse

from ..audience.queries import unsubscribe_address
from ..audience.tokens import Signer, TokenError
from ..config import Config
from ..render import template_env
from ..render.templates import base_context
from ..store import connect

MAX_BODY = 16 * 1024
ONE_CLICK = "List-Unsubscribe=One-Click"
HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
           ("Referrer-Policy", "no-referrer"), ("X-Robots-Tag", "noindex"),
           ("X-Content-Type-Options", "nosniff")]
REASONS = {200: "200 OK", 400: "400 Bad Request", 404: "404 Not Found",
           405: "405 Method Not Allowed", 413: "413 Payload Too Large"}


def create_app(config: Config, clock: Callable[[], datetime]):
    signer = Signer(config.require("NEWSLETTER_SECRET"), config.list_id)
    template = template_env(config).get_template("web/unsubscribe.html.j2")
    paths = {"/unsubscribe", urlparse(config.unsubscribe_url).path or "/unsubscribe"}

    def page(start_response, status: int, state: str, email: str = "", token: str = ""):
        body = template.render(**base_context(config), state=state, email=email,
                               token=token).encode("utf-8")
        start_response(REASONS[status], HEADERS + [("Content-Length", str(len(body)))])
        return [body]

    def app(environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz":
            db = connect(config.database)
            db.execute("SELECT 1").fetchone()
            db.close()
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
            return [b"ok\n"]
        if path not in paths:
            return page(start_response, 404, "invalid")
        if method not in ("GET", "HEAD", "POST"):
            return page(start_response, 405, "invalid")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        form: dict[str, list[str]] = {}
        body = ""
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > MAX_BODY:
                return page(start_response, 413, "invalid")
            body = environ["wsgi.input"].read(length).decode("utf-8", "replace")
            form = parse_qs(body)
        token = (query.get("token") or form.get("token") or [""])[0]
        try:
            email = signer.email(token)
        except TokenError:
            return page(start_response, 400, "invalid")
        if method != "POST":
            return page(start_response, 200, "ask", email, token)
        source = "one-click" if body.strip() == ONE_CLICK else "web"
        db = connect(config.database)
        try:
            unsubscribe_address(db, email, clock(), source)
        finally:
            db.close()
        return page(start_response, 200, "done", email)

    return app
