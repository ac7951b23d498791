"""The email as readers see it, in a real Chromium at 600 px: every text node readable
(WCAG AA contrast) in the light scheme, in dark mode (prefers-color-scheme: dark) and in
the forced dark of clients that mark the message with [data-ogsc]/[data-ogsb]
(Outlook.com and the Outlook apps); axe-core finds nothing serious or critical.

No network: the images are answered with a 1×1 PNG, everything else is refused."""

from __future__ import annotations

import io
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from pipeline.config import load_config
from pipeline.issue import read_issue
from pipeline.render import render_issue
from tests.conftest import FIXTURES, MINIMAL_SECTION, write_issue
from tests.golden import PUBLICATION, render_sample, samples

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"

def _pixel() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (1, 1), (0, 0, 0, 0)).save(out, "PNG")
    return out.getvalue()


PIXEL = _pixel()  # every image: transparent, 1×1
# scheme -> (the colour scheme the page prefers, whether the client forces dark colours)
SCHEMES = {"light": ("light", False), "dark": ("dark", False), "forced dark": ("light", True)}

# For every visible text node: its colour and the background it is painted on (the
# first ancestor with a background colour, semi-transparent layers blended; bgcolor
# attributes are part of the computed style), the WCAG 2 contrast ratio, and whether
# it is large text (24 px, or 18.66 px bold), which needs 3:1 instead of 4.5:1.
CONTRAST = """
() => {
  const rgba = (css) => {
    const p = css.match(/[\\d.]+/g).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, below) => top.slice(0, 3).map(
    (v, i) => v * top[3] + below[i] * (1 - top[3])).concat([1]);
  const probe = document.createElement('div');
  probe.style.backgroundColor = 'Canvas';
  document.documentElement.appendChild(probe);
  const canvas = rgba(getComputedStyle(probe).backgroundColor);
  probe.remove();
  const background = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const color = rgba(getComputedStyle(e).backgroundColor);
      if (color[3] > 0) layers.push(color);
      if (color[3] >= 1) break;
    }
    return layers.reduceRight((below, top) => over(top, below), canvas);
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const hex = (c) => '#' + c.slice(0, 3).map(
    (v) => Math.round(v).toString(16).padStart(2, '0')).join('');
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const element = node.parentElement;
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (!text || !element.checkVisibility({opacityProperty: true,
                                            visibilityProperty: true})) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    if (box.width < 1 || box.height < 1) continue;
    const style = getComputedStyle(element);
    const back = background(element);
    const fore = over(rgba(style.color), back);
    const [light, dark] = [luminance(fore), luminance(back)].sort((a, b) => b - a);
    const size = parseFloat(style.fontSize);
    const bold = parseInt(style.fontWeight, 10) >= 700;
    found.push({text: text.slice(0, 40), color: hex(fore), background: hex(back),
                ratio: (light + 0.05) / (dark + 0.05),
                large: size >= 24 || (bold && size >= 18.66),
                on_dark: luminance(back) < 0.2, label: !!element.closest('.tag')});
  }
  return found;
}
"""


# the samples, and the issue that uses every Markdown feature (quotes, code, lists, links)
EMAILS = [*samples(), FIXTURES / "kitchen-sink"]


@pytest.fixture(scope="module")
def emails() -> dict[str, str]:
    return {folder.name: render_sample(folder).html for folder in EMAILS}


def open_email(browser, html: str, scheme: str):
    prefers, forced = SCHEMES[scheme]
    page = browser.new_page(viewport={"width": 600, "height": 900})
    page.emulate_media(color_scheme=prefers)
    page.route("**/*", lambda route: route.fulfill(status=200, content_type="image/png",
                                                   body=PIXEL)
               if route.request.resource_type == "image" else route.abort())
    page.set_content(html, wait_until="load")
    if forced:  # as Outlook.com marks a message it shows in dark mode
        page.evaluate("for (const e of [document.documentElement, document.body]) {"
                      " e.setAttribute('data-ogsc', ''); e.setAttribute('data-ogsb', ''); }")
    return page


def unreadable(page) -> list[str]:
    """The text nodes below AA: text, colours and ratio, one line each."""
    return [f"{n['text']!r}: {n['color']} on {n['background']} is {n['ratio']:.2f}:1, "
            f"needs {3 if n['large'] else 4.5}:1"
            for n in page.evaluate(CONTRAST) if n["ratio"] < (3 if n["large"] else 4.5)]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("sample", [p.name for p in EMAILS])
def test_every_text_node_is_readable(browser, emails, sample, scheme):
    """...and in both dark schemes the email is dark: every text but the tips label's on
    a dark background, so the forced-dark styles are measured, not the light ones."""
    page = open_email(browser, emails[sample], scheme)
    nodes = page.evaluate(CONTRAST)
    assert len(nodes) > 50  # the whole email was measured, not an empty page
    assert not unreadable(page), "\n".join(unreadable(page))
    dark = scheme != "light"
    wrong = [f"{n['text']!r} on {n['background']}" for n in nodes
             if n["on_dark"] != dark and not n["label"]]
    assert not wrong, f"not in the {scheme} scheme:\n" + "\n".join(wrong)
    page.close()


