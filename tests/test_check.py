"""`newsletter check`: one small issue folder per finding, asserting the exact line."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import write_issue
from tests.golden import samples
from tests.smtp_server import free_port

YAML = 'number: 3\ntitle: "测试期"\npreheader: "一句简短的预览"\ndate: 2024-01-31\n'


def section(body: str, kind: str = "news") -> str:
    return f"---\nkind: {kind}\n---\n\n## 条目\n\n{body}\n"


def check(run, project, files: dict, *args: str):
    write_issue(project / "t", {"issue.yaml": YAML, "01-news.md": section("正文。"), **files})
    return run("check", "t", *args)


def findings(result) -> list[str]:
    return result.stdout.splitlines()


@pytest.mark.parametrize("folder", samples(), ids=lambda p: p.name)
def test_the_samples_are_clean(run, project, folder):
    result = run("check", folder.name)
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == "0 errors, 0 warnings\n"


# Each case: a folder with exactly one defect, and the exact finding it gives.
SINGLE_FINDINGS = {
    "missing local image": (
        {"01-news.md": section("![图](images/none.png)")}, 1,
        "t/01-news.md:7: error: image 'images/none.png' not found in t; add the file or fix "
        "the path"),
    "empty subject": (
        {"issue.yaml": YAML.replace('title: "测试期"', 'title: ""')}, 1,
        "t/issue.yaml:2: error: the subject is empty; write a subject (or a title)"),
    "link with empty text": (
        {"01-news.md": section("看这里：[](https://example.com/a)")}, 1,
        "t/01-news.md:7: error: the link to https://example.com/a has no text; write what it "
        "leads to between the brackets"),
    "javascript link": (
        {"01-news.md": section("第一行。\n\n[试试](javascript:alert(1))")}, 1,
        "t/01-news.md:9: error: a link to a script URL (javascript:, data:); link to an "
        "https:// page instead"),
    "http link": (
        {"01-news.md": section("[旧站](http://example.com/old)")}, 0,
        "t/01-news.md:7: warning: http://example.com/old is not https; use the https:// "
        "address if the site has one"),
    "same URL twice in one item": (
        {"01-news.md": section("[一](https://example.com/x) 和\n[二](https://example.com/x)")}, 0,
        "t/01-news.md:8: warning: https://example.com/x is linked twice in this item; keep one "
        "link"),
    "link text click here": (
        {"01-news.md": section("详情[click here](https://example.com)")}, 0,
        "t/01-news.md:7: warning: link text 'click here' says nothing out of context; name "
        "where it leads"),
    "link text 点击这里": (
        {"01-news.md": section("详情[点击这里](https://example.com)")}, 0,
        "t/01-news.md:7: warning: link text '点击这里' says nothing out of context; name where "
        "it leads"),
    "heading skips a level": (
        {"01-news.md": section("正文。\n\n#### 小节")}, 0,
        "t/01-news.md:9: warning: a level-4 heading right under a level-2 one skips a level "
        "in the email's outline; write '### '"),
    "a second h1": (
        {"01-news.md": section("正文。\n\n# 大标题")}, 0,
        "t/01-news.md:9: warning: a '# ' heading would be a second h1 in the email, where the "
        "issue's title is the one; use '### ' for a heading inside an item"),
    "heading in an introduction": (
        {"01-news.md": "---\nkind: news\n---\n\n### 导语\n\n## 条目\n\n正文。\n"}, 0,
        "t/01-news.md:5: warning: a heading before the section's first item ('## '), above "
        "every item title in the email's outline; make it an item or write the line in "
        "**bold**"),
    "half-width punctuation in Chinese": (
        {"01-news.md": section("你好,世界")}, 0,
        "t/01-news.md:7: warning: half-width ',' inside a Chinese sentence in '你好,世界'; use "
        "'，'"),
}


@pytest.mark.parametrize("case", SINGLE_FINDINGS, ids=list(SINGLE_FINDINGS))
def test_single_finding(run, project, case):
    files, status, expected = SINGLE_FINDINGS[case]
    result = check(run, project, files)
    assert result.exit_code == status
    assert findings(result) == [expected]


# --- errors --------------------------------------------------------------------------


def test_image_without_alt_text(run, project):
    (project / "figure.png").write_bytes((project / "issues" / "2023-12-07-ai-productivity-09"
                                          / "images" / "paper.png").read_bytes())
    result = check(run, project, {"01-news.md": section("一段话。\n\n![](images/f.png)"),
                                  "images/f.png": (project / "figure.png").read_bytes()})
    assert result.exit_code == 1
    assert findings(result) == ["t/01-news.md:9: error: image 'images/f.png' has no alt text; "
                                "describe it between the brackets: ![what it shows](...)"]




def test_html_at_gmail_clipping_size(run, project):
    long = "\n\n".join("很长的段落，" * 40 for _ in range(110))  # 79 KB: two such sections
    result = check(run, project, {"01-news.md": section(long), "02-news.md": section(long)})
    assert result.exit_code == 1
    assert [f for f in findings(result) if "Gmail" in f][0].startswith(
        "t: error: the HTML is ")
    assert findings(result)[-1].endswith(" KB; Gmail clips messages at 102 KB: shorten the "
                                         "issue")




def test_unsubscribe_placeholder_missing_from_templates(run, project, own_templates):
    for name in ("email/issue.mjml.j2", "text/issue.txt.j2"):
        path = project / "templates" / name
        path.write_text(path.read_text().replace("%%unsubscribe_url%%", "#"))
    result = check(run, project, {})
    assert result.exit_code == 1
    assert findings(result) == [
        "templates/email/issue.mjml.j2: error: no %%unsubscribe_url%% in the rendered email; "
        "every issue must let readers leave: add a link to it",
        "templates/text/issue.txt.j2: error: no %%unsubscribe_url%% in the rendered email; "
        "every issue must let readers leave: add a link to it"]


def test_unfilled_template_variable(run, project, own_templates):
    path = project / "templates" / "text" / "issue.txt.j2"
    path.write_text(path.read_text().replace("{{ sender.address }}", "{{ sender.postal }}"))
    result = check(run, project, {})
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if "sender.postal" in text)
    assert findings(result) == [f"templates/text/issue.txt.j2:{line}: error: unfilled template "
                                "variable: 'pipeline.config.Sender object' has no attribute 'postal'; fix the "
                                "name or provide the value"]


def test_a_failing_template_expression_is_its_line_not_a_traceback(run, project, own_templates):
    path = project / "templates" / "text" / "issue.txt.j2"
    path.write_text(path.read_text().replace("{{ sender.address }}", '{{ "-" * "x" }}'))
    result = check(run, project, {})
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if '"-" * "x"' in text)
    assert findings(result) == [f"templates/text/issue.txt.j2:{line}: error: template error: "
                                "can't multiply sequence by non-int of type 'str'; fix the "
                                "expression on this line"]


# --- warnings ------------------------------------------------------------------------


def test_long_subject_counts_cjk_as_two_columns(run, project):
    subject = "这是一个非常非常长的邮件主题，长到手机上的邮件客户端一定会把它截断"  # 33 chars
    result = check(run, project, {"issue.yaml": YAML + f'subject: "{subject}"\n'})
    assert result.exit_code == 0
    assert findings(result) == ["t/issue.yaml:5: warning: the subject is 66 columns; keep it "
                                "under 60 (CJK characters count two) or mail clients cut it"]


def test_missing_and_long_preheader(run, project):
    missing = check(run, project, {"issue.yaml": YAML.replace('preheader: "一句简短的预览"\n', "")})
    assert findings(missing) == ["t/issue.yaml:2: warning: no preheader; add 'preheader: ...', "
                                 "the line inboxes show after the subject"]
    long = "预览" * 23
    result = check(run, project, {"issue.yaml": YAML.replace("一句简短的预览", long)})
    assert findings(result) == ["t/issue.yaml:3: warning: the preheader is 92 columns; keep it "
                                "under 90"]


def test_html_near_the_clipping_size(run, project):
    long = "\n\n".join("较长的段落，" * 40 for _ in range(110))  # about 97 KB of HTML
    result = check(run, project, {"01-news.md": section(long)})
    assert result.exit_code == 0
    (finding,) = findings(result)
    assert finding.startswith("t: warning: the HTML is ")
    assert finding.endswith(" KB, close to Gmail's 102 KB clipping limit")




def test_images_without_asset_url(run, project):
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text().replace('asset_url = "https://news.example.com/assets"', ""))
    image = (project / "issues" / "2023-12-07-ai-productivity-09" / "images" / "paper.png")
    result = check(run, project, {"01-news.md": section("![论文首页](images/p.png)"),
                                  "images/p.png": image.read_bytes()})
    assert findings(result) == ["newsletter.toml: warning: asset_url is not set, so the email's "
                                "images point at local files; set asset_url to where the "
                                "images are hosted"]






def test_space_between_cjk_and_latin(run, project):
    result = check(run, project, {"01-news.md": section("第一段。\n\n直接调用transformers库即可。")})
    assert findings(result) == [
        "t/01-news.md:9: warning: no space between Chinese and Latin script in "
        "'直接调用trans'; write '用 t'",
        "t/01-news.md:9: warning: no space between Chinese and Latin script in "
        "'rmers库即可。'; write 's 库'"]




def test_strict_fails_on_warnings_and_json_lists_findings(run, project):
    result = check(run, project, {"01-news.md": section("[旧站](http://example.com/old)")},
                   "--strict", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [{
        "path": "t/01-news.md", "line": 7, "severity": "warning",
        "message": "http://example.com/old is not https; use the https:// address if the site "
                   "has one"}]


def test_online_checks_every_external_link(run, project):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_HEAD(self):
            status = {"/ok": 200, "/gone": 404, "/broken": 500, "/nohead": 405}[self.path]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            self.send_response(200 if self.path == "/nohead" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    dead = f"http://127.0.0.1:{free_port()}/x"
    body = (f"[好]({base}/ok)\n[没了]({base}/gone)\n[坏]({base}/broken)\n[不认 HEAD]({base}/nohead)"
            f"\n[连不上]({dead})")
    try:
        offline = check(run, project, {"01-news.md": section(body)})
        online = run("check", "t", "--online")
    finally:
        server.shutdown()
        server.server_close()
    assert not [f for f in findings(offline) if "answers" in f or "reached" in f]
    assert [f for f in findings(online) if "http://" not in f.split(": ", 2)[-1][:4]
            and "not https" not in f] == [
        f"t/01-news.md:8: error: {base}/gone answers 404; fix or remove the link",
        f"t/01-news.md:9: warning: {base}/broken answers 500 (a server error; it may pass later)",
        f"t/01-news.md:11: warning: {dead} cannot be reached: [Errno 111] Connection refused",
    ]
    assert online.exit_code == 1


def test_colours_below_aa_are_warned_with_the_pair_and_ratio(run, project):
    """The muted grey the sample publication had (4.09:1 on its page background) and a
    dark accent as dark as the light one: each pair at the line of its text colour."""
    toml = project / "newsletter.toml"
    text = toml.read_text().replace('muted = "#59636e"', 'muted = "#6e7781"')
    text = text.replace('accent = "#2dd4bf"', 'accent = "#0f766e"')
    toml.write_text(text)
    lines = text.splitlines()
    muted, accent = lines.index('muted = "#6e7781"') + 1, lines.index('accent = "#0f766e"', 30) + 1
    result = check(run, project, {})
    assert result.exit_code == 0
    assert findings(result) == [
        f"newsletter.toml:{muted}: warning: colors.muted: #6e7781 on colors.background "
        "#f2f3f5 is 4.09:1; text needs 4.5:1 (WCAG AA): darken colors.muted or lighten "
        "colors.background",
        f"newsletter.toml:{muted}: warning: colors.muted: #6e7781 on colors.code #eef0f3 is "
        "3.98:1; text needs 4.5:1 (WCAG AA): darken colors.muted or lighten colors.code",
        f"newsletter.toml:{accent}: warning: colors.dark.accent: #0f766e on colors.dark.card "
        "#1e1f22 is 3.01:1; text needs 4.5:1 (WCAG AA): lighten colors.dark.accent or darken "
        "colors.dark.card",
        f"newsletter.toml:{accent}: warning: colors.dark.accent: #0f766e on colors.dark.code "
        "#2a2c30 is 2.55:1; text needs 4.5:1 (WCAG AA): lighten colors.dark.accent or darken "
        "colors.dark.code",
    ]
