"""The checks that catch what editors miss: each with a folder that fails it (the exact
finding) and one that passes it (no finding at all)."""

from __future__ import annotations

import io
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from tests.conftest import write_issue
from tests.test_check import YAML, check, findings, section


def encoded(width: int, height: int, fmt: str, mode: str = "RGB", **options) -> bytes:
    out = io.BytesIO()
    noise = random.Random(3).randbytes(width * height * len(mode))
    Image.frombytes(mode, (width, height), noise).save(out, fmt, **options)
    return out.getvalue()


def flat(width: int, height: int, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, fmt)
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
TWO_ITEMS = "---\nkind: news\n---\n\n## {a}\n\n正文。\n\n## {b}\n\n正文。\n\n## {c}\n\n正文。\n"

# name: (failing files, its exact findings, passing files)
CASES = {
    "empty section": (
        {"02-news.md": "---\nkind: news\n---\n\n"}, 1,
        ["t/02-news.md:1: error: the section is empty; write an item ('## ' and its text) or "
         "delete the file"],
        {"02-news.md": "---\nkind: news\n---\n\n本节只有导语。\n"}),
    "empty item": (
        {"01-news.md": "---\nkind: news\n---\n\n## 空的条目\n\n## 第二条\n\n正文。\n"}, 1,
        ["t/01-news.md:5: error: the item '空的条目' has nothing under its heading; write its "
         "text, or delete the heading"],
        {"01-news.md": "---\nkind: news\n---\n\n## [标题即链接](https://example.com/a)\n\n"
                       "## 第二条\n\n正文。\n"}),
    "markdown table": (
        {"01-news.md": section("对比如下：\n\n| 模型 | 价格 |\n| --- | --- |\n| A | 1 |")}, 0,
        ["t/01-news.md:9: warning: a Markdown table: the email shows it as lines of '|', and "
         "a table is unreadable on a phone (375 px); write it as a list, one row an entry"],
        {"01-news.md": section("对比如下：\n\n- 模型 A：价格 1\n- 模型 B：价格 2\n\n"
                               "```\n| a | b |\n| --- | --- |\n```")}),
    "repeated item number": (
        {"01-news.md": TWO_ITEMS.format(a="1. 第一", b="2. 第二", c="2. 第三")}, 0,
        ["t/01-news.md:13: warning: item number 2 again (also on line 9); number the items "
         "1, 2, 3… in order"],
        {"01-news.md": TWO_ITEMS.format(a="1. 第一", b="2. 第二", c="3. 第三")}),
    "skipped item number": (
        {"01-news.md": TWO_ITEMS.format(a="1、第一", b="2、第二", c="4、第四")}, 0,
        ["t/01-news.md:13: warning: item number 4 follows 2: 3 is missing; number the items "
         "1, 2, 3… in order"],
        {"01-news.md": TWO_ITEMS.format(a="GPT-4 发布", b="1.5 Pro 上线", c="2024 年回顾")}),
    "webp image": (
        {"01-news.md": section("![图](images/a.webp)"), "images/a.webp": flat(40, 30, "WEBP")},
        0, ["t/01-news.md:7: warning: image 'images/a.webp' is WebP, which Outlook and older "
            "mail clients do not show; the build sends it as JPEG, but export it as JPEG or "
            "PNG to review what readers get"],
        {"01-news.md": section("![图](images/a.png)"), "images/a.png": flat(40, 30)}),
    "avif image": (
        {"01-news.md": section("![图](images/a.avif)"), "images/a.avif": flat(40, 30, "AVIF")},
        0, ["t/01-news.md:7: warning: image 'images/a.avif' is AVIF, which Outlook and older "
            "mail clients do not show; the build sends it as JPEG, but export it as JPEG or "
            "PNG to review what readers get"],
        {"01-news.md": section("![图](images/a.jpg)"), "images/a.jpg": flat(40, 30, "JPEG")}),
    "svg image": (
        {"01-news.md": section("![图](images/a.svg)"), "images/a.svg": SVG}, 0,
        ["t/01-news.md:7: warning: image 'images/a.svg' is SVG, which Gmail and Outlook do not "
         "show; export it as PNG"],
        {"01-news.md": section("![图](images/a.gif)"), "images/a.gif": flat(40, 30, "GIF")}),
    "image far wider than shown": (
        {"01-news.md": section("![图](images/w.png)"), "images/w.png": flat(1200, 300)}, 0,
        ["t/01-news.md:7: warning: image 'images/w.png' is 1200 px wide and shown 550 px wide; "
         "the build scales it to 1100 px, export it at that width to keep the repository "
         "small"],
        {"01-news.md": section("![图](images/w.png)"), "images/w.png": flat(1100, 300)}),
    "image heavy after optimising": (
        {"01-news.md": section("![图](images/n.png)"), "images/n.png": encoded(600, 400, "PNG")},
        0, ["t/01-news.md:7: warning: image 'images/n.png' is 704 KB even after the build "
            "optimises it, and every reader downloads it; crop it or export a photo as JPEG, "
            "under 500 KB"],
        {"01-news.md": section("![图](images/n.jpg)"),
         "images/n.jpg": encoded(600, 400, "JPEG", quality=90)}),
    "link text is the URL": (
        {"01-news.md": section("见 [https://example.com/report](https://example.com/report)")},
        0, ["t/01-news.md:7: warning: the link text is the address itself "
            "(https://example.com/report); write what it leads to: [the report's title](...)"],
        {"01-news.md": section("见[年度报告](https://example.com/report)")}),
    "autolink": (
        {"01-news.md": section("见 <https://example.com/report>")}, 0,
        ["t/01-news.md:7: warning: the link text is the address itself "
         "(https://example.com/report); write what it leads to: [the report's title](...)"],
        {"01-news.md": section("见 `https://example.com/report`")}),
    "heading out of order": (
        {"01-news.md": section("正文。\n\n#### 细节")}, 0,
        ["t/01-news.md:9: warning: a level-4 heading right under a level-2 one skips a level "
         "in the email's outline; write '### '"],
        {"01-news.md": section("正文。\n\n### 细节\n\n#### 更细")}),
    "mixed punctuation": (
        {"01-news.md": section("模型更新了， price drops, 速度提升。")}, 0,
        ["t/01-news.md:7: warning: full-width '，' and half-width ',' in one sentence "
         "('drops, 速度提升'); use one kind: full-width in Chinese"],
        {"01-news.md": section("模型更新了，价格 1,000 元，时间 10:30。English, as usual.")}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_fails_then_passes(run, project, case):
    failing, status, expected, passing = CASES[case]
    result = check(run, project, failing)
    assert (findings(result), result.exit_code) == (expected, status)
    for name in failing:
        (project / "t" / name).unlink()
    result = check(run, project, passing)
    assert (findings(result), result.exit_code) == ([], 0)


def dated(day: str, links: str) -> dict:
    return {"issue.yaml": YAML.replace("2024-01-31", day).replace("number: 3", "number: 2"),
            "01-news.md": section(links)}


def test_links_of_recent_issues_are_warned_within_the_window(run, project):
    issues = project / "issues"
    write_issue(issues / "2024-01-10-a", dated("2024-01-10", "[旧闻](https://example.com/old)"))
    write_issue(issues / "2024-01-24-b", dated("2024-01-24",
                                               "[报告](https://example.com/r?utm_source=x)"))
    body = "[报告](https://example.com/r/#top) 和 [旧闻](https://example.com/old)"
    result = check(run, project, {"01-news.md": section(body)})
    assert findings(result) == [
        "t/01-news.md:7: warning: https://example.com/r/#top was in issue 2 (2024-01-24) too; "
        "readers have seen it: drop it, or say what is new",
        "t/01-news.md:7: warning: https://example.com/old was in issue 2 (2024-01-10) too; "
        "readers have seen it: drop it, or say what is new"]
    narrow = run("check", "t", env={"NEWSLETTER_CHECK_REPEAT_WINDOW": "1"})
    assert findings(narrow) == findings(result)[:1]
    assert findings(run("check", "t", env={"NEWSLETTER_CHECK_REPEAT_WINDOW": "0"})) == []


class Assets(BaseHTTPRequestHandler):
    present: set[str] = set()
    seen: list[tuple[str, str]] = []

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        Assets.seen.append(("HEAD", self.path))
        self.send_response(200 if self.path in self.present else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def asset_host(project):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Assets)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Assets.present, Assets.seen = set(), []
    toml = project / "newsletter.toml"
    url = f"http://127.0.0.1:{server.server_address[1]}/assets"
    toml.write_text(toml.read_text().replace('asset_url = "https://news.example.com/assets"',
                                             f'asset_url = "{url}"'))
    yield url
    server.shutdown()
    server.server_close()


def test_online_confirms_each_image_is_at_asset_url(run, project, asset_host):
    files = {"01-news.md": section("![一](images/a.png)\n\n![二](images/b.webp)"),
             "images/a.png": flat(40, 30), "images/b.webp": flat(40, 30, "WEBP")}
    write_issue(project / "issues" / "t", {"issue.yaml": YAML, **files})
    Assets.present = {"/assets/t/images/a.png"}
    result = run("check", "t", "--online")
    assert [f for f in findings(result) if "is not at" in f] == [
        f"issues/t/01-news.md:9: error: image 'images/b.jpg' is not at "
        f"{asset_host}/t/images/b.jpg (answers 404); upload build/t/assets/ to "
        f"{asset_host}/t/ (newsletter build t writes it)"]
    assert result.exit_code == 1
    assert sorted(Assets.seen) == [("HEAD", "/assets/t/images/a.png"),
                                   ("HEAD", "/assets/t/images/b.jpg")]
    Assets.seen = []
    assert not [f for f in findings(run("check", "t")) if "is not at" in f]
    assert Assets.seen == []  # offline by default


def test_the_send_gate_asks_asset_url_when_told_to(run, project, asset_host, audience):
    write_issue(project / "issues" / "t", {"issue.yaml": YAML, "01-news.md": section(
        "![一](images/a.png)"), "images/a.png": flat(40, 30)})
    env = {"NEWSLETTER_CHECK_ONLINE_BEFORE_SEND": "true"}
    refused = run("send", "t", "--yes", env=env)
    assert refused.exit_code == 1
    assert f"image 'images/a.png' is not at {asset_host}/t/images/a.png (answers 404)" \
        in refused.stderr
    assert not (project / "outbox").exists()
    Assets.present = {"/assets/t/images/a.png"}
    sent = run("send", "t", "--yes", env=env)
    assert sent.exit_code == 0, sent.output
