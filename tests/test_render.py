"""Rendering: golden output of the samples, every Markdown feature, hostile input."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.issue import read_issue
from pipeline.render import render_issue
from pipeline.render.columns import display_width, wrap
from tests.conftest import FIXTURES
from tests.golden import GOLDEN, PUBLICATION, render_sample, samples


@pytest.mark.parametrize("folder", samples(), ids=lambda p: p.name)
def test_sample_matches_golden_files(folder: Path):
    rendered = render_sample(folder)
    assert rendered.html == (GOLDEN / folder.name / "email.html").read_text(encoding="utf-8"), \
        "HTML differs from tests/golden; run `make golden` if the change is intended"
    assert rendered.text == (GOLDEN / folder.name / "email.txt").read_text(encoding="utf-8"), \
        "text differs from tests/golden; run `make golden` if the change is intended"


def test_head_keeps_the_reset_the_outlook_fonts_and_a_preheader_filler(kitchen_sink):
    issue, rendered = kitchen_sink
    html = rendered.html
    head = html[:html.index("</head>")]
    assert "#outlook a" in head and "-ms-interpolation-mode: bicubic" in head
    assert "-ms-interpolation-mode" not in html[html.index("</head>"):]  # not inlined
    assert "<!--[if mso]><style>body, table, td, div, p, a, h1, h2, h3, li { font-family: " \
           "'Microsoft YaHei'" in head
    hidden = re.search(r'<div style="display:none;[^"]*">([^<]*)</div>', html)[1]
    assert hidden == issue.preheader + "\u034f\u200c\u00a0" * 50


@pytest.mark.parametrize("folder", samples(), ids=lambda p: p.name)
def test_opening_the_email_asks_no_third_party_for_fonts(folder: Path):
    """MJML adds a Google Fonts @import and <link> for a font it knows by name (Roboto,
    Open Sans…): every reader's client would ask Google on opening. None is named."""
    html = render_sample(folder).html
    assert "fonts.googleapis" not in html and "@import" not in html
    assert not re.search(r"<link\b", html)


def test_golden_files_exist_for_every_sample():
    assert sorted(p.name for p in GOLDEN.iterdir()) == [p.name for p in samples()]


@pytest.fixture(scope="module")
def kitchen_sink():
    config = load_config(PUBLICATION / "newsletter.toml", env={})
    issue = read_issue(FIXTURES / "kitchen-sink", config)
    return issue, render_issue(issue, config)


