"""Unsubscribe tokens that reveal nothing and can be rotated (issue 13, part 5).

A link carries the reader's random ref and a MAC of it: never the address, an id or the
sender. Every other spelling of a token is refused; a token signed with a previous
secret verifies while that secret is listed in NEWSLETTER_SECRET_PREVIOUS; links of
version 0.1.0 keep working. Every refusal is the "not valid" page and leaves the
database as it was. The app of `serve` is called in-process."""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
import io
import re
import sqlite3
from email import policy
from pathlib import Path
from urllib.parse import quote

import pytest

from pipeline.audience.tokens import MAC_BYTES, REF_BYTES, Signer, TokenError, decode, encode
from pipeline.config import load_config
from pipeline.store.database import MIGRATIONS, connect
from pipeline.web import create_app
from tests.conftest import NOW, SECRET, token_of

ISSUE = "2023-12-07-ai-productivity-09"
ROUNDUP = "2023-03-19-ai-weekly-roundup"
LIST_ID = "newsletter.example.com"
LIN = "lin.xiaoyu@example.com"
INVALID = "<p>这个退订链接无效。请使用最近一期邮件中的链接，或直接回复邮件告诉我们。</p>"
ASK = f"<p>确定让 {LIN} 不再接收AI生产力快报吗？</p>"
DONE = f"<p>已为 {LIN} 退订AI生产力快报，你不会再收到新的一期。</p>"
NEW_SECRET = "rotated-secret-9d2e71"
TOKEN = re.compile(r"[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{20}")


def serve(project: Path, **env: str):
    """The app of `newsletter serve` with NEWSLETTER_SECRET=SECRET unless env says else."""
    config = load_config(project / "newsletter.toml", env={"NEWSLETTER_SECRET": SECRET, **env})
    return create_app(config, lambda: NOW)


