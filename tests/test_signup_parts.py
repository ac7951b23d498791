"""The parts of signup that need no server: confirmation tokens (the expiry inside the
MAC, rotation, one spelling) and the in-memory rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.audience.queries import CONSENT
from pipeline.audience.tokens import Signer, TokenError, TokenExpired, decode, encode
from pipeline.store import MIGRATIONS, connect, migrate, transaction
from pipeline.store.database import _set_version
from pipeline.web.limits import RateLimit

NOW = datetime(2024, 1, 31, 9, 0, tzinfo=UTC)
REF = bytes(range(12))


def test_a_confirmation_token_names_its_signup_until_it_expires():
    signer = Signer("current")
    token = signer.confirmation(REF, NOW + timedelta(days=7))
    payload, mac = token.split(".")
    assert (len(payload), len(mac)) == (24, 20)
    assert signer.verify_confirmation(token, NOW + timedelta(days=7, seconds=-1)) == REF
    with pytest.raises(TokenExpired, match="the link expired at 2024-02-07T09:00:00"):
        signer.verify_confirmation(token, NOW + timedelta(days=7))
    # rotated: a link signed before still works while its secret is listed as previous
    assert Signer("next", ["current"]).verify_confirmation(token, NOW) == REF
    with pytest.raises(TokenError, match="signature does not match"):
        Signer("next").verify_confirmation(token, NOW)


def test_a_later_expiry_under_the_old_mac_and_the_other_kind_of_token_are_refused():
    signer = Signer("current")
    token = signer.confirmation(REF, NOW + timedelta(days=1))
    payload = decode(token.split(".")[0])
    stretched = encode(payload[:12] + (int.from_bytes(payload[12:], "big") + 86400 * 365)
                       .to_bytes(6, "big"))
    with pytest.raises(TokenError, match="signature does not match"):
        signer.verify_confirmation(f"{stretched}.{token.split('.')[1]}", NOW)
    with pytest.raises(TokenError):  # an unsubscribe token is not a confirmation
        signer.verify_confirmation(signer.token(REF), NOW)
    with pytest.raises(TokenError):  # nor the other way round
        signer.verify(token)
    for spelling in (token + "=", token.replace(".", ":"), " " + token, token[:-1], ""):
        with pytest.raises(TokenError):
            signer.verify_confirmation(spelling, NOW)


def test_a_rate_limit_counts_a_window_and_says_how_long_to_wait():
    limit = RateLimit(2, timedelta(hours=1))
    assert limit.hit("a", NOW) is None
    assert limit.hit("a", NOW + timedelta(minutes=10)) is None
    assert limit.hit("a", NOW + timedelta(minutes=20)) == 2400  # until the first is an hour old
    assert limit.hit("b", NOW + timedelta(minutes=20)) is None  # another key: its own count
    assert limit.hit("a", NOW + timedelta(hours=1)) is None
    assert RateLimit(0, timedelta(hours=1)).hit("a", NOW) is None  # 0: no limit


def test_a_rate_limit_remembers_a_bounded_number_of_keys():
    limit = RateLimit(1, timedelta(hours=1), max_keys=3)
    for key in "abcd":
        assert limit.hit(key, NOW) is None
    assert list(limit.events) == ["b", "c", "d"]  # the least recently seen went first
    assert limit.hit("d", NOW) == 3600


def test_the_signup_migration_keeps_every_reader_without_a_consent_record(engine):
    db = connect(engine.location, upgrade=False)
    try:
        number = next(m.number for m in MIGRATIONS if "signups" in m.what)
        for migration in MIGRATIONS[:number - 1]:  # the database as it was before
            with transaction(db):
                for statement in migration.statements(db.dialect):
                    db.execute(statement)
                _set_version(db, migration.number)
        db.execute("INSERT INTO subscribers (id, email, email_key, created_at, updated_at) "
                   "VALUES (4, 'old@example.com', 'old@example.com', 't', 't')")
        assert number in [m.number for m in migrate(db)]
        assert tuple(db.execute(f"SELECT id, status, {', '.join(CONSENT)} FROM subscribers"
                                ).fetchone()) == (4, "active", None, None, None, None, None)
        assert db.execute("SELECT count(*) FROM signups").fetchone()[0] == 0
    finally:
        db.close()


def test_what_a_client_writes_is_bounded_and_exported_as_text(project, run):
    """In-process: a user agent of 10,000 characters and a formula for one, a source
    that is not a word, and a name with a line break."""
    import io
    import json as json_module

    from pipeline.config import load_config
    from pipeline.delivery.providers.memory import MemoryProvider
    from pipeline.web import create_app
    from tests.conftest import SECRET

    config = load_config(project / "newsletter.toml", env={"NEWSLETTER_SECRET": SECRET})
    sink = MemoryProvider(config)
    app = create_app(config, lambda: NOW, new_provider=lambda: sink)

    def post(body: bytes, agent: str, content_type: str = "application/json") -> str:
        seen = {}
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/subscribe", "QUERY_STRING": "",
                   "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type,
                   "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": agent,
                   "wsgi.input": io.BytesIO(body)}
        b"".join(app(environ, lambda status, headers: seen.update(status=status)))
        return seen["status"]

    assert post(json_module.dumps({"email": "long@example.com", "source": "x y"}).encode(),
                "A" * 10_000) == "200 OK"
    assert post(b"email=formula%40example.com", "=HYPERLINK(\"http://evil.example\")",
                "application/x-www-form-urlencoded") == "200 OK"
    assert post(json_module.dumps({"email": "n@example.com", "name": "a\nb"}).encode(),
                "ua") == "400 Bad Request"
    assert [address for address, _ in sink.sent] == ["long@example.com", "formula@example.com"]
    db = connect(project / ".newsletter" / "newsletter.db")
    try:
        rows = db.execute("SELECT email, source, length(user_agent) FROM signups ORDER BY id"
                          ).fetchall()
        assert [tuple(r) for r in rows] == [("long@example.com", "api", 512),
                                            ("formula@example.com", "web", 33)]
        ref = db.execute("SELECT ref FROM signups WHERE id = 2").fetchone()[0]
    finally:
        db.close()
    token = Signer(SECRET).confirmation(ref, NOW + timedelta(days=1))
    seen = {}
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/confirm", "QUERY_STRING":
               f"token={token}", "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b"")}
    b"".join(app(environ, lambda status, headers: seen.update(status=status)))
    assert seen["status"] == "200 OK"
    assert run("audience", "export", "out.csv").exit_code == 0
    assert (project / "out.csv").read_text().splitlines()[1] == (
        "formula@example.com,,active,,2024-01-31T09:00:00+00:00,web,127.0.0.1,"
        "\"'=HYPERLINK(\"\"http://evil.example\"\")\",2024-01-31T09:00:00+00:00")
