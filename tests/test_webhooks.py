"""SendGrid's signed Event Webhook: POST /webhooks/sendgrid.

The key pair is made here with `cryptography`, as SendGrid's is (ECDSA P-256, SHA-256
over the timestamp header and the raw body, the public key as base64 DER); the app checks
it with the `sendgrid` package's own verifier. Most tests call the WSGI app in-process on
both engines; one drives `newsletter serve` over HTTP."""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.config import load_config
from pipeline.web import create_app
from tests.conftest import NOW, SECRET, start_process
from tests.smtp_server import free_port

PATH = "/webhooks/sendgrid"


class Signer:
    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public = base64.b64encode(der).decode()

    def headers(self, body: bytes, at: float) -> dict[str, str]:
        stamp = str(int(at))
        signature = self.private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp}


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def app(project, engine, audience, signer):
    env = {"NEWSLETTER_SECRET": SECRET, **engine.env,
           "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public}
    return create_app(load_config(project / "newsletter.toml", env=env), lambda: NOW)


def post(app, body: bytes, headers: dict[str, str], length: str | None = None):
    seen = {}

    def start_response(status, response_headers):
        seen["status"] = status

    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": PATH, "QUERY_STRING": "",
               "CONTENT_LENGTH": str(len(body)) if length is None else length,
               "wsgi.input": io.BytesIO(body),
               **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}}
    answer = b"".join(app(environ, start_response)).decode()
    return seen["status"], answer


def event(kind: str, email: str, n: int, **more) -> dict:
    return {"sg_event_id": f"ev-{kind}-{n}", "event": kind, "email": email,
            "timestamp": int(NOW.timestamp()) - 60, "issue": "ai-productivity-09",
            "subscriber": "1", **more}


BATCH = [
    event("delivered", "lin.xiaoyu@example.com", 1),
    event("open", "lin.xiaoyu@example.com", 2),
    event("click", "lin.xiaoyu@example.com", 3, url="https://example.com"),
    event("bounce", "chen.mo@example.com", 4, type="bounce", reason="550 5.1.1 no such user"),
    event("bounce", "zhou.an@example.org", 5, type="blocked", reason="421 try later"),
    event("spamreport", "wang.shu@example.net", 6),
    event("processed", "lin.xiaoyu@example.com", 7),  # not counted
    {"event": "delivered", "email": "li.heng@example.com"},  # no id: ignored
]


def suppressions(engine) -> list[tuple]:
    return sorted(engine.query("SELECT email_key, reason, source FROM suppressions"))


def test_signed_events_are_stored_once_and_bounces_and_complaints_suppress(app, engine,
                                                                            signer):
    body = json.dumps(BATCH).encode()
    status, answer = post(app, body, signer.headers(body, NOW.timestamp()))
    assert (status, answer) == ("200 OK", "stored 6 events (blocked 1, bounce 1, click 1, "
                                          "delivered 1, open 1, spamreport 1), 0 already "
                                          "stored, 2 addresses suppressed, 2 ignored\n")
    assert suppressions(engine) == [("chen.mo@example.com", "bounce", "sendgrid"),
                                    ("wang.shu@example.net", "spam", "sendgrid")]
    # SendGrid retries, or someone plays the same signed body again: counted once
    status, answer = post(app, body, signer.headers(body, NOW.timestamp() + 5))
    assert answer.startswith("stored 0 events (none), 6 already stored, 0 addresses")
    assert engine.query("SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind") == [
        ("blocked", 1), ("bounce", 1), ("click", 1), ("delivered", 1), ("open", 1),
        ("spamreport", 1)]
    assert engine.query("SELECT issue, subscriber_id FROM events WHERE kind = 'open'") == [
        ("ai-productivity-09", 1)]


def test_an_unsubscribe_event_unsubscribes_the_reader(app, engine, signer):
    body = json.dumps([event("unsubscribe", "he.yun@example.com", 9)]).encode()
    assert post(app, body, signer.headers(body, NOW.timestamp()))[0] == "200 OK"
    assert engine.query("SELECT status, unsubscribe_source FROM subscribers WHERE "
                        "email_key = 'he.yun@example.com'") == [("unsubscribed", "sendgrid")]


