"""One-click unsubscribe end to end, and suppressions that hold.

`newsletter serve` runs as a real process (waitress) on loopback."""

from __future__ import annotations

import email
import sqlite3
import urllib.error
import urllib.request
from email import policy

import pytest

from tests.conftest import SECRET, start_process, token_of
from tests.smtp_server import free_port

ISSUE = "2023-12-07-ai-productivity-09"
ROUNDUP = "2023-03-19-ai-weekly-roundup"
INVALID = "<p>这个退订链接无效。请使用最近一期邮件中的链接，或直接回复邮件告诉我们。</p>"


@pytest.fixture
def server(project, audience):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_process(project, ["serve", "--port", str(port)], base + "/healthz",
                            {"NEWSLETTER_SECRET": SECRET})
    yield base
    process.terminate()
    process.wait(timeout=10)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def call(url: str, data: bytes | None = None) -> tuple[int, str, dict]:
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def status_of(db, address: str) -> tuple:
    return sqlite3.connect(db).execute(
        "SELECT status, unsubscribe_source, unsubscribed_at FROM subscribers WHERE email_key = ?",
        (address,)).fetchone()


def test_get_shows_the_page_and_changes_nothing(server, audience):
    token = token_of(audience, "lin.xiaoyu@example.com")
    status, body, headers = call(f"{server}/unsubscribe?token={token}")
    assert status == 200
    assert "<h1>AI生产力快报</h1>" in body
    assert "确定让 lin.xiaoyu@example.com 不再接收AI生产力快报吗？" in body
    assert '<form method="post"' in body and "确认退订</button>" in body
    assert "Set-Cookie" not in headers
    assert status_of(audience, "lin.xiaoyu@example.com") == ("active", None, None)


def test_one_click_post_unsubscribes_and_repeating_is_harmless(server, audience):
    url = f"{server}/unsubscribe?token={token_of(audience, 'lin.xiaoyu@example.com')}"
    for _ in range(2):
        status, body, headers = call(url, b"List-Unsubscribe=One-Click")
        assert status == 200
        assert "已为 lin.xiaoyu@example.com 退订AI生产力快报" in body
        assert "Set-Cookie" not in headers
    state, source, when = status_of(audience, "lin.xiaoyu@example.com")
    assert (state, source) == ("unsubscribed", "one-click") and when


def test_the_page_button_unsubscribes_too(server, audience):
    t = token_of(audience, "chen.mo@example.com")
    status, _, _ = call(f"{server}/unsubscribe?token={t}", f"token={t}".encode())
    assert status == 200
    assert status_of(audience, "chen.mo@example.com")[:2] == ("unsubscribed", "web")


@pytest.mark.parametrize("bad", [
    lambda db: "forged." + "A" * 20,
    lambda db: "forged." + "A" * 27,
    lambda db: (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"))(  # altered signature
        token_of(db, "lin.xiaoyu@example.com")),
    lambda db: token_of(db, "lin.xiaoyu@example.com")[:30],  # truncated
    lambda db: token_of(db, "lin.xiaoyu@example.com", secret="another-secret"),  # foreign
    lambda db: "",
])
def test_bad_tokens_get_400_and_change_nothing(server, audience, bad):
    for data in (None, b"List-Unsubscribe=One-Click"):
        status, body, _ = call(f"{server}/unsubscribe?token={bad(audience)}", data)
        assert status == 400
        assert INVALID in body
    assert status_of(audience, "lin.xiaoyu@example.com") == ("active", None, None)


def test_a_ref_swapped_onto_another_signature_is_refused(server, audience):
    good = token_of(audience, "lin.xiaoyu@example.com")
    other = token_of(audience, "chen.mo@example.com")
    spliced = other.split(".")[0] + "." + good.split(".")[1]
    assert call(f"{server}/unsubscribe?token={spliced}", b"List-Unsubscribe=One-Click")[0] == 400
    assert status_of(audience, "chen.mo@example.com")[0] == "active"


def test_healthz(server):
    assert call(f"{server}/healthz")[:2] == (200, "ok\n")


