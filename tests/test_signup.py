"""Signup with double opt-in, end to end: `newsletter serve` as a real process on
loopback, the outbox (or the local SendGrid server) as the provider, the database read
back; the welcome issue sent once, also across a link followed twice and a kill."""

from __future__ import annotations

import csv
import email
import json
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest

from pipeline.audience.tokens import Signer, decode
from pipeline.store import connect
from tests.conftest import SECRET, start_process, token_of, write_issue
from tests.smtp_server import free_port
from tests.test_unsubscribe import call

WELCOME = {
    "issue.yaml": 'number: 0\ntitle: "欢迎"\ndate: 2024-01-01\nid: welcome\nkind: welcome\n',
    "01-hello.md": "---\nkind: news\n---\n\n## 你好\n\n欢迎订阅。\n",
}
CHECK_INBOX = ("还差一步：如果 {} 可以接收AI生产力快报，一封带确认链接的邮件正在路上，"
               "打开它完成订阅。")
INVALID = "这个确认链接无效或已过期。请重新订阅，获取新的确认链接。"
AGENT = "signup-test/1.0"


@pytest.fixture
def welcome(project) -> Path:
    return write_issue(project / "issues" / "00-welcome", WELCOME)


class Serve:
    """`newsletter serve` in its own process; restartable with other settings."""

    def __init__(self, project: Path, env: dict[str, str]):
        self.project, self.env = project, env
        self.process = None
        self.base = ""

    def start(self, **env: str) -> Serve:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.process = start_process(self.project, ["serve", "--port", str(port)],
                                     self.base + "/healthz",
                                     {"NEWSLETTER_SECRET": SECRET, **self.env, **env})
        return self

    def stop(self, kill: bool = False) -> str:
        """Stops it; what it logged."""
        if self.process is None:
            return ""
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        _, err = self.process.communicate(timeout=10)
        self.process = None
        return err

    def post(self, path: str, fields: dict[str, str] | None = None, raw: bytes | None = None,
             content_type: str = "application/x-www-form-urlencoded"):
        from urllib.parse import urlencode

        data = raw if raw is not None else urlencode(fields or {}).encode()
        request = urllib.request.Request(self.base + path, data=data, method="POST",
                                         headers={"Content-Type": content_type,
                                                  "User-Agent": AGENT})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), dict(exc.headers)


@pytest.fixture
def serve(project, engine, welcome):
    server = Serve(project, engine.env)
    yield server.start()
    server.stop()


def outbox(project: Path, folder: str) -> list[Path]:
    return sorted((project / "outbox" / folder).glob("*.eml"))