def forged(signer, body):
    return Signer().headers(body, NOW.timestamp())  # another key's signature


@pytest.mark.parametrize("headers", [
    lambda signer, body: forged(signer, body),
    lambda signer, body: signer.headers(body + b" ", NOW.timestamp()),  # body altered
    lambda signer, body: signer.headers(body, NOW.timestamp() - 11 * 60),  # too old
    lambda signer, body: signer.headers(body, NOW.timestamp() + 11 * 60),  # from the future
    lambda signer, body: {**signer.headers(body, NOW.timestamp()),
                          "X-Twilio-Email-Event-Webhook-Signature": "not base64!"},
    lambda signer, body: {},
], ids=["forged", "altered", "old", "future", "garbage", "unsigned"])
def test_a_bad_or_old_signature_gets_403_and_changes_nothing(app, engine, signer, headers):
    body = json.dumps(BATCH).encode()
    status, answer = post(app, body, headers(signer, body))
    assert status == "403 Forbidden"
    assert "Traceback" not in answer and signer.public not in answer
    assert engine.query("SELECT count(*) FROM events") == [(0,)]
    assert suppressions(engine) == []


@pytest.mark.parametrize("body, status, answer", [
    (b"{not json", "400 Bad Request", "not JSON: SendGrid posts a JSON list of events\n"),
    (b'{"event": "bounce"}', "400 Bad Request", "not a JSON list of events\n"),
    (b"\xff\xfe", "403 Forbidden", "signature not valid\n"),  # not UTF-8: never signed so
])
def test_malformed_bodies_get_400_without_a_traceback(app, engine, signer, body, status,
                                                      answer):
    assert post(app, body, signer.headers(body, NOW.timestamp())) == (status, answer)
    assert engine.query("SELECT count(*) FROM events") == [(0,)]


def test_a_body_over_a_megabyte_is_refused_unread(app, signer):
    # plain text for SendGrid's logs, not the unsubscribe page
    assert post(app, b"", {}, length=str(1024 * 1024 + 1)) == (
        "413 Payload Too Large", "413 Payload Too Large\n")


def test_without_a_key_the_webhook_is_off(project):
    app = create_app(load_config(project / "newsletter.toml",
                                 env={"NEWSLETTER_SECRET": SECRET}), lambda: NOW)
    body = json.dumps(BATCH).encode()
    assert post(app, body, Signer().headers(body, NOW.timestamp())) == (
        "403 Forbidden", "the event webhook is off: no [sendgrid] webhook_public_key\n")


def test_a_key_that_is_not_one_is_a_configuration_error(run):
    result = run("serve", env={"NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"})
    assert result.exit_code == 4
    assert "webhook_public_key" in result.stderr
    assert "is not an ECDSA public key; paste the Verification Key" in result.stderr


def test_serve_takes_signed_events_over_http(project, audience, signer):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_process(project, ["serve", "--port", str(port)], base + "/healthz",
                            {"NEWSLETTER_SECRET": SECRET,
                             "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public})
    try:
        body = json.dumps([event("bounce", "chen.mo@example.com", 1, type="bounce")]).encode()

        def send(headers):
            request = urllib.request.Request(base + PATH, data=body, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      **headers})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert send(Signer().headers(body, time.time())) == 403
        assert send(signer.headers(body, time.time())) == 200
        assert send(signer.headers(body, time.time())) == 200  # a replay: stored once
    finally:
        process.terminate()
        process.wait(timeout=10)
    import sqlite3

    db = sqlite3.connect(audience)
    assert db.execute("SELECT count(*) FROM events").fetchone() == (1,)
    assert db.execute("SELECT reason FROM suppressions WHERE email_key = "
                      "'chen.mo@example.com'").fetchone() == ("bounce",)
