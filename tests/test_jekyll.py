"""export --format jekyll, built by a real Jekyll (Debian's jekyll package): a hostile
issue becomes a post that shows its script and its Liquid as text, whose images resolve
under the blog's baseurl, and whose front matter Jekyll reads back exactly.

One `jekyll build` for the module (~0.6 s here): a minimal blog made by the test
(_config.yml with baseurl: /blog, a one-file layout, no theme, no gems), no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import PUBLICATION, Runner, write_issue

JEKYLL = "/usr/bin/jekyll"
FOLDER = "2024-02-01-liquid-and-script"
PIC = (PUBLICATION / "issues" / "2023-12-07-ai-productivity-09" / "images" / "colab.png")

LIQUID = ["{{ site.time }}", "{% include x %}", "{% endraw %}", "{%- raw -%}",
          "{{- page.title -}}", "{% raw %}"]
META = {
    "number": 7,
    "title": "He said \"stop\": 'now' {{ site.time }} {% include x %}\n--- *&!%@ yes",
    "date": "2024-02-01",
    "preheader": "<b>bold</b> & {{ site.time }} {% endraw %}: null",
    "tags": ["yes", "null", "2024-01-31", "1,000", "*anchor", "&a", "!tag", "%x", "@at",
             "- dash", "---", "{{ page.title }}", "a: b", "#hash", "x\u0085y\u2028z", "1e3"],
}
SECTION = """---
kind: news
title: "Section {{ site.time }}"
---

Intro {% raw %} with {{ site.time }}.

## Item {% include x %}

<script>alert(1)</script>

<img src=x onerror=alert(1)>

Text {{ site.time }} and {% include x %} and {% endraw %} and {%- raw -%} and \
{{- page.title -}}.

`inline {{ site.time }}`

```
fenced {% include x %}
{% endraw %}
```

![a local picture](images/pic.png)

![it's quoted](images/it's.png)

[a script link](javascript:alert(1))
"""
LAYOUT = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ page.title | escape }}</title></head>
<body>
<h1 id="title">{{ page.title | escape }}</h1>
<pre id="page">{{ page | jsonify | escape }}</pre>
<div id="excerpt">{{ page.excerpt }}</div>
<article id="content">
{{ content }}
</article>
</body></html>
"""


class Page(HTMLParser):
    """Elements by tag, the text of each element with an id, and every attribute."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.text: dict[str, str] = {}
        self.open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, name, value or "") for name, value in attrs]
        ids = [value for name, value in attrs if name == "id"]
        if ids:
            self.open.append(ids[0])
            self.text[ids[0]] = ""

    def handle_endtag(self, tag):
        if self.open and tag in ("h1", "pre", "div", "article"):
            self.open.pop()

    def handle_data(self, data):
        for name in self.open:
            self.text[name] += data


@pytest.fixture(scope="module")
def blog(tmp_path_factory):
    """The hostile issue exported into a minimal blog, built once by Jekyll:
    (the blog folder, the post file, the built post's HTML)."""
    if not Path(JEKYLL).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{JEKYLL} is missing; .ci/run installs the jekyll package")
        pytest.skip(f"jekyll not installed ({JEKYLL}): apt-get install jekyll")
    project = tmp_path_factory.mktemp("jekyll")
    shutil.copytree(PUBLICATION, project, dirs_exist_ok=True)
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text() + '\n[jekyll]\nfront_matter = { series = '
                    '"{{ site.time }}: yes", "odd: {{ key" = "---", lead = 3 }\n')
    write_issue(project / "issues" / FOLDER, {
        "issue.yaml": json.dumps(META),  # YAML too: every character \u-escaped
        "01-news.md": SECTION,
        "images/pic.png": PIC.read_bytes(),
        "images/it's.png": PIC.read_bytes()})
    site = project / "blog"
    write_issue(site, {"_config.yml": "title: Team blog\nbaseurl: /blog\n",
                       "_layouts/post.html": LAYOUT})
    result = Runner(project)("export", str(project / "issues" / FOLDER), "--out", str(site))
    assert result.exit_code == 0, result.output
    home = project / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "JEKYLL_ENV": "production"}
    built = subprocess.run(
        [JEKYLL, "build", "--safe", "--disable-disk-cache", "--source", str(site),
         "--destination", str(site / "_site")],
        cwd=site, env=env, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
    html = (site / "_site" / "2024" / "02" / "01" / "liquid-and-script.html").read_text()
    return site, site / "_posts" / f"{FOLDER}.html", html


def test_the_post_is_html_and_its_only_liquid_is_the_image_urls(blog):
    site, post, _ = blog
    assert sorted(p.name for p in (site / "_posts").iterdir()) == [f"{FOLDER}.html"]
    body = post.read_text().split("\n---\n", 1)[1]
    ours = ("{{ '/assets/2024-02-01-liquid-and-script/images/pic.png' | relative_url }}",
            "{{ '/assets/2024-02-01-liquid-and-script/images/it%27s.png' | relative_url }}")
    for liquid in ours:
        assert body.count(liquid) == 1
        body = body.replace(liquid, "")
    assert "{" not in body and "}" not in body
    assert "&#123;&#123; site.time &#125;&#125;" in body
    assert "<script" not in body and "<img src=x" not in body


def test_script_and_liquid_in_the_content_show_as_text(blog):
    _, _, html = blog
    page = Page(html)
    assert "script" not in page.tags
    assert not [a for a in page.attrs if a[1].startswith("on")]
    assert not [a for a in page.attrs if a[2].lower().startswith("javascript:")]
    content = page.text["content"]
    assert "<script>alert(1)</script>" in content
    assert "<img src=x onerror=alert(1)>" in content
    assert "Text {{ site.time }} and {% include x %} and {% endraw %} and {%- raw -%} and " \
           "{{- page.title -}}." in content
    assert "Intro {% raw %} with {{ site.time }}." in content
    assert "Section {{ site.time }}" in content and "Item {% include x %}" in content
    assert "inline {{ site.time }}" in content
    assert "fenced {% include x %}\n{% endraw %}" in content


def test_images_resolve_under_the_baseurl(blog):
    site, _, html = blog
    sources = [value for tag, name, value in Page(html).attrs if tag == "img" and name == "src"]
    assets = "/blog/assets/2024-02-01-liquid-and-script/images/"
    local = [src for src in sources if src.startswith(assets)]
    assert len(local) == 2 and len(sources) == 2, sources
    for src in local:  # the file is there, at the URL's path under the baseurl
        assert (site / "_site" / unquote(src.removeprefix("/blog/"))).is_file(), src


def test_jekyll_reads_the_front_matter_back_exactly(blog):
    _, _, html = blog
    page = Page(html)
    assert page.text["title"] == META["title"]
    data = json.loads(page.text["page"])
    assert data["title"] == META["title"]
    assert data["tags"] == META["tags"]
    assert data["layout"] == "post"
    assert data["series"] == "{{ site.time }}: yes"
    assert data["odd: {{ key"] == "---"
    assert data["lead"] == 3
    # the excerpt is HTML, as Jekyll's own excerpts are: the preheader as text
    assert page.text["excerpt"] == META["preheader"]