def confirmation_link(project: Path, address: str) -> str:
    """The link of the latest confirmation mailed to address."""
    files = [p for p in outbox(project, "confirm") if address in p.name]
    message = email.message_from_bytes(files[-1].read_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == address
    assert message["List-Unsubscribe"] is None  # not of the list yet
    text = message.get_body(("plain",)).get_content()
    return re.search(r"https://news\.example\.com(/confirm\?token=[\w.-]+)", text)[1]


def reader(engine, address: str):
    rows = engine.query("SELECT status, consent_at, consent_source, consent_client, "
                        "consent_agent, confirmed_at FROM subscribers WHERE email_key = ?",
                        (address,))
    return rows[0] if rows else None


def test_subscribe_confirm_and_one_welcome(serve, engine, audience, project, run):
    address = "new.reader@example.com"
    status, body, _ = serve.post("/subscribe", {"email": address, "name": "新读者",
                                                "source": "archive"})
    assert status == 200 and CHECK_INBOX.format(address) in body
    assert reader(engine, address) is None  # nothing changes before the link is followed
    link = confirmation_link(project, address)

    status, body, _ = call(serve.base + link)  # a GET (a link scanner) confirms nothing
    assert status == 200 and f"确定把AI生产力快报发送到 {address} 吗？" in body
    assert '<form method="post"' in body and reader(engine, address) is None

    for _ in range(2):  # the button, then the same link again
        status, body, _ = serve.post(link)
        assert status == 200 and f"{address} 已订阅AI生产力快报，欢迎你！" in body
    state, consent_at, source, client, agent, confirmed_at = reader(engine, address)
    assert (state, source, client, agent) == ("active", "archive", "127.0.0.1", AGENT)
    assert consent_at <= confirmed_at
    welcomes = outbox(project, "welcome")
    assert [p.name for p in welcomes] == [next(p.name for p in welcomes)]
    assert address in welcomes[0].name
    message = email.message_from_bytes(welcomes[0].read_bytes(), policy=policy.default)
    assert message["Subject"] == "欢迎" and message["List-Unsubscribe"]
    assert engine.query("SELECT d.status FROM deliveries d JOIN sends s ON s.id = d.send_id "
                        "WHERE s.issue = 'welcome'") == [("sent",)]

    due = run("send", "--due")  # nothing left for cron: the welcome is not sent again
    assert due.exit_code == 0 and len(outbox(project, "welcome")) == 1
    assert run("audience", "export", "out.csv").exit_code == 0
    rows = {r["email"]: r for r in csv.DictReader((project / "out.csv").open(encoding="utf-8"))}
    assert (rows[address]["consent_source"], rows[address]["consent_client"],
            rows[address]["consent_agent"]) == ("archive", "127.0.0.1", AGENT)
    assert rows[address]["confirmed_at"] == confirmed_at
    assert rows["lin.xiaoyu@example.com"]["consent_at"] == ""  # imported, not signed up


def test_the_link_followed_many_times_at_once_makes_one_reader_and_one_welcome(
        serve, engine, project):
    from concurrent.futures import ThreadPoolExecutor

    address = "eager@example.com"
    serve.post("/subscribe", {"email": address})
    link = confirmation_link(project, address)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: serve.post(link)[0], range(8)))
    assert answers == [200] * 8
    assert engine.query("SELECT count(*) FROM subscribers WHERE email_key = ?",
                        (address,)) == [(1,)]
    assert len(outbox(project, "welcome")) == 1 and engine.statuses() == {"sent": 1}


def test_the_same_answer_for_a_reader_one_who_left_and_a_stranger(serve, engine, audience,
                                                                  run):
    assert run("audience", "remove", "chen.mo@example.com").exit_code == 0
    answers = set()
    for address in ("lin.xiaoyu@example.com", "chen.mo@example.com", "stranger@example.com"):
        status, body, headers = serve.post("/subscribe", {"email": address})
        answers.add((status, body.replace(address, "ADDRESS"), headers["Content-Type"]))
    assert len(answers) == 1
    assert reader(engine, "chen.mo@example.com")[0] == "unsubscribed"  # only a link brings back
    assert reader(engine, "stranger@example.com") is None
    assert len(outbox(serve.project, "confirm")) == 3


def test_json_for_a_sites_own_form(serve, engine, project):
    status, body, headers = serve.post("/subscribe", raw=json.dumps(
        {"email": "api.reader@example.com", "name": "API"}).encode(),
        content_type="application/json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"ok": True,
                                "message": CHECK_INBOX.format("api.reader@example.com")}
    assert engine.query("SELECT source, name FROM signups") == [("api", "API")]
    bad = serve.post("/subscribe", raw=b'{"email": "not an address"}',
                     content_type="application/json")
    assert bad[0] == 400 and json.loads(bad[1]) == {
        "ok": False, "message": "这不是一个有效的邮箱地址，请检查后再试。"}
    assert serve.post("/subscribe", raw=b"[1, 2", content_type="application/json")[0] == 400
    assert len(outbox(project, "confirm")) == 1


def test_a_filled_honeypot_gets_the_same_answer_and_nothing_is_sent(serve, engine, project):
    status, body, _ = serve.post("/subscribe", {"email": "bot@example.com",
                                                "website": "https://spam.example"})
    assert status == 200 and CHECK_INBOX.format("bot@example.com") in body
    assert engine.query("SELECT count(*) FROM signups") == [(0,)]
    assert not (project / "outbox" / "confirm").exists()


