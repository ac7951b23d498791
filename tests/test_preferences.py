"""The preference page end to end: [topics] in newsletter.toml, the footer's link in an
outbox message, `newsletter serve` as a real process on loopback changing exactly the
topic tags, an issue for one topic reaching only those who chose it; unsubscribes from
an issue's link counted in that issue's stats; tags through export and import."""

from __future__ import annotations

import csv
import email
import re
from email import policy
from html import unescape
from urllib.parse import urlencode, urlsplit

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError, ExitStatus
from tests.test_segments import tagged_audience
from tests.test_signup import Serve
from tests.test_unsubscribe import call

ISSUE = "2023-12-07-ai-productivity-09"  # its id is its folder's name
ROUNDUP = "2023-03-19-ai-weekly-roundup"
TOPICS = '\n[topics]\nai = "AI 工具"\nresearch = "研究前沿"\n'
INVALID = "这个链接无效。请使用最近一期邮件中的“订阅偏好”链接，或直接回复邮件告诉我们。"


@pytest.fixture
def topics(project):
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + TOPICS, encoding="utf-8")
    return project


@pytest.fixture
def serve(topics, engine):
    server = Serve(topics, engine.env)
    yield server.start()
    server.stop()


def message_to(project, issue: str, address: str) -> email.message.EmailMessage:
    [path] = [p for p in (project / "outbox" / issue).glob("*.eml") if address in p.name]
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def footer_links(message, name: str) -> tuple[str, str]:
    """The link labelled ``name`` in the footer: (from the text part, from the HTML)."""
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    in_text = re.search(rf"^{name}：(\S+)$", text, re.M)[1]
    in_html = unescape(re.search(rf'<a href="([^"]+)"[^>]*>{name}</a>', html)[1])
    return in_text, in_html


def tags(engine, address: str) -> list[str]:
    return [tag for (tag,) in engine.query(
        "SELECT t.tag FROM subscriber_tags t JOIN subscribers s ON s.id = t.subscriber_id "
        "WHERE s.email_key = ? ORDER BY t.tag", (address,))]


def local(url: str, base: str) -> str:
    """A link of the mail (https://news.example.com/…) as served on loopback."""
    parts = urlsplit(url)
    assert parts.netloc == "news.example.com"
    return f"{base}{parts.path}?{parts.query}"


def checked(page: str) -> list[str]:
    return re.findall(r'name="topic" value="([^"]+)" checked', page)


def test_the_footer_link_opens_the_page_and_choosing_changes_exactly_the_topic_tags(
        serve, engine, run, topics):
    tagged_audience(run, topics)  # chen.mo: ai, paused
    assert run("send", ISSUE, "--yes").exit_code == 0
    message = message_to(topics, ISSUE, "chen.mo@example.com")
    in_text, in_html = footer_links(message, "订阅偏好")
    assert in_text == in_html and in_text.startswith(
        "https://news.example.com/preferences?token=")

    status, page, headers = call(local(in_text, serve.base))
    assert status == 200 and "Set-Cookie" not in headers
    assert "选择AI生产力快报发送给 chen.mo@example.com 的主题：" in page
    assert '<label><input type="checkbox" name="topic" value="ai" checked> AI 工具</label>' in page
    assert checked(page) == ["ai"]
    token = re.search(r'name="token" value="([^"]+)"', page)[1]
    assert f'<a href="https://news.example.com/unsubscribe?token={token}">退订</a>' in page
    assert tags(engine, "chen.mo@example.com") == ["ai", "paused"]  # a GET changes nothing

    # research instead of ai; a value that is not a topic is passed over
    status, page, _ = serve.post("/preferences", [("token", token), ("topic", "research"),
                                                  ("topic", "paused-too")])
    assert status == 200 and "已保存：chen.mo@example.com 会收到下面勾选的主题。" in page
    assert checked(page) == ["research"]
    assert tags(engine, "chen.mo@example.com") == ["paused", "research"]  # paused untouched
    assert tags(engine, "lin.xiaoyu@example.com") == ["ai", "research"]  # nobody else's

    # an issue for ai: chen.mo chose it no more; wang.shu (ai, design) gets it
    meta = topics / "issues" / ROUNDUP / "issue.yaml"
    meta.write_text(meta.read_text(encoding="utf-8") + "audience: {tags: [ai]}\n",
                    encoding="utf-8")
    assert run("send", ROUNDUP, "--yes").exit_code == 0
    received = [p.name for p in (topics / "outbox" / ROUNDUP).glob("*.eml")]
    assert len(received) == 2 and not any("chen.mo@example.com" in n for n in received)
    assert any("lin.xiaoyu@example.com" in n for n in received)
    assert any("wang.shu@example.net" in n for n in received)

    # choosing nothing removes both topics, and only them
    assert serve.post("/preferences", [("token", token)])[0] == 200
    assert tags(engine, "chen.mo@example.com") == ["paused"]


def test_a_forged_token_changes_nothing(serve, engine, run, topics, audience):
    assert run("audience", "tag", "lin.xiaoyu@example.com", "ai").exit_code == 0
    assert run("send", ISSUE, "--yes").exit_code == 0
    link, _ = footer_links(message_to(topics, ISSUE, "lin.xiaoyu@example.com"), "订阅偏好")
    token = link.partition("token=")[2]
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for url in (f"{serve.base}/preferences?token={forged}", f"{serve.base}/preferences"):
        status, page, _ = call(url)
        assert status == 400 and INVALID in page and 'name="topic"' not in page
    for fields in ([("token", forged), ("topic", "research")],  # forged
                   [("token", token + "x"), ("topic", "research")],  # altered
                   [("topic", "research")]):  # no token
        status, page, _ = serve.post("/preferences", fields)
        assert status == 400 and INVALID in page
    # the token only in the query string (a link, another site's form): not enough
    status, page, _ = serve.post(f"/preferences?token={token}", [("topic", "research")])
    assert status == 400 and INVALID in page
    assert tags(engine, "lin.xiaoyu@example.com") == ["ai"]


