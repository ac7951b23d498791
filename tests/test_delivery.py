"""Delivery through the outbox, a real SMTP server and a local SendGrid v3 server.

Assertions are on what the servers received: each subscriber exactly once, the
headers, the text part first, personalisation, and no secret anywhere."""

from __future__ import annotations

import email
from email import policy
from html import unescape as html_unescape
from pathlib import Path

import pytest

from pipeline.store import connect
from tests.conftest import SECRET, token_of
from tests.sendgrid_server import API_KEY

ISSUE = "2023-12-07-ai-productivity-09"
SUBJECT = "AI生产力快报｜09：Colab 直接调用 transformers"
READERS = 12


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def query(db: Path | str, sql: str) -> list[tuple]:
    """Rows of the project's database: the SQLite file or a PostgreSQL URL."""
    connection = connect(db)
    try:
        return [tuple(row) for row in connection.execute(sql).fetchall()]
    finally:
        connection.close()


def ledger(db: Path | str) -> dict[str, int]:
    return dict(query(db, "SELECT status, count(*) FROM deliveries GROUP BY status"))


def assert_proper_message(raw: bytes, to: str, name: str, db: Path
                          ) -> email.message.EmailMessage:
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = parse(raw)
    assert message["Subject"] == SUBJECT
    assert message["From"] == "AI生产力快报 <newsletter@example.com>"
    assert message["Reply-To"] == "editors@example.com"
    assert message["To"].addresses[0].addr_spec == to
    assert message["List-Id"] == "AI生产力快报 <newsletter.example.com>"
    assert message["Feedback-ID"] == f"{ISSUE}:newsletter.example.com:example.com"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].startswith(f"<{ISSUE}.") and message["Date"]
    https, mailto = [u.strip(" <>") for u in str(message["List-Unsubscribe"]).split(",")]
    token, _, issue = https.split("?token=")[1].partition("&")
    assert https.startswith("https://news.example.com/unsubscribe?token=")
    assert issue == f"issue={ISSUE}"  # for stats: which issue the reader left from
    assert token == token_of(db, to)  # the reader's own, not someone else's
    assert mailto == f"mailto:newsletter+unsubscribe@example.com?subject=unsubscribe%20{token}"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert f"你好，{name or '读者朋友'}：" in text
    assert f"你好，{name or '读者朋友'}：" in html
    assert f'href="{https.replace("&", "&amp;")}"' in html and f"退订：{https}" in text
    assert 'href="https://news.example.com/issues/2023-12-07-ai-productivity-09/"' in html
    assert "%%" not in html and "%%" not in text
    return message


def test_outbox_leaves_one_proper_eml_per_subscriber(run, engine, audience, project):
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"{ISSUE}: done through outbox: sent 12, failed 0, invalid 0, "
                             f"unknown 0, skipped 0, pending 0 of 12\n"
                             f"messages written to outbox/{ISSUE}/\n")
    files = sorted((project / "outbox" / ISSUE).glob("*.eml"))
    assert len(files) == READERS
    first = assert_proper_message(files[0].read_bytes(), "lin.xiaoyu@example.com", "林晓雨",
                                  audience)
    assert first["To"].addresses[0].display_name == "林晓雨"
    assert_proper_message(files[9].read_bytes(), "guo.yi@example.net", "", audience)  # no name
    assert ledger(audience) == {"sent": 12}


def test_sending_again_sends_nobody_twice(run, engine, audience, project):
    run("send", ISSUE, "--yes")
    again = run("send", ISSUE, "--yes")
    assert again.exit_code == 0
    assert again.stdout == f"{ISSUE}: already sent on 2023-12-06 to 12 readers; nothing to send\n"
    assert len(list((project / "outbox" / ISSUE).glob("*.eml"))) == READERS


def test_sendgrid_substitutions_escape_names_for_html_only(run, project, sendgrid):
    run("audience", "add", "tom@example.com", "--name", "<b>Tom & Jerry</b>")
    run("audience", "add", "ann@example.com", "--name", "Ann")
    assert run("send", ISSUE, "--yes").exit_code == 0
    people = {p["to"][0]["email"]: p["substitutions"] for b in sendgrid.bodies
              for p in b["personalizations"]}
    tom, ann = people["tom@example.com"], people["ann@example.com"]
    assert tom["%%name|读者朋友%%"] == "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"
    assert tom["%%text:name|读者朋友%%"] == "<b>Tom & Jerry</b>"
    assert ann["%%name|读者朋友%%"] == ann["%%text:name|读者朋友%%"] == "Ann"


