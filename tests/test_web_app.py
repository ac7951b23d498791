"""The WSGI app of `serve`, called in-process: limits and headers hold for every route."""

from __future__ import annotations

import io

import pytest

from pipeline.config import load_config
from pipeline.web import create_app
from tests.conftest import NOW, SECRET


@pytest.fixture
def app(project):
    config = load_config(project / "newsletter.toml", env={"NEWSLETTER_SECRET": SECRET})
    return create_app(config, lambda: NOW)


def call(app, method: str, path: str, body: bytes = b"", length: str | None = None):
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
               "CONTENT_LENGTH": str(len(body)) if length is None else length,
               "wsgi.input": io.BytesIO(body)}
    payload = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], payload


@pytest.mark.parametrize("method, path, length, status", [
    ("GET", "/nowhere", None, "404 Not Found"),
    ("PUT", "/unsubscribe", None, "405 Method Not Allowed"),
    ("POST", "/unsubscribe", "many", "400 Bad Request"),
    ("POST", "/unsubscribe", "-1", "400 Bad Request"),
    ("POST", "/unsubscribe", str(10**9), "413 Payload Too Large"),
    ("GET", "/unsubscribe", None, "400 Bad Request"),  # no token
])
def test_every_bad_request_gets_a_page_and_the_same_headers(app, method, path, length, status):
    got, headers, body = call(app, method, path, length=length)
    assert got == status
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in headers and "Location" not in headers
    assert "AI生产力快报" in body.decode()


def test_health(app):
    assert call(app, "GET", "/healthz")[::2] == ("200 OK", b"ok\n")