def call(app, token: str, body: bytes | None = None) -> tuple[str, str]:
    """GET (or POST body) /unsubscribe?token=…, the token sent exactly as given."""
    seen = {}
    data = b"" if body is None else body
    environ = {"REQUEST_METHOD": "GET" if body is None else "POST",
               "PATH_INFO": "/unsubscribe", "QUERY_STRING": "token=" + quote(token, safe=""),
               "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data)}
    page = b"".join(app(environ, lambda status, headers: seen.update(status=status)))
    return seen["status"], page.decode("utf-8")


ONE_CLICK = b"List-Unsubscribe=One-Click"


def snapshot(db: Path) -> list:
    connection = sqlite3.connect(db)
    try:
        return [connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("subscribers", "suppressions")]
    finally:
        connection.close()


def state(db: Path, address: str) -> tuple:
    return sqlite3.connect(db).execute(
        "SELECT status, unsubscribe_source FROM subscribers WHERE email_key = ?",
        (address,)).fetchone()


def assert_invalid(answer: tuple[str, str]) -> None:
    status, page = answer
    assert status == "400 Bad Request"
    assert INVALID in page and "<form" not in page


def assert_refused(app, db: Path, token: str) -> None:
    """The "not valid" page for GET and both POSTs, and no change in the database."""
    before = snapshot(db)
    for body in (None, ONE_CLICK, b"token=" + quote(token, safe="").encode()):
        assert_invalid(call(app, token, body))
    assert snapshot(db) == before


def links(project: Path, issue: str = ISSUE) -> dict[str, tuple[str, str]]:
    """Each outbox message's (https link, mailto link), by address."""
    out = {}
    for path in (project / "outbox" / issue).glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        https, mailto = [u.strip(" <>") for u in str(message["List-Unsubscribe"]).split(",")]
        out[message["To"].addresses[0].addr_spec.lower()] = (https, mailto)
    return out


def token_in(https: str) -> str:
    return https.split("?token=")[1].partition("&issue=")[0]


def refs(db: Path) -> dict[str, bytes]:
    return dict(sqlite3.connect(db).execute("SELECT email_key, ref FROM subscribers"))


def base64_forms(address: str) -> set[str]:
    """Every run of base64 characters the address's bytes alone decide, at each of the
    three alignments, in both alphabets: what an encoding of it would contain."""
    forms = set()
    for shift in range(3):
        for encoder in (base64.b64encode, base64.urlsafe_b64encode):
            text = encoder(b"\0" * shift + address.encode()).decode()
            forms.add(text[4 if shift else 0:-4])
    return forms


# --- what a token shows ----------------------------------------------------------------


def test_a_token_is_the_readers_random_ref_and_a_mac_and_shows_nothing_of_the_address(
        run, audience, project):
    assert run("send", ISSUE, "--yes").exit_code == 0
    sent, stored = links(project), refs(audience)
    assert len(sent) == 12
    for address, (https, mailto) in sent.items():
        token = token_in(https)
        assert TOKEN.fullmatch(token), token
        assert decode(token.split(".")[0], REF_BYTES) == stored[address]
        assert mailto == f"mailto:newsletter+unsubscribe@example.com?subject=unsubscribe%20{token}"
        for shown in (https, mailto):
            assert address not in shown.lower()
            local = address.split("@")[0]
            assert local not in shown.lower()
            for form in base64_forms(address) | base64_forms(f"{LIST_ID}\x1f{address}"):
                assert form not in shown, (address, form)
        for part in token.split("."):
            assert address.encode() not in base64.urlsafe_b64decode(part + "==")
    tokens = [token_in(https) for https, _ in sent.values()]
    assert len(set(tokens)) == 12
    # two readers' tokens are unrelated: no shared beginnings (random: a chance of about
    # 1 in 10^5 that two of 12 share 4 characters), and not in the order of sign-up
    for part in (0, 1):
        starts = [t.split(".")[part][:4] for t in tokens]
        assert len(set(starts)) == 12, starts
    by_id = [row[0] for row in sqlite3.connect(audience).execute(
        "SELECT ref FROM subscribers ORDER BY id")]
    assert by_id != sorted(by_id) and by_id != sorted(by_id, reverse=True)


def test_the_same_address_in_another_audience_has_an_unrelated_token(run, audience, project):
    other = project / "other.db"
    assert run("audience", "import", "subscribers.csv",
               env={"NEWSLETTER_DATABASE": str(other)}).exit_code == 0
    mine, theirs = token_of(audience, LIN), token_of(other, LIN)
    assert mine.split(".")[0] != theirs.split(".")[0] and mine.split(".")[1] != theirs.split(".")[1]
    # a token of one audience names nobody in the other, although the secret is the same
    assert_invalid(call(serve(project), theirs))


def test_a_dry_run_and_a_test_send_never_show_a_readers_token(run, audience, project):
    result = run("send", ISSUE, "--dry-run")
    assert f"?token=TOKEN&issue={ISSUE}>, <mailto:newsletter+unsubscribe@example.com?subject=unsubscribe%20TOKEN>" in \
        result.stdout.replace("\n", "")
    tokens = [token_of(audience, address) for address in refs(audience)]
    assert not [t for t in tokens if t in result.stdout]
    test = run("send", ISSUE, "--test", "--to", LIN, "--to", "stranger@example.org")
    assert test.exit_code == 0, test.output
    sent = {}
    for path in (project / "outbox" / ISSUE).glob("test-*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        https = str(message["List-Unsubscribe"]).split(",")[0].strip(" <>")
        sent[message["To"].addresses[0].addr_spec] = token_in(https)
    # a reader's test message has their own link; anyone else's leads to the "not valid" page
    assert sent[LIN] == token_of(audience, LIN)
    assert TOKEN.fullmatch(sent["stranger@example.org"])
    assert sent["stranger@example.org"] not in tokens
    app = serve(project)
    assert call(app, sent[LIN])[0] == "200 OK"
    assert_refused(app, audience, sent["stranger@example.org"])


# --- one spelling only -------------------------------------------------------------------


def test_a_token_has_one_spelling_and_decode_refuses_every_other():
    # 12 and 15 bytes are whole groups of three: no unused bits, so each of the 64 last
    # characters decodes to different bytes and no two spellings are equivalent
    ref = bytes(range(REF_BYTES))
    for size, text in ((REF_BYTES, encode(ref)), (MAC_BYTES, encode(bytes(MAC_BYTES)))):
        assert len(text) * 6 == size * 8
        variants = {decode(text[:-1] + c, size) for c in
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"}
        assert len(variants) == 64
    assert decode("AA") == b"\0"
    for bad in ["AB", "AP", "AAB", "AA==", "AA=", "A", "+w", "/w", "A A", " AA", "AA\n", "",
                "ÀA", "AA" + "\u00a0"]:
        with pytest.raises(TokenError, match="^malformed token$"):
            decode(bad)
    with pytest.raises(TokenError, match="^malformed token$"):
        decode(encode(ref), REF_BYTES + 3)
    signer = Signer(SECRET)
    token = signer.token(ref)
    assert signer.verify(token).ref == ref
    for bad in [token + "=", token.replace(".", ".="), token[:-1], token + "A", "." + token,
                token + ".", token.replace(".", ":"), token.replace(".", ".."), ""]:
        with pytest.raises(TokenError, match="^malformed token$"):
            signer.verify(bad)
    with pytest.raises(TokenError, match="^the token's signature does not match$"):
        signer.verify(token.swapcase())


def other_spellings(token: str) -> list[str]:
    ref, mac = token.split(".")
    return [
        token + "=", token + "==", f"{ref}=.{mac}", f"{ref}.{mac}=",      # padding
        " " + token, token + " ", token + "\n", token + "\r\n",           # white space
        f"{ref[:8]} {ref[8:]}.{mac}", f"{ref}.{mac[:10]}\t{mac[10:]}", f"{ref} .{mac}",
        token[:-1], token + "A", token[1:], f"{ref[:-1]}.{mac}", f"{ref}A.{mac}",  # length
        token.replace("-", "+"), token.replace("_", "/"),                 # base64's alphabet
        token.replace("-", "+").replace("_", "/"),
        token.replace("-", "\u2010"), token.replace(".", "\uff0e"),       # look-alikes
        token.replace(".", ","), token.replace(".", ".."), ref + mac,    # the separator
        token.swapcase(), f"{mac}.{ref}",
    ]


def test_every_other_spelling_of_a_good_token_is_refused_and_changes_nothing(
        audience, project):
    # lin's ref, set to bytes whose encoding holds both '-' and '_'
    ref = b"\xfb\xef\xbe\xff\xff\xff" * 2
    connection = connect(audience)
    connection.execute("UPDATE subscribers SET ref = ? WHERE email_key = ?", (ref, LIN))
    connection.close()
    token = Signer(SECRET).token(ref)
    assert token.startswith("----____----____.") and token == token_of(audience, LIN)
    app = serve(project)
    status, page = call(app, token)
    assert status == "200 OK" and ASK in page
    for bad in other_spellings(token):
        assert bad != token
        assert_refused(app, audience, bad)
    assert state(audience, LIN) == ("active", None)


@pytest.mark.parametrize("bad", [
    lambda t: "A" * 16 + "." + t.split(".")[1],  # another ref under lin's MAC
    lambda t: t.split(".")[0] + "." + "A" * 20,  # lin's ref, a forged MAC
    lambda t: (lambda r, m: f"{r}.{m[:-1]}{'B' if m[-1] == 'A' else 'A'}")(*t.split(".")),
    lambda t: Signer("another-secret").token(decode(t.split(".")[0], REF_BYTES)),
    lambda t: "",
    lambda t: "." * 37,
])
def test_a_forged_or_altered_token_is_refused_and_changes_nothing(audience, project, bad):
    app = serve(project)
    assert_refused(app, audience, bad(token_of(audience, LIN)))
    assert state(audience, LIN) == ("active", None)


def test_a_forged_token_is_refused_before_the_database_is_opened(project):
    database = project / "nowhere" / "newsletter.db"
    app = serve(project, NEWSLETTER_DATABASE=str(database))
    forged = Signer("another-secret").token(bytes(REF_BYTES))
    for token in (forged, "A" * 16 + "." + "A" * 20, "garbage"):
        assert_invalid(call(app, token, ONE_CLICK))
    assert not database.parent.exists()


# --- links that outlive a change ----------------------------------------------------------


def test_a_new_sender_address_keeps_every_link_valid(run, audience, project):
    assert run("send", ISSUE, "--yes").exit_code == 0
    token = token_in(links(project)[LIN][0])
    moved = {"NEWSLETTER_SENDER_EMAIL": "letters@example.org"}
    run.env.update(moved)
    assert run("send", ROUNDUP, "--yes").exit_code == 0
    assert token_in(links(project, ROUNDUP)[LIN][0]) == token  # the sender is not in it
    app = serve(project, **moved)
    status, page = call(app, token)
    assert status == "200 OK" and ASK in page
    status, page = call(app, token, ONE_CLICK)
    assert status == "200 OK" and DONE in page
    assert state(audience, LIN) == ("unsubscribed", "one-click")


def test_rotation_links_of_a_previous_secret_work_while_it_is_listed(run, audience, project):
    assert run("send", ISSUE, "--yes").exit_code == 0  # signed with SECRET
    old = {address: token_in(https) for address, (https, _) in links(project).items()}
    rotated = {"NEWSLETTER_SECRET": NEW_SECRET,
               "NEWSLETTER_SECRET_PREVIOUS": f"an-older-one, {SECRET}"}
    app = serve(project, **rotated)
    status, page = call(app, old[LIN])
    assert status == "200 OK" and ASK in page
    # new links use the current secret only
    run.env.update(rotated)
    assert run("send", ROUNDUP, "--yes").exit_code == 0
    new = token_in(links(project, ROUNDUP)[LIN][0])
    assert new == token_of(audience, LIN, secret=NEW_SECRET) != old[LIN]
    assert_invalid(call(serve(project), new))  # not SECRET's
    assert call(app, new)[0] == "200 OK"
    # the previous secret taken off the list: its links are refused, nothing changes
    current_only = serve(project, NEWSLETTER_SECRET=NEW_SECRET)
    assert_refused(current_only, audience, old[LIN])
    assert call(current_only, new)[0] == "200 OK"
    # while listed, one-click and the mailto subject work with the old links
    status, page = call(app, old[LIN], ONE_CLICK)
    assert status == "200 OK" and DONE in page
    assert state(audience, LIN) == ("unsubscribed", "one-click")
    result = run("audience", "unsubscribe", old["chen.mo@example.com"])
    assert result.stdout == "chen.mo@example.com: unsubscribed\n"
    refused = run("audience", "unsubscribe", old["zhou.an@example.org"],
                  env={"NEWSLETTER_SECRET_PREVIOUS": ""})
    assert refused.exit_code == 1
    assert refused.stderr == ("not a valid unsubscribe token (the token's signature does not "
                              "match); copy it whole from the mail's subject, or give the "
                              "address\n")
    assert state(audience, "zhou.an@example.org") == ("active", None)


def test_previous_secrets_come_from_the_private_env_file_and_are_never_shown(
        run, audience, project):
    env_file = project / ".newsletter" / "env"
    env_file.write_text(f"NEWSLETTER_SECRET={NEW_SECRET}\nNEWSLETTER_SECRET_PREVIOUS={SECRET}\n")
    env_file.chmod(0o600)
    config = load_config(project / "newsletter.toml", env={})
    assert config.previous_secrets == (SECRET,)
    assert SECRET not in repr(config) and NEW_SECRET not in repr(config)
    old = token_of(audience, LIN)
    assert call(create_app(config, lambda: NOW), old)[0] == "200 OK"
    run.env.clear()  # the secrets come from the file alone
    outputs = [run("send", ISSUE, "--dry-run"), run("send", ISSUE, "--yes"),
               run("audience", "unsubscribe", old), run("status", ISSUE)]
    assert outputs[2].stdout == f"{LIN}: unsubscribed\n"
    for result in outputs:
        assert SECRET not in result.output and NEW_SECRET not in result.output


# --- readers who are gone; links sent by version 0.1.0 ------------------------------------


def test_a_deleted_readers_link_is_refused_and_nothing_is_suppressed(run, audience, project):
    token = token_of(audience, LIN)
    sqlite3.connect(audience, isolation_level=None).execute(
        "DELETE FROM subscribers WHERE email_key = ?", (LIN,))
    assert_refused(serve(project), audience, token)
    result = run("audience", "unsubscribe", token)
    assert result.exit_code == 1
    assert result.stderr == ("this unsubscribe token names no reader in the audience (deleted "
                             "from the database?); give the address instead\n")
    assert snapshot(audience)[1] == []  # no suppression either


def legacy_token(address: str, secret: str = SECRET, list_id: str = LIST_ID) -> str:
    """A token as version 0.1.0 wrote it: the list and the address, and their HMAC."""
    key = hashlib.sha256(b"newsletter-unsubscribe\x00" + secret.encode()).digest()
    payload = f"{list_id}\x1f{address.lower()}".encode()
    return f"{encode(payload)}.{encode(hmac.digest(key, payload, 'sha256')[:20])}"


def test_links_sent_by_version_0_1_0_still_unsubscribe(run, audience, project):
    app = serve(project)
    status, page = call(app, legacy_token(LIN))
    assert status == "200 OK" and ASK in page
    status, page = call(app, legacy_token(LIN), ONE_CLICK)
    assert status == "200 OK" and DONE in page
    assert state(audience, LIN) == ("unsubscribed", "one-click")
    # signed with a secret since rotated out of NEWSLETTER_SECRET, but still listed
    rotated = serve(project, NEWSLETTER_SECRET=NEW_SECRET, NEWSLETTER_SECRET_PREVIOUS=SECRET)
    assert call(rotated, legacy_token("chen.mo@example.com"), ONE_CLICK)[0] == "200 OK"
    assert state(audience, "chen.mo@example.com") == ("unsubscribed", "one-click")
    result = run("audience", "unsubscribe", legacy_token("zhou.an@example.org"))
    assert result.stdout == "zhou.an@example.org: unsubscribed\n"


def test_a_link_of_version_0_1_0_is_refused_unless_genuine_canonical_and_of_this_list(
        audience, project):
    good = legacy_token(LIN)
    payload, mac = good.split(".")
    # 20 bytes are 27 characters with 2 unused bits: a last character that differs only
    # there decodes to the same bytes, a second spelling that is refused
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = mac[:-1] + alphabet[alphabet.index(mac[-1]) ^ 1]
    assert base64.urlsafe_b64decode(twin + "=") == base64.urlsafe_b64decode(mac + "=")
    app = serve(project)
    for bad in [f"{payload}.{twin}", good + "=", f"{payload}=.{mac}", " " + good,
                good.replace("-", "+").replace("_", "/") if "-" in good or "_" in good
                else good + "\t",
                legacy_token(LIN, secret="another-secret"),
                legacy_token(LIN, list_id="other.example.org"),
                legacy_token("nobody@example.com")]:  # never a reader: not suppressed either
        assert_refused(app, audience, bad)
    assert state(audience, LIN) == ("active", None)


# --- the migration ---------------------------------------------------------------------


def test_migration_3_gives_every_reader_a_ref_of_their_own(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(f"{MIGRATIONS[0].sqlite}; {MIGRATIONS[1].sqlite}; "
                    "PRAGMA user_version = 2;")
    old.executemany(
        "INSERT INTO subscribers (id, email, email_key, name, status, created_at, updated_at, "
        "unsubscribed_at, unsubscribe_source) VALUES (?, ?, ?, ?, ?, 't', 't', ?, ?)",
        [(3, "A@example.com", "a@example.com", "A", "active", None, None),
         (7, "b@example.com", "b@example.com", "", "unsubscribed", "u", "web"),
         (9, "c@example.com", "c@example.com", "C", "active", None, None)])
    old.close()
    db = connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    rows = db.execute("SELECT id, email, email_key, name, status, unsubscribed_at, "
                      "unsubscribe_source, ref FROM subscribers ORDER BY id").fetchall()
    assert [tuple(r)[:7] for r in rows] == [
        (3, "A@example.com", "a@example.com", "A", "active", None, None),
        (7, "b@example.com", "b@example.com", "", "unsubscribed", "u", "web"),
        (9, "c@example.com", "c@example.com", "C", "active", None, None)]
    found = [r["ref"] for r in rows]
    assert all(isinstance(r, bytes) and len(r) == REF_BYTES for r in found)
    assert len(set(found)) == 3
    # a row written by other means gets a ref too; a ref is unique, 12 bytes, a blob
    db.execute("INSERT INTO subscribers (email, email_key, created_at, updated_at) "
               "VALUES ('d@example.com', 'd@example.com', 't', 't')")
    assert len(db.execute("SELECT ref FROM subscribers WHERE id = 10").fetchone()[0]) == 12
    for ref in (found[0], b"short", "x" * 12):
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("UPDATE subscribers SET ref = ? WHERE id = 9", (ref,))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_no_new_token_begins_with_a_dash_and_an_older_one_goes_after_two(run, audience):
    """base64url has '-': a token beginning with it looks like an option to a command
    line, so no new ref makes one; one made before goes after `--`."""
    import sqlite3

    from pipeline.audience.tokens import encode, new_ref

    assert not any(encode(new_ref()).startswith("-") for _ in range(5000))  # 1 in 64 before
    db = sqlite3.connect(audience)
    db.execute("UPDATE subscribers SET ref = ? WHERE email_key = 'lin.xiaoyu@example.com'",
               (b"\xfb" + b"\x00" * 11,))  # base64url of 0xfb… begins with '-'
    db.commit()
    db.close()
    token = token_of(audience, "lin.xiaoyu@example.com")
    assert token.startswith("-")
    result = run("audience", "unsubscribe", "--", token)
    assert result.exit_code == 0, result.output
    assert result.stdout == "lin.xiaoyu@example.com: unsubscribed\n"


def test_the_keyed_mac_is_hmac_sha256():
    """Signer's HMAC, its key's states made once, is hmac.digest's: keys shorter and longer
    than SHA-256's block, messages of any length."""
    import hmac
    import secrets

    from pipeline.audience.tokens import Keyed

    for key_length in (0, 1, 32, 63, 64, 65, 200):
        key = secrets.token_bytes(key_length)
        for prefix in (b"", b"unsubscribe\0"):
            keyed = Keyed(key, prefix)
            for size in (0, 1, 12, 55, 56, 64, 1000):
                message = secrets.token_bytes(size)
                assert keyed.digest(message) == hmac.digest(key, prefix + message, "sha256")