def test_names_are_escaped_in_html_and_raw_in_text(run, project):
    run("audience", "add", "tom@example.com", "--name", "<b>Tom & Jerry</b>")
    assert run("send", ISSUE, "--yes").exit_code == 0
    message = parse(next((project / "outbox" / ISSUE).glob("*.eml")).read_bytes())
    assert "你好，&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;：" in message.get_body(("html",)).get_content()
    assert "你好，<b>Tom & Jerry</b>：" in message.get_body(("plain",)).get_content()
    assert message["To"].addresses[0].display_name == "<b>Tom & Jerry</b>"


def test_a_line_break_in_the_subject_is_rejected(run, audience, project):
    meta = project / "issues" / ISSUE / "issue.yaml"
    meta.write_text(meta.read_text().replace('subject: "AI生产力快报｜09：',
                                             'subject: "AI生产力快报｜09\\nBcc: all@evil.com：'))
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 1
    assert result.stderr == (f"issues/{ISSUE}/issue.yaml:3: the subject contains a line break; "
                             "write it on one line\n")
    assert not (project / "outbox").exists()


def test_dry_run_shows_the_plan_and_sends_nothing(run, engine, audience, project):
    result = run("send", ISSUE, "--dry-run")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[:3] == ["provider: outbox", "recipients: 12", "first message's headers:"]
    assert "To: =?utf-8?b?5p6X5pmT6Zuo?= <lin.xiaoyu@example.com>" in lines
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines
    assert not (project / "outbox").exists()
    assert ledger(audience) == {}


def test_send_asks_for_confirmation(run, audience, project):
    result = run("send", ISSUE, input="n\n")
    assert result.exit_code == 1
    assert "Send 2023-12-07-ai-productivity-09 to 12 subscribers through outbox? [y/N]" in \
        result.stderr
    assert not (project / "outbox").exists()
    yes = run("send", ISSUE, input="y\n")
    assert yes.exit_code == 0 and len(list((project / "outbox" / ISSUE).glob("*.eml"))) == 12


def test_test_send_goes_to_any_address_and_is_not_recorded(run, engine, audience, project):
    result = run("send", ISSUE, "--test", "--to", "editor@example.org", "--to", "me@example.net")
    assert result.exit_code == 0, result.output
    files = sorted((project / "outbox" / ISSUE).glob("test-*.eml"))
    assert len(files) == 2
    message = parse(files[0].read_bytes())
    assert message["Subject"] == "[TEST] " + SUBJECT
    assert message["X-Newsletter-Test"] == "yes"
    assert ledger(audience) == {}
    assert query(audience, "SELECT count(*) FROM sends") == [(0,)]


def test_sending_needs_the_secret(run, audience):
    run.env.pop("NEWSLETTER_SECRET")
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 4
    assert result.stderr == ("newsletter.toml: NEWSLETTER_SECRET is not set (the long random "
                             "string that signs unsubscribe links); export it, or put it in "
                             ".newsletter/env (mode 600)\n")


# --- SMTP ---------------------------------------------------------------------------


def test_smtp_delivers_each_subscriber_once_on_one_connection(run, engine, audience, smtp):
    run.env["NEWSLETTER_SMTP_BATCH_SIZE"] = "20"  # the whole audience in one batch
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3  # partial: one recipient refused
    assert result.stdout == (f"{ISSUE}: done through smtp: sent 11, failed 1, invalid 0, "
                             "unknown 0, skipped 0, pending 0 of 12\n"
                             f"`newsletter status {ISSUE}` lists the failed and invalid "
                             f"addresses; fix them, then `newsletter send {ISSUE} "
                             "--resend-failed`\n")
    recipients = [rcpt for _, rcpts, _ in smtp.messages for rcpt in rcpts]
    assert len(recipients) == 11 == len(set(recipients))
    assert "chen.mo@example.com" not in recipients
    assert smtp.sessions == 1  # one connection for the whole send
    for mail_from, (to,), raw in smtp.messages:
        assert mail_from == "newsletter@example.com"
        name = "" if to == "guo.yi@example.net" else parse(raw)["To"].addresses[0].display_name
        assert_proper_message(raw, to, name, audience)
    failed = query(audience, "SELECT email, error FROM deliveries WHERE status = 'failed'")
    assert failed == [("chen.mo@example.com", "550 5.1.1 mailbox unavailable")]


