"""Editions: one issue in two languages, sent through the outbox to readers of either
language (and one of none), each getting the edition of their language, once, recorded
in the one ledger of the issue."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import write_issue
from tests.test_delivery import parse, query

ISSUE = "two"
LABELS_EN = """
[labels.en]
issue = "Issue {number}"
greeting = "Hi {name},"
reader = "reader"
view_in_browser = "View in browser"
unsubscribe = "Unsubscribe"
links = "Links"
"""
ISSUE_YAML = """number: 5
title: {zh-CN: "AI快报｜05", en: "AI Digest 05"}
subject: {zh-CN: "AI快报｜05：双语", en: "AI Digest 05: in two languages"}
preheader: {zh-CN: "一期两种语言", en: "One issue, two languages"}
date: 2024-01-31
languages: [zh-CN, en]
"""
NEWS_ZH = """---
kind: news
---

## 新模型发布

今天发布了[新模型](https://example.com/a?x=1#top)。

## 第二条

更多内容。
"""
NEWS_EN = """---
kind: news
title: Model news
---

## A new model

A [new model](https://example.com/a?x=1#top) came out today.

## The second item

More of it.
"""
READERS = {  # address -> (language given, edition expected)
    "ann@example.com": ("zh-CN", "zh-CN"),
    "bob@example.com": ("en", "en"),
    "cat@example.com": ("en-GB", "en"),
    "dan@example.com": (None, "zh-CN"),
}


@pytest.fixture
def two(run, project) -> Path:
    config = project / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + LABELS_EN, encoding="utf-8")
    folder = write_issue(project / "issues" / ISSUE, {
        "issue.yaml": ISSUE_YAML, "01-news.md": NEWS_ZH, "01-news.en.md": NEWS_EN})
    for address, (language, _) in READERS.items():
        args = ["--language", language] if language else []
        result = run("audience", "add", address, *args)
        assert result.exit_code == 0, result.output
    return folder


def delivered(project: Path) -> dict[str, list]:
    found: dict[str, list] = {}
    for path in (project / "outbox" / ISSUE).glob("*.eml"):
        message = parse(path.read_bytes())
        found.setdefault(message["To"].addresses[0].addr_spec, []).append(message)
    return found


def test_each_reader_gets_the_edition_of_their_language_once(run, engine, project, two):
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{ISSUE}: done through outbox: sent 4, failed 0")
    messages = delivered(project)
    assert sorted(messages) == sorted(READERS) and all(len(m) == 1 for m in messages.values())
    for address, (_, edition) in READERS.items():
        message = messages[address][0]
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert re.search(r'<html lang="([^"]+)"', html)[1] == edition
        if edition == "en":
            assert message["Subject"] == "AI Digest 05: in two languages"
            assert "Hi reader," in text and "View in browser" in html
            assert "A new model" in html and "新模型" not in html
            assert "Issue 5" in html and "One issue, two languages" in html
            assert f"https://news.example.com/issues/{ISSUE}/en/" in html
            assert "https://example.com/a?x=1&utm_medium=email&utm_campaign=two#top" in text
        else:
            assert message["Subject"] == "AI快报｜05：双语"
            assert "你好，读者朋友：" in text and "在浏览器中阅读" in html
            assert "新模型发布" in html and "A new model" not in html
            assert f"https://news.example.com/issues/{ISSUE}/zh-CN/" in html
    rows = query(engine.location, "SELECT email, edition, status FROM deliveries ORDER BY email")
    assert rows == [(address, edition, "sent") for address, (_, edition)
                    in sorted(READERS.items())]
    again = run("send", ISSUE, "--yes")
    assert again.exit_code == 0 and "already sent" in again.stdout
    assert sum(len(m) for m in delivered(project).values()) == 4

    status = run("status", ISSUE)
    assert "editions: en 2 (sent 2, pending 0); zh-CN 2 (sent 2, pending 0)" in status.stdout


def test_a_reader_whose_language_changes_mid_send_keeps_their_edition(run, project, two):
    """The edition is chosen when the send starts (its snapshot), not at each claim."""
    db = project / ".newsletter" / "newsletter.db"
    capped = run("send", ISSUE, "--yes", env={"NEWSLETTER_DELIVERY_MAX_PER_DAY": "1"})
    assert capped.exit_code == 3, capped.output
    assert sorted(delivered(project)) == ["ann@example.com"]
    assert run("audience", "add", "bob@example.com", "--language", "zh-CN").exit_code == 0
    with run.at(run.now + timedelta(days=1, minutes=1)):
        assert run("send", ISSUE, "--yes").exit_code == 0
    bob = delivered(project)["bob@example.com"]
    assert len(bob) == 1 and bob[0]["Subject"] == "AI Digest 05: in two languages"
    assert query(db, "SELECT edition FROM deliveries WHERE email = 'bob@example.com'") == \
        [("en",)]


def test_a_language_that_is_no_tag_is_refused(run, project):
    result = run("audience", "add", "eve@example.com", "--language", "english please")
    assert result.exit_code == 1
    assert "'english please' is not a language tag; write it like 'en' or 'zh-CN'" in \
        result.output


def test_csv_language_column(run, project):
    (project / "readers.csv").write_text("email,name,language\nfay@example.com,Fay,en\n"
                                         "gus@example.com,Gus,not a tag\n", encoding="utf-8")
    result = run("audience", "import", "readers.csv")
    assert result.exit_code == 0, result.output
    assert "readers.csv:3: warning: 'not a tag' is not a language tag; write it like 'en' or " \
           "'zh-CN'; the reader is kept without one" in result.output
    db = project / ".newsletter" / "newsletter.db"
    assert query(db, "SELECT email, language, fields FROM subscribers ORDER BY email") == \
        [("fay@example.com", "en", "{}"), ("gus@example.com", "", "{}")]


def test_the_archive_has_each_edition_with_alternates_and_a_feed_per_language(run, project,
                                                                               two):
    assert run("send", ISSUE, "--yes").exit_code == 0
    result = run("publish")
    assert result.exit_code == 0, result.output
    site = project / "site"
    base = f"https://news.example.com/issues/{ISSUE}"
    alternates = (f'<link rel="alternate" hreflang="zh-CN" href="{base}/zh-CN/">\n'
                  f'<link rel="alternate" hreflang="en" href="{base}/en/">\n'
                  f'<link rel="alternate" hreflang="x-default" href="{base}/">\n')
    pages = {lang: (site / ISSUE / lang / "index.html").read_text(encoding="utf-8")
             for lang in ("zh-CN", "en")}
    default = (site / ISSUE / "index.html").read_text(encoding="utf-8")
    for lang, page in [*pages.items(), ("zh-CN", default)]:
        assert alternates in page
        assert f'<html lang="{lang}">' in page
        assert f'<a href="{base}/en/" hreflang="en" lang="en"' in page  # the switch
        assert f'<a href="{base}/zh-CN/" hreflang="zh-CN" lang="zh-CN"' in page
    assert "<h1>AI Digest 05</h1>" in pages["en"] and "A new model" in pages["en"]
    assert "<h1>AI快报｜05</h1>" in pages["zh-CN"] and "新模型发布" in pages["zh-CN"]
    assert 'href="../../feed.en.xml"' in pages["en"]
    assert 'aria-current="page">English</a>' in pages["en"]

    import xml.etree.ElementTree as ET
    atom = "{http://www.w3.org/2005/Atom}"
    feeds = {}
    for name in ("feed.xml", "feed.en.xml", "feed.zh-CN.xml"):
        root = ET.parse(site / name).getroot()
        feeds[name] = {entry.find(f"{atom}id").text: entry.find(f"{atom}title").text
                       for entry in root.iter(f"{atom}entry")}
    assert feeds["feed.en.xml"] == {f"{base}/en/": "AI Digest 05"}
    assert feeds["feed.zh-CN.xml"][f"{base}/zh-CN/"] == "AI快报｜05"
    assert feeds["feed.xml"][f"{base}/"] == "AI快报｜05"


def test_check_compares_the_editions(run, project, two):
    folder = project / "issues" / ISSUE
    (folder / "issue.yaml").write_text(ISSUE_YAML.replace(
        'subject: {zh-CN: "AI快报｜05：双语", en: "AI Digest 05: in two languages"}',
        'subject: "AI快报｜05：双语"'), encoding="utf-8")
    (folder / "01-news.en.md").write_text(NEWS_EN.split("## The second item")[0],
                                          encoding="utf-8")
    (folder / "02-tips.md").write_text("---\nkind: tips\n---\n\n## 一条\n\n内容。\n",
                                       encoding="utf-8")
    (folder / "03-extra.en.md").write_text("---\nkind: tips\n---\n\n## Extra\n\nText.\n",
                                           encoding="utf-8")
    result = run("check", ISSUE)
    shown = f"issues/{ISSUE}"
    for line in (
            f"{shown}/issue.yaml:3: warning: no subject in en: its readers get 'AI Digest 05'; "
            'write subject: {zh-CN: "…", en: "…"}',
            f"{shown}/01-news.en.md: warning: 1 items, and its zh-CN original 01-news.md has "
            "2; translate every item, or make both say the same",
            f"{shown}/02-tips.md: warning: no en translation (02-tips.en.md): readers of en "
            "get the issue without this section",
            f"{shown}/03-extra.en.md: warning: no zh-CN section 03-extra.md beside it: only "
            "readers of en get this section"):
        assert line in result.output.splitlines(), result.output


def test_a_section_in_a_language_the_issue_does_not_have_is_an_error(run, project, two):
    (project / "issues" / ISSUE / "01-news.fr.md").write_text(NEWS_EN, encoding="utf-8")
    result = run("check", ISSUE)
    assert result.exit_code == 1
    assert f"issues/{ISSUE}/01-news.fr.md: error: 'fr' is not one of the issue's languages (zh-CN, " \
           "en); add it to languages in issue.yaml, or rename the file" in result.output


def test_build_writes_each_edition(run, project, two):
    result = run("build", ISSUE)
    assert result.exit_code == 0, result.output
    assert "  en/  email.html " in result.stdout
    out = project / "build" / ISSUE
    assert '<html lang="zh-CN"' in (out / "email.html").read_text(encoding="utf-8")
    text = (out / "en" / "email.txt").read_text(encoding="utf-8")
    assert text.startswith("AI生产力快报 · Issue 5 · 2024-01-31\n\nAI Digest 05\n")
    assert "\n[ Model news ]\n" in text


def test_stats_count_each_edition(run, project, two, sendgrid):
    """Sent and engagement per edition: each event tied to its reader's ledger row."""
    import json

    from pipeline.config import load_config
    from pipeline.web import create_app
    from tests.conftest import NOW, SECRET
    from tests.test_webhooks import Signer, event, post

    assert run("send", ISSUE, "--yes").exit_code == 0
    ids = {p["to"][0]["email"]: p["custom_args"]["subscriber"]
           for body in sendgrid.bodies for p in body["personalizations"]}
    signer = Signer()
    env = {"NEWSLETTER_SECRET": SECRET, "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public}
    app = create_app(load_config(project / "newsletter.toml", env=env), lambda: NOW)

    def on(kind, address, n, **more):
        return event(kind, address, n, **{"issue": ISSUE, "subscriber": ids[address], **more})

    events = [on("delivered", address, n) for n, address in enumerate(READERS)]
    events += [on("open", "bob@example.com", 10), on("open", "bob@example.com", 11),
               on("click", "bob@example.com", 12), on("open", "cat@example.com", 13),
               on("open", "dan@example.com", 14), on("unsubscribe", "ann@example.com", 15),
               on("open", "ann@example.com", 16, issue="another")]
    body = json.dumps(events).encode()
    assert post(app, body, signer.headers(body, NOW.timestamp()))[0] == "200 OK"

    assert run("stats", ISSUE).stdout == (
        f"{ISSUE}  sent 4  delivered 4  bounced 0  complaints 0  unsubscribes 1  opens 3  "
        "clicks 1\n"
        "  en  sent 2  delivered 2  bounced 0  complaints 0  unsubscribes 0  opens 2  "
        "clicks 1\n"
        "  zh-CN  sent 2  delivered 2  bounced 0  complaints 0  unsubscribes 1  opens 1  "
        "clicks 0\n")
    data = json.loads(run("stats", "--json").stdout)
    assert [(d["issue"], d["sent"], d["opens"]) for d in data] == [(ISSUE, 4, 3)]
    assert data[0]["editions"] == [
        {"edition": "en", "sent": 2, "delivered": 2, "bounced": 0, "complaints": 0,
         "unsubscribes": 0, "opens": 2, "clicks": 1},
        {"edition": "zh-CN", "sent": 2, "delivered": 2, "bounced": 0, "complaints": 0,
         "unsubscribes": 1, "opens": 1, "clicks": 0}]


def test_a_signup_from_an_edition_page_gives_the_reader_its_language(run, engine, project,
                                                                     two):
    """The archive's English page sends `language=en` with its form; a reader who
    confirms gets it. A language that is no tag is ignored, and the answer is the same."""
    import json
    from html.parser import HTMLParser

    from tests.test_signup import CHECK_INBOX, Serve, confirmation_link

    assert run("send", ISSUE, "--yes").exit_code == 0  # the archive has sent issues
    assert run("publish").exit_code == 0
    page = (project / "site" / ISSUE / "en" / "index.html").read_text(encoding="utf-8")
    assert '<input type="hidden" name="language" value="en">' in page

    class Form(HTMLParser):
        fields: dict[str, str] = {}

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "input" and attrs.get("type") == "hidden":
                self.fields[attrs["name"]] = attrs["value"]

    form = Form()
    form.feed(page)
    assert form.fields == {"source": "archive", "language": "en"}
    default = (project / "site" / ISSUE / "index.html").read_text(encoding="utf-8")
    assert 'name="language" value="zh-CN"' in default
    assert 'name="language"' not in (project / "site" / "index.html").read_text(
        encoding="utf-8")

    serve = Serve(project, engine.env).start()
    try:
        status, body, _ = serve.post("/subscribe", {"email": "eve@example.com", **form.fields})
        assert status == 200 and CHECK_INBOX.format("eve@example.com") in body
        answers = []
        for address, language in (("fay@example.com", "english please"),
                                  ("gus@example.com", "en-GB"), ("hal@example.com", 7)):
            status, body, _ = serve.post("/subscribe", raw=json.dumps(
                {"email": address, "language": language}).encode(),
                content_type="application/json")
            answers.append((status, json.loads(body)["message"]))
        assert answers == [(200, CHECK_INBOX.format(address)) for address in
                           ("fay@example.com", "gus@example.com", "hal@example.com")]
        assert engine.query("SELECT email, language FROM signups ORDER BY email") == [
            ("eve@example.com", "en"), ("fay@example.com", ""), ("gus@example.com", "en-GB"),
            ("hal@example.com", "")]
        # a reader of zh-CN who signs up again from the English page reads English then
        status, _, _ = serve.post("/subscribe", {"email": "ann@example.com", **form.fields})
        assert status == 200
        for address in ("eve@example.com", "fay@example.com", "ann@example.com"):
            assert serve.post(confirmation_link(project, address))[0] == 200
    finally:
        serve.stop()
    assert engine.query("SELECT email, language FROM subscribers WHERE email IN "
                        "('ann@example.com', 'eve@example.com', 'fay@example.com') "
                        "ORDER BY email") == [
        ("ann@example.com", "en"), ("eve@example.com", "en"), ("fay@example.com", "")]


def test_review_covers_each_edition(run, project, two):
    from tests.test_review import git

    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.email", "editor@example.com")
    git(project, "config", "user.name", "Editor")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the publication")
    (two / "01-news.en.md").write_text(NEWS_EN.replace("More of it.", "Much more of it."),
                                       encoding="utf-8")
    result = run("review", "HEAD", "--no-screenshots")
    assert result.exit_code == 0, result.output
    report = (project / "review" / "report.md").read_text(encoding="utf-8")
    assert "- **Subject:** AI快报｜05：双语\n" in report
    assert "- **Audience:** 4 readers (every active reader; outbox)\n" in report
    assert ("- **Editions:** zh-CN 2 readers, en 2 readers (each reader's language picks "
            "one; the subject, preheader and size above are of the first)\n") in report
    default, english = report.split("#### Edition en\n")
    assert "```diff\n(no change in the text)\n```" in default
    assert english.startswith("\n- **Subject:** AI Digest 05: in two languages\n"
                              "- **Preheader:** One issue, two languages\n- **Size:** ")
    assert "```diff\n- More of it.\n+ [-More-]{+Much more+} of it.\n```" in english