class Tags(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_every_item_appears_in_both_parts(kitchen_sink):
    issue, rendered = kitchen_sink
    titles = [item.title for section in issue.sections for item in section.items]
    assert titles == ["Paragraphs and emphasis", "Lists", "Quote and code", "Image",
                      "Script and friends"]
    for title in titles:
        assert title in rendered.html
        assert f"\n{title}\n{'-' * len(title)}\n" in rendered.text


def test_markdown_features_render_in_html(kitchen_sink):
    _, rendered = kitchen_sink
    html = rendered.html
    for fragment in ("<em>italic</em>", "<strong>bold</strong>", "<s>struck</s>",
                     "<code", ">code</code>", "<li", "first step", "<ol", "<ul", "<blockquote",
                     "<pre", "GPT4All: https://gpt4all.io/index.html",
                     'href="https://example.com/a?b=1&amp;c=2&amp;utm_medium=email&amp;'
                     'utm_campaign=kitchen-sink"',
                     "fish &amp; chips, 1 &lt; 2 and a literal &lt;b&gt;tag&lt;/b&gt;"):
        assert fragment in html, fragment
    images = [attrs for tag, attrs in Tags(html).tags if tag == "img"]
    lone = next(a for a in images if a["alt"] == "A figure with a caption")
    assert lone["src"] == "https://news.example.com/assets/kitchen-sink/images/figure.png"
    assert (lone["width"], lone["height"]) == ("550", "257")  # 900x420 scaled to the column
    assert "height:auto" in lone["style"]
    inline = next(a for a in images if a["alt"] == "small figure")
    assert inline["src"] == lone["src"]
    assert (inline["width"], inline["height"]) == ("550", "257")  # Outlook needs both
    assert "max-width:100%" in inline["style"] and "height:auto" in inline["style"]


def test_markdown_features_render_in_text(kitchen_sink):
    _, rendered = kitchen_sink
    text = rendered.text
    assert "- first bullet\n- second bullet with a link [2]" in text
    assert "1. first step\n2. second step" in text
    assert "> A quotation that carries _emphasis_." in text
    assert "    GPT4All: https://gpt4all.io/index.html\n    MLC: https://llm.mlc.ai" in text
    assert "[1] https://example.com/a?b=1&c=2&utm_medium=email&utm_campaign=kitchen-sink" \
        in text
    assert "[3] https://news.example.com/assets/kitchen-sink/images/figure.png" in text
    assert "fish & chips, 1 < 2" in text  # raw in text, escaped only in HTML


def test_untrusted_markdown_never_reaches_the_html_as_markup(kitchen_sink):
    _, rendered = kitchen_sink
    tags = Tags(rendered.html).tags
    assert not [t for t, _ in tags if t in ("script", "iframe", "object", "embed")]
    for tag, attrs in tags:
        assert not [k for k in attrs if k.startswith("on")], (tag, attrs)
        for key in ("href", "src"):
            assert not (attrs.get(key) or "").lower().startswith(("javascript:", "data:")), attrs
    assert "&lt;script&gt;alert(\"x\")&lt;/script&gt;" in rendered.html


def test_email_has_what_mail_clients_need(kitchen_sink):
    _, rendered = kitchen_sink
    html = rendered.html
    assert html.startswith("<!doctype html>")
    assert '<html lang="zh-CN"' in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media" in html  # responsive rules survive CSS inlining
    assert html.count('href="%%unsubscribe_url%%"') == 1
    assert html.count('href="%%web_url%%"') == 2
    assert "Every Markdown feature in one issue" in html  # preheader
    assert "%%unsubscribe_url%%" in rendered.text


def test_text_part_lines_fit_78_columns():
    for folder in samples():
        for line in render_sample(folder).text.splitlines():
            # only a word longer than a line (a URL) may overflow, alone on its line
            assert display_width(line) <= 78 or display_width(line.split()[-1]) > 70, line


@pytest.mark.parametrize("text, width, expected", [
    ("调用transformers库", 10, "调用\ntransforme\nrs库"[:0] + "调用\ntransformers\n库"),
    ("你好，世界。你好，世界。", 10, "你好，世\n界。你好，\n世界。"),
    ("one two three", 7, "one two\nthree"),
])
def test_wrap_counts_cjk_as_two_columns(text, width, expected):
    assert wrap(text, width) == expected


def test_images_are_copied_as_assets(run, project):
    result = run("build", "2023-12-07-ai-productivity-09")
    assert result.exit_code == 0, result.output
    out = project / "build" / "2023-12-07-ai-productivity-09"
    assets = sorted(p.relative_to(out / "assets").as_posix()
                    for p in (out / "assets").rglob("*") if p.is_file())
    assert assets == ["images/42master.jpg", "images/colab.png", "images/header.gif",
                      "images/milestones.jpg", "images/paper.png"]
    html = (out / "email.html").read_text()
    for name in assets:
        assert f'src="https://news.example.com/assets/2023-12-07-ai-productivity-09/{name}"' in html
    assert sorted(p.name for p in out.iterdir()) == ["assets", "email.html", "email.mjml",
                                                    "email.txt"]


def test_template_with_an_unknown_variable_points_at_the_template(run, project, own_templates):
    path = project / "templates" / "email" / "sections" / "news.mjml.j2"
    path.write_text(path.read_text().replace("{{ b.item_title(item.title, colors) }}",
                                             "{{ b.item_title(item.headline, colors) }}"))
    result = run("build", "2023-12-07-ai-productivity-09")
    assert result.exit_code == 1
    assert re.fullmatch(r"templates/email/_blocks\.mjml\.j2:\d+: unfilled template "
                        r"variable: 'dict object' has no attribute 'headline'; fix the name or "
                        r"provide the value \(used from templates/email/sections/news\.mjml\.j2:"
                        r"\d+, .*templates/email/issue\.mjml\.j2:\d+\)\n", result.stderr), \
        result.stderr