def test_a_reader_who_clicks_in_an_outbox_message_is_absent_from_the_next_send(
        run, server, audience, project):
    assert run("send", ISSUE, "--yes").exit_code == 0
    raw = next((project / "outbox" / ISSUE).glob("*lin.xiaoyu*.eml")).read_bytes()
    message = email.message_from_bytes(raw, policy=policy.default)
    https = str(message["List-Unsubscribe"]).split(",")[0].strip(" <>")
    local = https.replace("https://news.example.com", server)
    assert call(local, b"List-Unsubscribe=One-Click")[0] == 200
    result = run("send", ROUNDUP, "--yes")
    assert result.exit_code == 0
    assert "sent 11, failed 0, invalid 0, unknown 0, skipped 0, pending 0 of 11" in result.stdout
    sent_to = [p.name for p in (project / "outbox" / ROUNDUP).glob("*.eml")]
    assert len(sent_to) == 11 and not [n for n in sent_to if "lin.xiaoyu" in n]


def test_a_send_that_resumes_skips_who_left_meanwhile(run, audience, sendgrid):
    run.env["NEWSLETTER_SENDGRID_BATCH_SIZE"] = "5"
    run.env["NEWSLETTER_DELIVERY_CONCURRENCY"] = "1"  # the first request is the first batch
    sendgrid.faults = lambda n, body: "500" if n > 1 else None
    assert run("send", ISSUE, "--yes").exit_code == 3  # first 5 sent, then gave up
    run("audience", "remove", "sun.qing@example.org")  # in the second batch
    sendgrid.faults = lambda n, body: None
    result = run("send", ISSUE, "--yes")
    assert "sent 11, failed 0, invalid 0, unknown 0, skipped 1, pending 0 of 12" in result.stdout
    assert "sun.qing@example.org" not in sendgrid.received
    assert sum(sendgrid.received.values()) == 11


def test_audience_unsubscribe_takes_a_token_or_an_address(run, audience):
    result = run("audience", "unsubscribe", token_of(audience, "zhou.an@example.org"))
    assert result.stdout == "zhou.an@example.org: unsubscribed\n"
    assert status_of(audience, "zhou.an@example.org")[:2] == ("unsubscribed", "mailto")
    assert run("audience", "unsubscribe", "Wang.Shu@example.net").exit_code == 0
    assert status_of(audience, "wang.shu@example.net")[0] == "unsubscribed"
    bad = run("audience", "unsubscribe", "garbage-token")
    assert bad.exit_code == 1
    assert bad.stderr == ("not a valid unsubscribe token (malformed token); copy it whole from "
                          "the mail's subject, or give the address\n")


def test_sync_pulls_every_suppression_list_in_pages(run, audience, sendgrid):
    sendgrid.suppressions["bounces"] = [
        {"email": f"bounced{n}@example.com", "created": 1700000000, "reason": "550"}
        for n in range(598)] + [{"email": "sun.qing@example.org", "created": 1700000000},
                                {"email": "ada.zhang@example.com", "created": 1700000000}]
    sendgrid.suppressions["spam_reports"] = [{"email": "Marco.Rossi@example.it",
                                              "created": 1700000000}]
    sendgrid.suppressions["unsubscribes"] = [{"email": "he.yun@example.com",
                                              "created": 1700000000}]
    result = run("audience", "sync")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("unsubscribes: 1 listed, 1 new\nbounces: 600 listed, 600 new\n"
                             "blocks: 0 listed, 0 new\ninvalid_emails: 0 listed, 0 new\n"
                             "spam_reports: 1 listed, 1 new\n")
    assert [r for r in sendgrid.suppression_requests if "bounces" in r] == [
        "/v3/suppression/bounces?limit=500&offset=0",
        "/v3/suppression/bounces?limit=500&offset=500"]
    assert run("audience", "sync").stdout.startswith("unsubscribes: 1 listed, 0 new\n")
    listed = run("audience", "list", "--status", "suppressed").stdout.splitlines()
    assert listed == ["sun.qing@example.org\t孙晴\tsuppressed (bounce)",
                      "ada.zhang@example.com\tAda Zhang\tsuppressed (bounce)",
                      "marco.rossi@example.it\tMarco Rossi\tsuppressed (spam)",
                      "he.yun@example.com\t何云\tsuppressed (unsubscribe)"]
    sent = run("send", ISSUE, "--yes")
    assert "sent 8, failed 0" in sent.stdout
    assert set(sendgrid.received) & {"he.yun@example.com", "sun.qing@example.org",
                                     "ada.zhang@example.com", "marco.rossi@example.it"} == set()


def test_serve_on_a_port_in_use_says_so(run, server):
    port = server.rsplit(":", 1)[1]
    result = run("serve", "--port", port)
    assert result.exit_code == 1
    assert result.stderr == (f"cannot listen on 127.0.0.1:{port}: Address already in use; "
                             "choose another --port or --host\n")
