"""Text rules of issue 14 (part): CJK lines joined without a space, the plain-text
part's emphasis, headings, colons and 72-column wrapping."""

from __future__ import annotations

import pytest

from pipeline.issue.commonmark import parse
from pipeline.render.blocks import render_html
from pipeline.render.columns import TEXT_WIDTH, display_width, joins_without_space
from pipeline.render.plaintext import References, render_text
from pipeline.render.templates import colon

SOURCE = ("大模型的一周\n过得很快，**多模态**\n来了；Gemini\n也来了。English words\n"
          "wrap here; 한국어\n문장\n")


@pytest.mark.parametrize("before, after, joined", [
    ("中", "文", True), ("，", "中", True), ("中", "。", True), ("あ", "い", True),
    ("中", "A", False), ("A", "中", False), ("a", "b", False),
    ("한", "국", False),  # Korean puts spaces between words
    ("", "中", False),
])
def test_which_soft_breaks_are_no_space(before, after, joined):
    assert joins_without_space(before, after) is joined


def test_a_soft_break_between_cjk_is_no_space_in_html():
    assert render_html(parse(SOURCE), str) == (
        "<p>大模型的一周过得很快，<strong>多模态</strong>来了；Gemini\n也来了。English words\n"
        "wrap here; 한국어\n문장</p>")


def test_a_soft_break_between_cjk_is_no_space_in_text():
    assert render_text(parse(SOURCE), References()) == (
        "大模型的一周过得很快，*多模态*来了；Gemini 也来了。English words wrap\n"
        "here; 한국어 문장")


def test_text_keeps_emphasis_strikethrough_and_heading_levels():
    text = render_text(parse("有 *强调*、**加粗** 和 ~~删除~~。\n\n### 小标题\n\n#### 更小\n\n正文"),
                       References())
    assert text == "有 _强调_、*加粗* 和 ~删除~。\n\n### 小标题\n\n#### 更小\n\n正文"


def test_text_wraps_at_72_display_columns_and_never_breaks_a_url():
    url = "https://example.com/" + "a" * 90
    text = render_text(parse("中文" * 50 + " " + url + " 结束"), References())
    lines = text.split("\n")
    assert url in lines
    assert all(display_width(line) <= TEXT_WIDTH for line in lines if line != url)
    assert max(display_width(line) for line in lines if line != url) == 72


@pytest.mark.parametrize("label, shown", [("退订", "退订："), ("Unsubscribe", "Unsubscribe: "),
                                          ("リンク", "リンク：")])
def test_labels_take_the_colon_of_their_script(label, shown):
    assert colon(label) == shown