def test_the_contrast_measure_finds_grey_on_grey(browser):
    """The measure itself can fail: grey on grey, a colour blended from a semi-transparent
    background, and large text judged at 3:1."""
    page = open_email(browser, (
        '<body style="background:#ffffff"><p style="color:#777777;background:#888888">'
        'grey on grey</p><div style="background:rgba(0,0,0,0.5)"><span style="color:#333">'
        'dark on a dimmed page</span></div><p style="color:#949494;font-size:24px">large '
        'and light</p><p style="color:#949494;font-size:16px">small and light</p></body>'),
        "light")
    assert unreadable(page) == [
        "'grey on grey': #777777 on #888888 is 1.26:1, needs 4.5:1",
        "'dark on a dimmed page': #333333 on #808080 is 3.18:1, needs 4.5:1",
        "'small and light': #949494 on #ffffff is 3.03:1, needs 4.5:1",
    ]
    page.close()


@pytest.fixture(scope="module")
def axe():
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail("axe-core is missing: make test runs npm ci in tests/")
        pytest.skip("axe-core is missing: npm ci --prefix tests (needs npm)")
    return AXE


def axe_findings(page, axe: Path) -> list[str]:
    page.add_script_tag(path=str(axe))
    violations = page.evaluate("async () => (await axe.run(document, {resultTypes: "
                               "['violations']})).violations.map(v => ({id: v.id, impact: "
                               "v.impact, help: v.help, nodes: v.nodes.map(n => "
                               "n.target.join(' '))}))")
    return [f"{v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])}: "
            f"{', '.join(v['nodes'][:3])})" for v in violations]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("sample", [p.name for p in EMAILS])
def test_axe_finds_nothing_serious(browser, emails, axe, sample, scheme):
    page = open_email(browser, emails[sample], scheme)
    findings = axe_findings(page, axe)
    serious = [f for f in findings if f.startswith(("serious", "critical"))]
    assert not serious, "\n".join(serious)
    page.close()


# --- the structure screen readers read (no browser needed) ---------------------------


class Outline(HTMLParser):
    """The headings (level, text), the tables' roles and the article wrapper of an email,
    outside Outlook's conditional comments (which only Outlook reads)."""

    def __init__(self, html: str):
        super().__init__()
        self.headings: list[tuple[int, str]] = []
        self.table_roles: list[str | None] = []
        self.article: dict[str, str | None] = {}
        self.root: dict[str, str | None] = {}
        self._heading: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.root = attrs
        elif tag == "table":
            self.table_roles.append(attrs.get("role"))
        elif attrs.get("role") == "article" and not self.article:
            self.article = attrs
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = [tag]

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)

    def handle_endtag(self, tag):
        if self._heading and tag == self._heading[0]:
            self.headings.append((int(tag[1]), "".join(self._heading[1:]).strip()))
            self._heading = None


@pytest.mark.parametrize("folder", samples(), ids=lambda p: p.name)
def test_the_title_is_the_one_h1_and_headings_go_in_order(folder):
    config = load_config(PUBLICATION / "newsletter.toml", env={})
    issue = read_issue(folder, config)
    outline = Outline(render_issue(issue, config).html)
    levels = [level for level, _ in outline.headings]
    assert outline.headings[0] == (1, issue.title) and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), levels
    titles = [item.title for section in issue.sections for item in section.items]
    assert [text for level, text in outline.headings if level == 2] == titles
    assert 3 in levels or folder.name != "2023-12-07-ai-productivity-09"  # ### in an item


@pytest.mark.parametrize("folder", samples(), ids=lambda p: p.name)
def test_every_table_is_a_layout_table_for_screen_readers(folder):
    roles = Outline(re.sub(r"<!--|-->", "", render_sample(folder).html)).table_roles
    assert len(roles) > 20 and set(roles) == {"presentation"}


def test_language_direction_and_label_come_from_the_issue(project):
    """A sample without `language:` is in the publication's language; one with it is in
    its own, right to left for Arabic: <html>, the article wrapper, the alignment."""
    config = load_config(project / "newsletter.toml", env={})
    sample = read_issue(project / "issues" / "2023-12-07-ai-productivity-09", config)
    outline = Outline(render_issue(sample, config).html)
    assert (outline.root["lang"], outline.root["dir"]) == ("zh-CN", "ltr")
    assert outline.article == {"aria-label": "AI生产力快报｜09", "aria-roledescription": "email",
                               "class": "bg", "role": "article", "lang": "zh-CN", "dir": "ltr",
                               "style": "background-color:#f2f3f5;"}
    folder = write_issue(project / "issues" / "arabic", {
        "issue.yaml": 'number: 4\ntitle: "نشرة & أخبار"\ndate: 2024-01-31\nlanguage: ar\n',
        "01-news.md": MINIMAL_SECTION + "\n> اقتباس\n"})
    html = render_issue(read_issue(folder, config), config).html
    outline = Outline(html)
    assert (outline.root["lang"], outline.root["dir"]) == ("ar", "rtl")
    assert (outline.article["aria-label"], outline.article["lang"], outline.article["dir"]) == \
        ("نشرة & أخبار", "ar", "rtl")
    assert 'aria-label="نشرة &amp; أخبار"' in html
    text = "line-height:1.75;text-align:{};color:#1f2328;"  # body text; "view in browser"
    assert text.format("right") in html and text.format("left") not in html  # goes left
    assert "text-align:left;color:#59636e;\"><a href=\"%%web_url%%\"" in html
    assert "border-right:3px solid" in html  # the quote's bar on the side text starts


def test_the_seed_shaped_sample_fits_in_36_kb_with_dark_mode_in_its_head():
    html = render_sample(PUBLICATION / "issues" / "2023-12-07-ai-productivity-09").html
    assert len(html.encode("utf-8")) <= 36 * 1024
    head, body = html.split("</head>")
    assert "@media (prefers-color-scheme:dark){" in head and "[data-ogsc] .bg div{" in head
    assert "[data-og" not in body and "!important" not in body