def test_limits_per_client_and_per_address_answer_429_with_retry_after(project, engine,
                                                                       welcome):
    server = Serve(project, {**engine.env, "NEWSLETTER_SIGNUP_PER_CLIENT": "3",
                             "NEWSLETTER_SIGNUP_PER_EMAIL": "1"}).start()
    try:
        assert server.post("/subscribe", {"email": "a@example.com"})[0] == 200
        status, body, headers = server.post("/subscribe", {"email": "A@example.com"})
        assert status == 429 and "请求太频繁了，请稍后再试。" in body
        assert 3500 <= int(headers["Retry-After"]) <= 3600
        assert server.post("/subscribe", {"email": "b@example.com"})[0] == 200
        status, _, headers = server.post("/subscribe", {"email": "c@example.com"})
        assert status == 429 and int(headers["Retry-After"]) > 0  # the client's fourth
    finally:
        server.stop()
    assert engine.query("SELECT email FROM signups ORDER BY id") == [("a@example.com",),
                                                                     ("b@example.com",)]
    assert len(outbox(project, "confirm")) == 2


def test_forged_altered_foreign_and_expired_links_change_nothing(serve, engine, project):
    address = "careful@example.com"
    serve.post("/subscribe", {"email": address})
    link = confirmation_link(project, address)
    token = link.split("token=")[1]
    ref = decode(token.split(".")[0])[:12]
    expired = Signer(SECRET).confirmation(ref, datetime.now(UTC) - timedelta(seconds=1))
    payload, mac = token.split(".")
    later = Signer(SECRET).confirmation(ref, datetime.now(UTC) + timedelta(days=30))
    bad = [
        expired,  # genuine, but its time has passed
        f"{later.split('.')[0]}.{mac}",  # the expiry moved, the MAC kept
        f"{payload}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",  # an altered MAC
        Signer("another-secret").confirmation(ref, datetime.now(UTC) + timedelta(days=1)),
        "x." + "A" * 20, "", token[:-3],
    ]
    for forged in bad:
        for answer in (call(f"{serve.base}/confirm?token={forged}"),
                       serve.post(f"/confirm?token={forged}")):
            assert answer[0] == 400 and INVALID in answer[1]
    assert reader(engine, address) is None
    assert engine.query("SELECT confirmed_at FROM signups") == [(None,)]
    assert not (project / "outbox" / "welcome").exists()


def test_an_unsubscribe_token_is_no_confirmation(serve, engine, audience, project):
    unsubscribe = token_of(engine.location, "lin.xiaoyu@example.com")
    assert serve.post(f"/confirm?token={unsubscribe}")[0] == 400


def test_a_reader_who_left_comes_back_only_through_a_new_confirmation(serve, engine,
                                                                      audience, project):
    address = "lin.xiaoyu@example.com"
    token = token_of(engine.location, address)
    status, body, _ = serve.post(f"/unsubscribe?token={token}", {"token": token})
    assert status == 200 and "重新订阅</button>" in body
    assert reader(engine, address)[0] == "unsubscribed"

    status, body, _ = serve.post(f"/unsubscribe?token={token}", {"action": "resubscribe"})
    assert status == 200 and CHECK_INBOX.format(address) in body
    assert reader(engine, address)[0] == "unsubscribed"  # not before the link
    assert engine.query("SELECT source FROM signups") == [("resubscribe",)]
    serve.post(confirmation_link(project, address))
    assert reader(engine, address)[:3:2] == ("active", "resubscribe")
    assert len(outbox(project, "welcome")) == 1  # new to the welcome: it had never had it


def signed_up(project: Path, engine, address: str) -> tuple[Serve, str]:
    """A signup of address through a serve that is then stopped: it, and the link."""
    server = Serve(project, engine.env).start()
    server.post("/subscribe", {"email": address})
    server.stop()
    return server, confirmation_link(project, address)


def test_a_welcome_the_provider_could_not_take_is_sent_by_the_next_send_due(
        project, engine, welcome, run):
    address = "patient@example.com"
    server, link = signed_up(project, engine, address)
    blocked = project / "blocked"
    blocked.write_text("a file where the outbox folder should be")
    server.start(NEWSLETTER_OUTBOX_PATH=str(blocked))
    assert server.post(link)[0] == 200
    log = server.stop()
    assert "welcome: the welcome to a new reader was not delivered now" in log
    assert reader(engine, address)[0] == "active"
    assert engine.statuses() == {"pending": 1}

    due = run("send", "--due")
    assert due.exit_code == 0, due.output
    assert "00-welcome: due at -; resuming" in due.stderr
    assert len(outbox(project, "welcome")) == 1 and engine.statuses() == {"sent": 1}
    server.start()
    try:
        assert server.post(link)[0] == 200  # the link again: nothing more
    finally:
        server.stop()
    assert run("send", "--due").exit_code == 0
    assert len(outbox(project, "welcome")) == 1


