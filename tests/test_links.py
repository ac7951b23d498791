"""UTM tagging of external links ([links], issue.yaml's tag_links): in the HTML and the
text part of what the outbox delivers, never on the publication's own links."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.render.links import tag_url
from tests.conftest import write_issue
from tests.test_delivery import parse

SECTION = """---
kind: news
---

## Links of every kind

Read [the article](https://example.com/a?x=1#top), [the home page](https://example.org),
[the archive](https://news.example.com/issues/older/), [a page](about.html),
[the editors](mailto:editors@example.com) and [our unsubscribe page](https://news.example.com/unsubscribe).
Already tagged: [a campaign](https://example.net/p?utm_campaign=spring&b=%20c).
"""
TAGS = "utm_medium=email&utm_campaign=links-1"


def send_one(run, project: Path, yaml_extra: str = "", env: dict | None = None):
    write_issue(project / "issues" / "links-1", {
        "issue.yaml": f'number: 1\ntitle: "Links"\ndate: 2024-01-31\n{yaml_extra}',
        "01-news.md": SECTION})
    assert run("audience", "add", "ann@example.com", "--name", "Ann").exit_code == 0
    result = run("send", "links-1", "--yes", env=env)
    assert result.exit_code == 0, result.output
    message = parse(next((project / "outbox" / "links-1").glob("*.eml")).read_bytes())
    return (message.get_body(("html",)).get_content(),
            message.get_body(("plain",)).get_content())


def hrefs(html: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'<a href="([^"]*)"', html)]


def references(text: str) -> list[str]:
    return re.findall(r"^\[\d+\] (\S+)$", text, re.M)


def test_external_links_are_tagged_in_html_and_text_alike(run, project):
    html, text = send_one(run, project)
    expected = [f"https://example.com/a?x=1&{TAGS}#top",
                f"https://example.org/?{TAGS}",
                "https://news.example.com/issues/older/",
                "about.html",
                "mailto:editors@example.com",
                "https://news.example.com/unsubscribe",
                "https://example.net/p?utm_campaign=spring&b=%20c&utm_medium=email"]
    links = hrefs(html)
    for url in expected:
        assert url in links
    assert references(text) == expected
    # the reader's own links, filled in at send time, are never tagged
    unsubscribe = [url for url in links if "token=" in url]
    assert len(unsubscribe) == 1 and "utm_" not in unsubscribe[0]
    assert "https://news.example.com/issues/links-1/" in links
    assert re.search(r"https://news\.example\.com/unsubscribe\?token=[\w.-]+&issue=links-1\n", text)


def test_tags_follow_the_configuration(run, project):
    config = project / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[links]\nutm_source = "
                      "\"weekly\"\nutm_medium = \"\"\nutm_campaign = \"n{number}-{lang}\"\n",
                      encoding="utf-8")
    html, text = send_one(run, project)
    tagged = "https://example.com/a?x=1&utm_source=weekly&utm_campaign=n1-zh-CN#top"
    assert tagged in hrefs(html) and tagged in references(text)


def test_tagging_is_turned_off_per_issue(run, project):
    html, text = send_one(run, project, "tag_links: false\n")
    assert "utm_medium" not in html and "utm_medium" not in text
    assert "https://example.com/a?x=1#top" in hrefs(html)


def test_tagging_is_turned_off_from_the_environment(run, project):
    html, text = send_one(run, project, env={"NEWSLETTER_LINKS_TAG": "false"})
    assert "utm_medium" not in html and "utm_medium" not in text


def test_a_campaign_with_an_unknown_field_is_a_configuration_error(run, project):
    config = project / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[links]\nutm_campaign = "
                      "\"{slug}\"\n", encoding="utf-8")
    result = run("build", "2023-12-07-ai-productivity-09")
    assert result.exit_code == 4
    line = config.read_text(encoding="utf-8").splitlines().index('utm_campaign = "{slug}"') + 1
    assert f"newsletter.toml:{line}: links.utm_campaign: '{{slug}}' uses {{slug}}, which is " \
           "not filled here; use {id}, {number}, {lang}" in result.output


def test_tag_url_keeps_query_and_fragment_byte_for_byte():
    tags = {"utm_medium": "email", "utm_campaign": "AI 周报"}
    assert tag_url("https://e.com/a?q=%E4%B8%AD+x&y#frag?x", tags) == \
        "https://e.com/a?q=%E4%B8%AD+x&y&utm_medium=email&utm_campaign=AI+%E5%91%A8%E6%8A%A5" \
        "#frag?x"
    assert tag_url("https://e.com/a?", tags).startswith("https://e.com/a?utm_medium=")
    assert tag_url("https://e.com/a?utm_medium=web", tags) == \
        "https://e.com/a?utm_medium=web&utm_campaign=AI+%E5%91%A8%E6%8A%A5"