def test_without_topics_no_link_and_no_page(run, audience, project):
    """The publication without [topics]: no preferences link in the mail; serve has no
    such page."""
    assert run("send", ISSUE, "--yes").exit_code == 0
    message = message_to(project, ISSUE, "lin.xiaoyu@example.com")
    assert "preferences" not in message.get_body(("plain",)).get_content()
    assert "preferences" not in message.get_body(("html",)).get_content()
    server = Serve(project, {}).start()
    try:
        assert call(f"{server.base}/preferences?token=x")[0] == 404
    finally:
        log = server.stop()
    assert "preferences" not in log


def test_serve_names_every_route_it_answers(serve):
    log = serve.stop()
    base = serve.base
    assert (f"serving on {base}: unsubscribe {base}/unsubscribe; preferences "
            f"{base}/preferences; subscribe {base}/subscribe; confirm {base}/confirm; "
            f"webhook {base}/webhooks/sendgrid; health {base}/healthz (Ctrl-C stops)") in log


def test_unsubscribes_from_an_issue_link_show_in_its_stats(serve, engine, run, topics,
                                                           audience):
    assert run("send", ISSUE, "--yes").exit_code == 0
    # one-click (RFC 8058) at the List-Unsubscribe URL, which names the issue
    message = message_to(topics, ISSUE, "lin.xiaoyu@example.com")
    one_click = re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"])[1]
    assert f"&issue={ISSUE}" in one_click
    for _ in range(2):  # repeating it counts once
        assert call(local(one_click, serve.base), b"List-Unsubscribe=One-Click")[0] == 200
    # the footer's link: the page carries the issue to its button
    in_text, in_html = footer_links(message_to(topics, ISSUE, "zhou.an@example.org"), "退订")
    assert in_text == in_html
    status, page, _ = call(local(in_text, serve.base))
    assert status == 200 and f'<input type="hidden" name="issue" value="{ISSUE}">' in page
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]+)">', page))
    status, page, _ = call(f"{serve.base}/unsubscribe{action}", urlencode(fields).encode())
    assert status == 200 and "已为 zhou.an@example.org 退订" in page
    # an issue parameter that is not a sent issue's id is ignored; the reader still leaves
    for bogus, address in ((ROUNDUP, "wang.shu@example.net"), ("NOT AN ID", "li.heng@example.com"),
                           ("x" * 300, "sun.qing@example.org")):
        in_text, _ = footer_links(message_to(topics, ISSUE, address), "退订")
        url = local(in_text, serve.base).replace(f"issue={ISSUE}", urlencode({"issue": bogus}))
        assert call(url, b"List-Unsubscribe=One-Click")[0] == 200
        assert engine.query("SELECT status FROM subscribers WHERE email_key = ?",
                            (address,)) == [("unsubscribed",)]

    assert engine.query("SELECT issue, kind, source, email_key FROM events ORDER BY id") == [
        (ISSUE, "unsubscribe", "one-click", "lin.xiaoyu@example.com"),
        (ISSUE, "unsubscribe", "web", "zhou.an@example.org")]
    assert engine.query("SELECT count(*) FROM suppressions") == [(0,)]  # they may come back
    assert "  unsubscribes 2  " in run("stats", ISSUE).stdout


def test_export_writes_tags_and_import_reads_them_back(run, engine, project):
    tagged_audience(run, project)
    assert run("audience", "export", "out.csv").exit_code == 0
    with (project / "out.csv").open(encoding="utf-8") as handle:
        rows = {row["email"]: row["tags"] for row in csv.DictReader(handle)}
    assert rows["lin.xiaoyu@example.com"] == "ai research"
    assert rows["chen.mo@example.com"] == "ai paused"
    assert rows["li.heng@example.com"] == ""

    again = {"NEWSLETTER_DATABASE": str(project / "again.db")}
    imported = run("audience", "import", "out.csv", env=again)
    assert imported.exit_code == 0, imported.output
    assert run("audience", "export", "again.csv", env=again).exit_code == 0
    with (project / "again.csv").open(encoding="utf-8") as handle:
        assert {row["email"]: row["tags"] for row in csv.DictReader(handle)} == rows


def test_topics_are_checked_like_every_key(project):
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[topics]\nai = "AI 工具"\n'
                    '"no/such" = "坏"\nAI2 = "大写"\nresearch = 3\nempty = ""\n',
                    encoding="utf-8")
    line = len(toml.read_text(encoding="utf-8").splitlines()) - 4
    with pytest.raises(ConfigError) as caught:
        load_config(toml, env={})
    assert caught.value.format_message().splitlines() == [
        f"newsletter.toml:{line + 1}: topics.no/such: 'no/such' is not a tag; a tag is 1 to "
        "32 letters, digits, '-' or '_', starting with a letter or digit, like ai or "
        "deep-learning (the keys of [topics] are the tags readers choose)",
        f"newsletter.toml:{line + 2}: topics.AI2: write the tag in lower case: ai2",
        f'newsletter.toml:{line + 3}: topics.research: the label must be text on one line, '
        'like research = "AI 工具"',
        f'newsletter.toml:{line + 4}: topics.empty: the label must be text on one line, '
        'like empty = "AI 工具"',
    ]
    assert caught.value.exit_code == ExitStatus.CONFIG