def test_serve_killed_while_the_welcome_is_at_the_provider_never_sends_it_twice(
        project, engine, welcome, run):
    from tests.sendgrid_server import API_KEY, SendGridServer

    address = "killed@example.com"
    server, link = signed_up(project, engine, address)
    with SendGridServer() as sg:
        sg.faults = lambda n, body: "slow"
        sg.delay = 30  # the welcome is held at the provider until serve is killed
        server.start(NEWSLETTER_PROVIDER="sendgrid", NEWSLETTER_SENDGRID_API_HOST=sg.url,
                     SENDGRID_API_KEY=API_KEY)
        def follow() -> None:
            try:
                server.post(link)
            except OSError:  # the server is killed before it answers
                pass

        threading.Thread(target=follow, daemon=True).start()
        deadline = time.monotonic() + 20
        while not sg.received[address] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sg.received[address] == 1
        server.stop(kill=True)
        assert reader(engine, address)[0] == "active"
        assert engine.statuses() == {"inflight": 1}  # claimed before the request

        server.start()  # the outbox again
        try:
            assert server.post(link)[0] == 200
        finally:
            server.stop()
        due = run("send", "--due")
        assert "1 recipients were in flight when a run stopped; marked unknown" in due.stderr
        assert engine.statuses() == {"unknown": 1}
        assert not (project / "outbox" / "welcome").exists()
        assert sg.received[address] == 1


def test_a_welcome_issue_is_never_sent_to_the_audience_nor_scheduled(run, audience, welcome,
                                                                     project):
    sent = run("send", "00-welcome", "--yes")
    assert sent.exit_code == 1
    assert sent.stderr == (
        "issues/00-welcome/issue.yaml:5: welcome: a welcome issue (kind: welcome) is sent by "
        "`newsletter serve` to each reader who confirms a signup, never to the whole "
        "audience; try it with `newsletter send 00-welcome --test --to ADDR`\n")
    scheduled = run("schedule", "00-welcome", "--at", "2030-01-01T09:00")
    assert scheduled.exit_code == 1 and "never on a schedule" in scheduled.stderr
    assert "00-welcome  welcome" in run("status").stdout
    test = run("send", "00-welcome", "--test", "--to", "editor@example.com")
    assert test.exit_code == 0, test.output
    assert not connect(audience).execute("SELECT count(*) FROM sends").fetchone()[0]


def test_the_archive_carries_the_form_and_never_the_welcome(run, audience, welcome, project):
    result = run("publish", "--out", "site")
    assert result.exit_code == 0, result.output
    page = (project / "site" / "index.html").read_text()
    assert '<form class="subscribe" method="post" action="https://news.example.com/subscribe">' \
        in page
    assert 'name="website"' in page and 'value="archive"' in page
    assert not (project / "site" / "welcome").exists()
    assert "欢迎" not in (project / "site" / "feed.xml").read_text()


def test_check_warns_of_a_schedule_in_a_welcome_issue(run, project, welcome):
    (welcome / "issue.yaml").write_text(WELCOME["issue.yaml"] + "send_at: 2024-02-01T09:00\n"
                                        "preheader: 你好\n", encoding="utf-8")
    result = run("check", "00-welcome", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [{
        "path": "issues/00-welcome/issue.yaml", "line": 6, "severity": "warning",
        "message": "'send_at' does nothing in a welcome issue: it goes to each reader who "
                   "confirms a signup, never on a schedule or the archive; remove the line"}]


def test_serve_without_an_address_for_the_confirmation_link_says_so(run):
    result = run("serve", env={"NEWSLETTER_UNSUBSCRIBE_URL": ""})
    assert result.exit_code == 4
    assert result.stderr == (
        "newsletter.toml: neither unsubscribe_url nor [signup] url is set; a confirmation "
        "link needs the address `newsletter serve` is reached at\n")