def test_smtp_with_starttls_and_login(run, audience, project, tmp_path):
    import trustme

    from tests.smtp_server import Sink, SMTPServer

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    sink = Sink()
    with SMTPServer(sink, tls_context=context, credentials=("mailer", "pa55-word")) as server:
        env = {"NEWSLETTER_PROVIDER": "smtp", "NEWSLETTER_SMTP_HOST": "127.0.0.1",
               "NEWSLETTER_SMTP_PORT": str(server.port), "NEWSLETTER_SMTP_SECURITY": "starttls",
               "NEWSLETTER_SMTP_USERNAME": "mailer", "NEWSLETTER_SMTP_CA_FILE":
               str(tmp_path / "ca.pem"), "SMTP_PASSWORD": "pa55-word"}
        result = run("send", ISSUE, "--yes", env=env)
    assert result.exit_code == 0, result.output
    # every connection (a batch of 10 each, two in flight) starts TLS and logs in
    assert len(sink.messages) == 12 and sink.logins == ["mailer", "mailer"]
    assert "pa55-word" not in result.output


def test_smtp_server_that_cannot_be_reached(run, audience):
    from tests.smtp_server import free_port

    run.env.update({"NEWSLETTER_PROVIDER": "smtp", "NEWSLETTER_SMTP_HOST": "127.0.0.1",
                    "NEWSLETTER_SMTP_PORT": str(free_port()), "NEWSLETTER_SMTP_SECURITY": "none"})
    test = run("send", ISSUE, "--test", "--to", "me@example.org")
    assert test.exit_code == 3
    assert test.stdout.startswith("test to me@example.org: retry (smtp: connection to "
                                  "127.0.0.1:")
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert "pending 12 of 12" in result.stdout  # nobody marked: the next run sends them
    assert len(run.sleep.waits) == 10  # five tries more for each batch in flight (two of 10)


def test_smtp_login_refused_stops_without_marking_anyone(run, audience, tmp_path):
    import ssl

    import trustme

    from tests.smtp_server import Sink, SMTPServer

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with SMTPServer(Sink(), tls_context=context, credentials=("mailer", "right")) as server:
        env = {"NEWSLETTER_PROVIDER": "smtp", "NEWSLETTER_SMTP_HOST": "127.0.0.1",
               "NEWSLETTER_SMTP_PORT": str(server.port), "NEWSLETTER_SMTP_USERNAME": "mailer",
               "NEWSLETTER_SMTP_CA_FILE": str(tmp_path / "ca.pem"), "SMTP_PASSWORD": "wrong"}
        result = run("send", ISSUE, "--yes", env=env)
        assert result.exit_code == 4  # wrong credentials: configuration
        assert result.stderr == ("the SMTP server refused the login (535); check "
                                 "smtp.username and SMTP_PASSWORD\n")
        untrusted = run("send", ISSUE, "--yes", env={**env, "NEWSLETTER_SMTP_CA_FILE": ""})
        assert untrusted.exit_code == 4
        assert untrusted.stderr.startswith("the SMTP server's certificate is not trusted (")
    assert ledger(audience) == {"pending": 12}


# --- SendGrid -----------------------------------------------------------------------


def test_sendgrid_receives_each_subscriber_once_with_substitutions(run, engine, audience,
                                                                  sendgrid, project):
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert sum(sendgrid.received.values()) == 12 and set(sendgrid.received.values()) == {1}
    (body,) = sendgrid.bodies
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["subject"] == SUBJECT
    assert body["from"] == {"email": "newsletter@example.com", "name": "AI生产力快报"}
    assert body["reply_to"] == {"email": "editors@example.com"}
    assert body["headers"] == {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                               "List-Id": "AI生产力快报 <newsletter.example.com>"}
    assert body["custom_args"] == {"issue": ISSUE}
    assert body["categories"] == ["newsletter"]
    html, text = body["content"][1]["value"], body["content"][0]["value"]
    first = body["personalizations"][0]
    assert first["to"] == [{"email": "lin.xiaoyu@example.com", "name": "林晓雨"}]
    assert first["custom_args"] == {"subscriber": "1"}
    subs = first["substitutions"]
    assert subs["%%name|读者朋友%%"] == "林晓雨" and subs["%%text:name|读者朋友%%"] == "林晓雨"
    url = html_unescape(subs["%%unsubscribe_url%%"])  # escaped for the HTML part
    assert first["headers"]["List-Unsubscribe"].startswith(f"<{url}>, <mailto:")
    assert "%%name|读者朋友%%" in html and "%%text:name|读者朋友%%" in text
    assert "%%web_url%%" not in html  # the same for everyone: filled once
    nameless = next(p for p in body["personalizations"] if "name" not in p["to"][0])
    assert nameless["substitutions"]["%%name|读者朋友%%"] == "读者朋友"
    ids = query(audience, "SELECT DISTINCT message_id FROM deliveries")
    assert len(ids) == 1 and len(ids[0][0]) > 10  # X-Message-Id, stored per recipient


