"""The web archive, its Atom feed and the Jekyll export: one source, every output."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import feedparser
import yaml

from tests.conftest import MINIMAL_SECTION, horizontal_overflow, write_issue

ISSUE = "2023-12-07-ai-productivity-09"
ROUNDUP = "2023-03-19-ai-weekly-roundup"


class Links(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.urls: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.urls.append(value)


def add_draft(project: Path) -> None:
    write_issue(project / "issues" / "2024-01-05-draft", {
        "issue.yaml": 'number: 10\ntitle: "草稿：还没写完"\ndate: 2024-01-05\n',
        "01-news.md": MINIMAL_SECTION})


def test_publish_lists_the_published_issues_newest_first(run, project):
    add_draft(project)
    result = run("publish")
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"published 2 issues to site/\n  {ISSUE}/\n  {ROUNDUP}/\n")
    index = (project / "site" / "index.html").read_text()
    assert index.index(f'href="{ISSUE}/"') < index.index(f'href="{ROUNDUP}/"')
    assert "GPT 商店推迟到 2024 年；ChatGPT 满一周岁" in index  # the preheader
    assert "草稿" not in index and not (project / "site" / "2024-01-05-draft").exists()


def test_the_feed_parses_and_lists_exactly_the_published_issues(run, project):
    add_draft(project)
    run("publish")
    feed = feedparser.parse((project / "site" / "feed.xml").read_bytes())
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "AI生产力快报"
    assert [e.link for e in feed.entries] == [
        f"https://news.example.com/issues/{ISSUE}/", f"https://news.example.com/issues/{ROUNDUP}/"]
    first = feed.entries[0]
    assert first.title == "AI生产力快报｜09"
    content = first.content[0].value
    for title in ("在 Google Colab 里直接用上 transformers", "GPT 商店推迟到 2024 年初",
                  "ChatGPT 满一周岁", "杨立昆：智能不等于控制欲"):
        assert title in content
    assert (f'src="https://news.example.com/issues/{ISSUE}/images/colab.png"') in content
    assert "%%" not in content  # no per-recipient placeholders on the web


def test_a_sent_issue_is_published_even_without_the_flag(run, project, audience):
    meta = project / "issues" / ROUNDUP / "issue.yaml"
    meta.write_text(meta.read_text().replace("publish: true\n", ""))
    assert run("publish").stdout.count("/\n") == 2  # site/ and the one issue
    assert not (project / "site" / ROUNDUP).exists()
    run("send", ROUNDUP, "--yes")
    assert f"  {ROUNDUP}/" in run("publish").stdout


def test_every_link_and_image_resolves_inside_the_site(run, project):
    run("publish")
    site = (project / "site").resolve()
    pages = list(site.rglob("*.html"))
    assert len(pages) == 3
    checked = 0
    for page in pages:
        for url in Links(page.read_text()).urls:
            parsed = urlparse(url)
            if parsed.scheme in ("http", "https", "mailto") or url.startswith("#"):
                continue
            target = (page.parent / parsed.path).resolve()
            if target.is_dir():
                target = target / "index.html"
            assert target.is_file() and site in target.parents, (page, url)
            checked += 1
    assert checked >= 15  # index → pages, pages → index, feed, every image


def test_view_in_browser_points_at_the_issue_page(run, project):
    run("publish")
    run("audience", "add", "reader@example.com")
    run("send", ISSUE, "--yes")
    eml = next((project / "outbox" / ISSUE).glob("*.eml")).read_bytes()
    import email
    from email import policy

    html = email.message_from_bytes(eml, policy=policy.default).get_body(("html",)).get_content()
    url = f"https://news.example.com/issues/{ISSUE}/"
    assert f'href="{url}"' in html
    assert (project / "site" / urlparse(url).path.removeprefix("/issues/") / "index.html").is_file()


def test_jekyll_export_writes_a_post_with_front_matter_and_images(run, project):
    """An HTML post (the archive page's HTML, not the contributors' Markdown: no kramdown
    reading it again) with front matter, and the images under assets/<id>/."""
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text() + '\n[jekyll]\nfront_matter = { style = "huoshui" }\n')
    result = run("export", ISSUE, "--format", "jekyll", "--out", "blog")
    assert result.stdout == "wrote blog/_posts/2023-12-07-ai-productivity-09.html\n"
    text = (project / "blog" / "_posts" / "2023-12-07-ai-productivity-09.html").read_text()
    _, matter, body = text.split("---\n", 2)
    front = yaml.safe_load(matter)
    assert front["layout"] == "post" and front["title"] == "AI生产力快报｜09"
    assert str(front["date"]) == "2023-12-07" and front["tags"] == ["AI"]
    assert front["excerpt"] == "GPT 商店推迟到 2024 年；ChatGPT 满一周岁；杨立昆谈智能与控制欲"
    assert front["style"] == "huoshui"
    run("publish")
    page = (project / "site" / ISSUE / "index.html").read_text()
    for title in ("在 Google Colab 里直接用上 transformers", "GPT 商店推迟到 2024 年初",
                  "ChatGPT 满一周岁", "杨立昆：智能不等于控制欲", "选择变多了"):
        assert f"<h3>{title}</h3>" in body and f"<h3>{title}</h3>" in page
    # the archive page's HTML, images at the blog's baseurl (Jekyll's relative_url)
    liquid = re.compile(r"\{\{ '/assets/2023-12-07-ai-productivity-09/(images/[a-z0-9]+\.[a-z]+)"
                        r"' \| relative_url \}\}")
    assert len(liquid.findall(body)) == 5  # the header and four in the items
    assert liquid.sub(r"\1", body) in page
    assert (project / "blog" / "assets" / ISSUE / "images" / "milestones.jpg").is_file()


def test_jekyll_export_replaces_the_markdown_post_of_earlier_versions(run, project):
    old = project / "blog" / "_posts" / "2023-12-07-ai-productivity-09.md"
    old.parent.mkdir(parents=True)
    old.write_text("---\ntitle: old\n---\n\nold\n")
    result = run("export", ISSUE, "--out", "blog")
    assert result.stdout == ("wrote blog/_posts/2023-12-07-ai-productivity-09.html\n"
                             "removed blog/_posts/2023-12-07-ai-productivity-09.md "
                             "(an earlier export, now HTML)\n")
    assert listing(project / "blog" / "_posts") == ["2023-12-07-ai-productivity-09.html"]


def test_jekyll_front_matter_may_not_replace_what_export_sets(run, project):
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text() + '\n[jekyll]\nfront_matter = { title = "Blog" }\n')
    line = len(toml.read_text().splitlines())
    result = run("export", ISSUE, "--out", "blog")
    assert result.exit_code == 4
    assert result.stderr == (f"newsletter.toml:{line}: jekyll.front_matter: 'title' is set by "
                             "export: each post's comes from its issue.yaml; remove it\n")
    assert not (project / "blog").exists()


def test_index_and_issue_page_fit_a_phone(run, project, browser, static_server):
    run("publish")
    base = static_server(project / "site")
    page = browser.new_page(viewport={"width": 375, "height": 800})
    for path in ("/", f"/{ISSUE}/", f"/{ROUNDUP}/"):
        response = page.goto(base + path)
        assert response.status == 200
        assert horizontal_overflow(page) == 0, path
    page.goto(base + "/")
    with page.expect_navigation(wait_until="load"):  # the issue's page and its images
        page.click(f'a[href="{ISSUE}/"]')
    assert page.locator("h1").inner_text() == "AI生产力快报｜09"
    page.wait_for_function("[...document.images].every(i => i.complete)")
    assert page.evaluate("[...document.images].every(i => i.naturalWidth > 0)")
    page.close()


# --- publish --out only ever deletes what it wrote -------------------------------------


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_publish_replaces_only_its_own_output(run, project):
    assert run("publish").exit_code == 0
    marker = (project / "site" / ".newsletter-site").read_text()
    assert "index.html\n" in marker and f"{ROUNDUP}/images/cover.png\n" in marker
    umask = os.umask(0)
    os.umask(umask)
    assert (project / "site").stat().st_mode & 0o777 == 0o777 & ~umask  # a web server reads it
    meta = project / "issues" / ROUNDUP / "issue.yaml"
    meta.write_text(meta.read_text().replace("publish: true\n", ""))  # unpublished
    assert run("publish").exit_code == 0
    assert not (project / "site" / ROUNDUP).exists()  # left with the rest of the old site
    assert [p.name for p in project.iterdir() if p.name.startswith(".site")] == []
    # an empty folder is taken, and marked as publish's from then on
    (project / "public").mkdir()
    assert run("publish", "--out", "public").exit_code == 0
    assert (project / "public" / ".newsletter-site").is_file()


def test_publish_refuses_a_folder_it_did_not_write(run, project, tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    (home / "notes.txt").write_text("mine")
    blog = project / "blog"
    blog.mkdir()
    (blog / "post.md").write_text("my post")
    before = listing(project)
    own = "; give --out a folder of its own, like site\n"
    refusals = {
        "/": "/: is the root folder" + own,
        str(home): f"{home}: is your home folder" + own,
        ".": ".: is the project folder (it holds newsletter.toml)" + own,
        "..": f"{project.parent}: holds the project folder {project}" + own,
        "../..": f"{project.parent.parent}: holds the project folder {project}" + own,
        "issues": "issues: is the issues folder" + own,
        f"issues/{ISSUE}": f"issues/{ISSUE}: is inside the issues folder" + own,
        "blog": "blog: is not empty and was not written by `newsletter publish` (it has no "
                ".newsletter-site); choose a new or empty folder\n",
    }
    for out, message in refusals.items():
        result = run("publish", "--out", out)
        assert result.exit_code == 1, (out, result.output)
        assert result.stderr == message
    assert listing(project) == before and (blog / "post.md").read_text() == "my post"
    assert listing(home) == ["notes.txt"]

    # a folder publish wrote, to which someone added a file: that file is not its to delete
    assert run("publish", "--out", "site").exit_code == 0
    (project / "site" / "CNAME").write_text("news.example.com\n")
    (project / "site" / ISSUE / "notes").mkdir()
    result = run("publish", "--out", "site")
    assert result.exit_code == 1
    assert result.stderr == (f"site: holds files that `newsletter publish` did not write "
                             f"({ISSUE}/notes, CNAME); move them out of it, or publish to "
                             "another folder\n")
    assert (project / "site" / "CNAME").read_text() == "news.example.com\n"