def test_sendgrid_batches_of_at_most_the_batch_size(run, audience, sendgrid):
    run.env["NEWSLETTER_SENDGRID_BATCH_SIZE"] = "5"
    assert run("send", ISSUE, "--yes").exit_code == 0
    assert sorted(len(b["personalizations"]) for b in sendgrid.bodies) == [2, 5, 5]  # in flight
    assert sum(sendgrid.received.values()) == 12


def test_sendgrid_error_body_is_shown_and_the_batch_fails(run, engine, audience, sendgrid):
    run.env["NEWSLETTER_SENDGRID_BATCH_SIZE"] = "5"
    run.env["NEWSLETTER_DELIVERY_CONCURRENCY"] = "1"  # the second request is the second batch
    errors = [{"message": "The from address does not match a verified Sender Identity.",
               "field": "from", "help": "https://sendgrid.com/docs/for-developers/"}]
    sendgrid.faults = lambda n, body: (400, errors) if n == 2 else None
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3
    assert "sent 7, failed 5, invalid 0, unknown 0" in result.stdout
    failed = query(audience, "SELECT DISTINCT error FROM deliveries WHERE status = 'failed'")
    assert failed == [("SendGrid answered 400: The from address does not match a verified "
                       "Sender Identity. (field: from)",)]


def test_sendgrid_401_stops_without_marking_anyone(run, engine, audience, sendgrid):
    run.env["SENDGRID_API_KEY"] = "SG.wrong"
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 4  # a key SendGrid refuses is a configuration error
    assert result.stderr == ("SendGrid answered 401: The provided authorization grant is "
                             "invalid, expired, or revoked; check SENDGRID_API_KEY and its "
                             "permissions (mail send)\n")
    assert ledger(audience) == {"pending": 12}
    run.env["SENDGRID_API_KEY"] = API_KEY
    assert run("send", ISSUE, "--yes").exit_code == 0  # the next run sends everyone
    assert sum(sendgrid.received.values()) == 12


@pytest.mark.parametrize("fault", ["429", "500", "drop"])
def test_sendgrid_transient_faults_are_retried(run, audience, sendgrid, fault):
    sendgrid.faults = lambda n, body: fault if n <= 2 else None
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert sendgrid.requests == 3 and sum(sendgrid.received.values()) == 12
    assert len(run.sleep.waits) == 2
    if fault == "429":  # waits as X-RateLimit-Reset says (about a second here)
        assert all(0 < w <= 3 for w in run.sleep.waits)


def test_sendgrid_413_fails_the_batch(run, audience, sendgrid):
    sendgrid.faults = lambda n, body: (413, [{"message": "Payload Too Large"}])
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 3
    assert "failed 12" in result.stdout


def test_sendgrid_sandbox_and_asm(run, audience, sendgrid):
    run.env.update({"NEWSLETTER_SENDGRID_SANDBOX": "true", "NEWSLETTER_SENDGRID_ASM_GROUP_ID": "42"})
    assert run("send", ISSUE, "--yes").exit_code == 0
    body = sendgrid.bodies[0]
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["asm"] == {"group_id": 42}


def test_sendgrid_test_send(run, audience, sendgrid):
    result = run("send", ISSUE, "--test", "--to", "editor@example.org")
    assert result.exit_code == 0
    assert result.stdout.startswith("test to editor@example.org: sent (sendgrid: ")
    (body,) = sendgrid.bodies
    assert body["subject"] == "[TEST] " + SUBJECT and "test" in body["categories"]
    assert ledger(audience) == {}


def test_the_api_key_appears_nowhere(run, audience, sendgrid, project):
    outputs = [run("send", ISSUE, "--test", "--to", "e@example.org"),
               run("send", ISSUE, "--dry-run"), run("send", ISSUE, "--yes"),
               run("build", ISSUE)]
    for result in outputs:
        assert API_KEY not in result.output
        assert SECRET not in result.output
    for path in project.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert API_KEY.encode() not in data, path
            assert SECRET.encode() not in data, path
    assert API_KEY not in repr(sendgrid.bodies)


def test_sendgrid_without_a_key_is_a_config_error(run, audience, sendgrid):
    run.env.pop("SENDGRID_API_KEY")
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 4
    assert result.stderr == ("newsletter.toml: SENDGRID_API_KEY is not set (the SendGrid API "
                             "key, with mail send permission); export it, or put it in "
                             ".newsletter/env (mode 600)\n")
