"""`newsletter preview` in a real Chromium: live reload, toggles, errors, screenshots.

The preview server runs as its own process on loopback, as an editor would start it."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.conftest import start_process
from tests.smtp_server import free_port

ISSUE = "2023-12-07-ai-productivity-09"
FRAME = "document.getElementById('email')"


@pytest.fixture
def preview(project):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_process(project, ["preview", ISSUE, "--port", str(port), "--no-open"],
                            url + "state.json")
    yield url, process
    if process.poll() is None:
        process.kill()
        process.wait()


def open_page(browser, url, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(url)
    page.wait_for_function(f"{FRAME}.contentDocument && {FRAME}.contentDocument.body && "
                           f"{FRAME}.contentDocument.body.innerText.includes('AI生产力快报')")
    return page


def frame_text(page) -> str:
    """The email's text, once its frame has a document (a rebuild reloads the frame)."""
    page.wait_for_function(f"{FRAME}.contentDocument && {FRAME}.contentDocument.body",
                           timeout=5000)
    return page.evaluate(f"{FRAME}.contentDocument.body.innerText")


def test_the_page_shows_the_inbox_row_the_email_and_the_check(browser, preview):
    url, _ = preview
    page = open_page(browser, url)
    assert page.locator("#sender").inner_text() == "AI生产力快报 <newsletter@example.com>"
    assert page.locator("#gmail .subject").inner_text() == \
        "AI生产力快报｜09：Colab 直接调用 transformers"
    assert page.locator("#apple .preheader").inner_text().startswith("GPT 商店推迟到 2024 年")
    assert page.locator("#size").inner_text().endswith(" KB of Gmail's 102.0 KB")
    assert page.locator("#summary").inner_text() == "0 errors, 0 warnings"
    assert page.locator("#badge").inner_text() == "0 errors, 0 warnings"
    assert "你好，读者朋友：" in frame_text(page)  # placeholders filled for the preview
    page.wait_for_function(f"[...{FRAME}.contentDocument.images].every(i => i.complete)")
    assert page.evaluate(f"[...{FRAME}.contentDocument.images].every(i => i.naturalWidth > 0)")
    page.close()


def test_mobile_toggle_shows_375_px_without_horizontal_scroll(browser, preview):
    url, _ = preview
    page = open_page(browser, url)
    page.click("button[data-view=mobile]")
    page.wait_for_function(f"{FRAME}.clientWidth === 375 && {FRAME}.contentDocument.body "
                           f"&& {FRAME}.contentDocument.body.innerText.length > 100")
    scroll = page.evaluate(f"{FRAME}.contentDocument.documentElement.scrollWidth")
    assert scroll <= 375
    page.click("button[data-view=text]")
    page.wait_for_function(f"{FRAME}.contentDocument.contentType === 'text/plain'")
    assert "文中链接" in frame_text(page)
    assert page.locator("#dark").is_disabled()  # the text part has no dark styles
    page.close()


def test_editing_a_section_updates_the_page_by_itself(browser, preview, project):
    url, _ = preview
    page = open_page(browser, url)
    page.evaluate("window.notReloaded = true")
    path = project / "issues" / ISSUE / "01-productivity.md"
    path.write_text(path.read_text().replace("## 在 Google Colab 里直接用上 transformers",
                                             "## 新标题：Colab 的变化"), encoding="utf-8")
    page.wait_for_function(f"{FRAME}.contentDocument.body && "
                           f"{FRAME}.contentDocument.body.innerText.includes('新标题：Colab 的变化')",
                           timeout=5000)
    assert page.evaluate("window.notReloaded") is True  # updated in place, not reloaded
    page.close()


def test_a_broken_issue_yaml_shows_the_error_and_fixing_it_recovers(browser, preview, project):
    url, _ = preview
    page = open_page(browser, url)
    meta = project / "issues" / ISSUE / "issue.yaml"
    good = meta.read_text()
    meta.write_text(good.replace("number: 9", "number: nine"))
    page.wait_for_selector("#errors:not([hidden])", timeout=5000)
    assert page.locator("#errors li").inner_text() == (
        f"issues/{ISSUE}/issue.yaml:1 error: 'number' must be a whole number like 9, "
        "not 'nine'")
    assert page.locator("#badge").inner_text() == "1 errors, 0 warnings"
    meta.write_text(good.replace("AI生产力快报｜09：", "AI生产力快报｜09 修订："))
    page.wait_for_selector("#errors", state="hidden", timeout=5000)
    page.wait_for_function("document.querySelector('#gmail .subject').textContent"
                           ".includes('修订')")
    page.close()


def test_ctrl_c_stops_the_server_cleanly(preview):
    _, process = preview
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "preview stopped" in err and "Traceback" not in err


def test_screenshot_writes_two_pngs(browser, project):
    done = subprocess.run([sys.executable, "-m", "pipeline", "preview", ISSUE, "--screenshot",
                           "shots"], cwd=project, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"wrote shots/{ISSUE}-375.png\nwrote shots/{ISSUE}-600.png\n")
    for width in (375, 600):
        data = (project / "shots" / f"{ISSUE}-{width}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
        assert int.from_bytes(data[16:20], "big") == width  # the IHDR width


def test_preview_on_a_port_in_use_says_so(run, preview):
    url, _ = preview
    port = url.rstrip("/").rsplit(":", 1)[1]
    result = run("preview", ISSUE, "--port", port, "--no-open")
    assert result.exit_code == 1
    assert result.stderr == (f"cannot listen on 127.0.0.1:{port}: Address already in use; "
                             "choose another --port or --host\n")


# --- one source of truth: the badge, the list and the red box agree --------------------


def problems_shown(page) -> dict:
    return page.evaluate("""() => ({
        badge: document.getElementById('badge').textContent,
        badgeClass: document.getElementById('badge').className,
        summary: document.getElementById('summary').textContent,
        title: document.title,
        list: [...document.querySelectorAll('#findings li')].map(li => li.innerText),
        box: document.getElementById('errors').hidden ? null :
             [...document.querySelectorAll('#errors li')].map(li => li.innerText)})""")


def test_a_failed_rebuild_counts_its_errors_in_the_badge_the_list_and_the_box(
        browser, preview, project):
    url, _ = preview
    page = open_page(browser, url)
    meta = project / "issues" / ISSUE / "issue.yaml"
    meta.write_text(meta.read_text().replace("number: 9", "number: nine")
                    .replace("date: 2023-12-07", "date: someday"))
    page.wait_for_selector("#errors:not([hidden])", timeout=5000)
    shown = problems_shown(page)
    assert shown["badge"] == shown["summary"] == "2 errors, 0 warnings"
    assert shown["badgeClass"] == "error" and shown["title"].startswith("✗ 2 errors, ")
    assert len(shown["list"]) == 2 and shown["box"] == shown["list"]
    assert shown["list"][0].startswith(f"issues/{ISSUE}/issue.yaml:1 error: 'number' must")
    assert shown["list"][1].startswith(f"issues/{ISSUE}/issue.yaml:") and \
        "date" in shown["list"][1]
    assert "你好，读者朋友：" in frame_text(page)  # the last good build stays in view
    page.close()


def shown_after_adding(browser, preview, project, item: str, badge: str):
    """Open the page, add an item to the last section, wait for the badge to say badge:
    then what the page shows."""
    url, _ = preview
    page = open_page(browser, url)
    section = project / "issues" / ISSUE / "03-insights.md"
    section.write_text(section.read_text() + item, encoding="utf-8")
    page.wait_for_function(f"document.getElementById('badge').textContent === {badge!r}",
                           timeout=5000)
    return page, problems_shown(page)


def test_errors_and_warnings_of_check_are_counted_alike(browser, preview, project, run):
    page, shown = shown_after_adding(browser, preview, project, (
        "\n## 两条新链接\n\n[](https://example.com/a) 和 [点击这里](https://example.com/b)。\n"),
        "1 errors, 1 warnings")
    assert shown["summary"] == "1 errors, 1 warnings" and shown["badgeClass"] == "error"
    assert shown["box"] is None  # the build worked: no red box, the email is current
    checked = run("check", ISSUE)  # the page says what `newsletter check` says
    assert checked.stderr == "1 errors, 1 warnings\n"
    assert [line.replace(": error:", " error:").replace(": warning:", " warning:")
            for line in checked.stdout.splitlines()] == shown["list"]
    page.close()


def test_warnings_only_make_a_yellow_badge_and_no_red_box(browser, preview, project):
    page, shown = shown_after_adding(browser, preview, project, (
        "\n## 新链接\n\n[点击这里](https://example.com/b)讲的是评测。\n"), "0 errors, 1 warnings")
    assert shown["summary"] == shown["badge"] and shown["badgeClass"] == "warning"
    assert shown["box"] is None and len(shown["list"]) == 1
    assert shown["list"][0].startswith(f"issues/{ISSUE}/03-insights.md:")
    assert "warning: link text '点击这里' says nothing out of context" in shown["list"][0]
    assert not shown["title"].startswith("✗")
    page.close()


# --- the view and the scroll position survive reloads -----------------------------------


def wait_loaded(page, *parts: str) -> None:
    """Until the frame has loaded (and scrolled) a src with every part in it."""
    test = " && ".join(f"src.includes({part!r})" for part in parts) or "true"
    page.wait_for_function(f"(() => {{ const src = {FRAME}.dataset.loaded || ''; "
                           f"return {test}; }})()", timeout=5000)


def frame_scroll(page) -> int:
    return page.evaluate(f"{FRAME}.contentWindow.scrollY")


def test_the_scroll_position_survives_a_live_reload_and_a_page_reload(browser, preview,
                                                                      project):
    url, _ = preview
    page = open_page(browser, url)
    wait_loaded(page, "email.html")
    page.evaluate(f"{FRAME}.contentWindow.scrollTo(0, 700)")
    page.wait_for_function("sessionStorage.getItem('newsletter-preview-scroll:desktop') "
                           "=== '700'")
    version = page.evaluate("version")
    path = project / "issues" / ISSUE / "01-productivity.md"
    path.write_text(path.read_text().replace("## 在 Google Colab 里直接用上 transformers",
                                             "## 新标题：Colab 的变化"), encoding="utf-8")
    wait_loaded(page, f"v={version + 1}")
    assert "新标题：Colab 的变化" in frame_text(page)
    assert frame_scroll(page) == 700
    page.click("button[data-view=mobile]")  # each view keeps a position of its own
    wait_loaded(page, "v=", "email.html")
    page.wait_for_function(f"{FRAME}.clientWidth === 375")
    assert frame_scroll(page) == 0
    page.evaluate(f"{FRAME}.contentWindow.scrollTo(0, 1500)")
    page.wait_for_function("sessionStorage.getItem('newsletter-preview-scroll:mobile') "
                           "=== '1500'")
    assert page.url.endswith("#view=mobile&dark=0")
    page.reload()  # F5: the same view, the same place
    wait_loaded(page, "email.html")
    assert page.evaluate(f"{FRAME}.clientWidth") == 375
    assert page.locator("button[data-view=mobile]").get_attribute("aria-pressed") == "true"
    assert frame_scroll(page) == 1500
    page.click("button[data-view=desktop]")
    page.wait_for_function(f"{FRAME}.clientWidth === 700")
    page.wait_for_function(f"{FRAME}.contentWindow.scrollY === 700")
    page.close()


# --- dark mode, Outlook's width, the inbox rows ---------------------------------------


def frame_colours(page) -> dict:
    return page.evaluate(f"""(() => {{
        const doc = {FRAME}.contentDocument;
        const style = (e) => doc.defaultView.getComputedStyle(e);
        const text = [...doc.querySelectorAll('.bg div')].filter(
            (e) => e.textContent.includes('你好，读者朋友')).pop();  // the innermost
        return {{page: style(doc.body).backgroundColor, card: style(
            doc.querySelector('.bg .card')).backgroundColor, text: style(text).color}};
    }})()""")


def test_dark_mode_uses_the_emails_own_dark_colours(browser, preview):
    url, _ = preview
    page = open_page(browser, url)
    wait_loaded(page, "email.html")
    light = frame_colours(page)
    assert light["text"] == "rgb(31, 35, 40)" and light["page"] != "rgb(18, 18, 18)"
    page.click("#dark")
    wait_loaded(page, "scheme=dark")
    # the colours of the email's @media (prefers-color-scheme: dark) rules
    assert frame_colours(page) == {"page": "rgb(18, 18, 18)", "card": "rgb(30, 31, 34)",
                                   "text": "rgb(230, 232, 235)"}
    assert "dark" in page.locator("#stage").get_attribute("class")
    assert page.url.endswith("#view=desktop&dark=1")
    page.click("button[data-view=outlook]")  # Outlook's own dark hooks: [data-ogsc]
    wait_loaded(page, "scheme=dark", "client=outlook")
    assert frame_colours(page) == {"page": "rgb(18, 18, 18)", "card": "rgb(30, 31, 34)",
                                   "text": "rgb(230, 232, 235)"}
    page.close()


MEDIA_RULES = (f"[...{FRAME}.contentDocument.styleSheets].flatMap(s => [...s.cssRules])"
               ".filter(r => r.constructor.name === 'CSSMediaRule').length")  # the frame's own class


def test_the_outlook_view_is_600_px_without_media_queries(browser, preview):
    url, _ = preview
    page = open_page(browser, url)
    wait_loaded(page, "email.html")
    assert page.evaluate(MEDIA_RULES) >= 2  # the responsive and the dark rules
    page.click("button[data-view=outlook]")
    wait_loaded(page, "client=outlook")
    assert page.evaluate(f"{FRAME}.clientWidth") == 600
    assert page.evaluate(MEDIA_RULES) == 0
    assert page.evaluate(f"{FRAME}.contentDocument.querySelectorAll('style[media]').length") \
        == 0
    assert "你好，读者朋友：" in frame_text(page)
    page.close()


def test_the_inbox_rows_truncate_as_gmail_and_apple_mail_do(browser, preview, project):
    url, _ = preview
    page = open_page(browser, url)
    for row in ("#gmail", "#apple"):
        assert page.locator(f"{row} .from").inner_text() == "AI生产力快报"
        assert page.locator(f"{row} .subject").inner_text() == \
            "AI生产力快报｜09：Colab 直接调用 transformers"
    meta = project / "issues" / ISSUE / "issue.yaml"
    long = "，".join(["GPT 商店推迟到 2024 年", "ChatGPT 满一周岁", "杨立昆谈智能与控制欲"] * 4)
    meta.write_text(meta.read_text().replace(
        "preheader: \"GPT 商店推迟到 2024 年；ChatGPT 满一周岁；杨立昆谈智能与控制欲\"",
        f"preheader: \"{long}\""))
    page.wait_for_function(f"document.querySelector('#apple .preheader').textContent === "
                           f"{long!r}", timeout=5000)
    sizes = page.evaluate("""() => {
        const box = (s) => { const e = document.querySelector(s);
            return {client: e.clientWidth, scroll: e.scrollWidth, height: e.clientHeight,
                    full: e.scrollHeight}; };
        return {gmail: box('#gmail .line'), apple: box('#apple .preheader'),
                subject: box('#apple .subject')};
    }""")
    assert sizes["gmail"]["scroll"] > sizes["gmail"]["client"]  # one line, cut off
    assert sizes["gmail"]["height"] == 20
    assert sizes["apple"]["height"] == 40 and sizes["apple"]["full"] > 40  # two lines
    assert page.evaluate("document.querySelector('#gmail .line').innerText").startswith(
        "AI生产力快报｜09：Colab 直接调用 transformers - GPT 商店推迟到 2024 年")
    page.close()


def test_email_view_rewrites_only_the_heads_media_rules():
    from pipeline.editor.preview import email_view

    html = ('<html><head><style>p{color:red}@media (max-width:479px){td{width:auto}}'
            '@media (prefers-color-scheme: dark){.bg{background:#121212}a{color:#2dd4bf}}'
            '</style><style media="(prefers-color-scheme:dark)">b{color:#fff}</style>'
            '<style media="screen and (min-width:480px)">i{width:50%}</style></head>'
            '<body><p>@media (prefers-color-scheme: dark){in the text}</p></body></html>')
    body = '<body><p>@media (prefers-color-scheme: dark){in the text}</p></body></html>'
    assert email_view(html) == html
    assert email_view(html, dark=True) == (
        '<html><head><style>p{color:red}@media (max-width:479px){td{width:auto}}'
        '.bg{background:#121212}a{color:#2dd4bf}</style><style>b{color:#fff}</style>'
        '<style media="screen and (min-width:480px)">i{width:50%}</style></head>' + body)
    assert email_view(html, outlook=True) == (
        '<html><head><style>p{color:red}</style></head>' + body)
    assert email_view(html, dark=True, outlook=True) == (
        '<html data-ogsc data-ogsb><head><style>p{color:red}</style></head>'
        + body.replace("<body>", "<body data-ogsc data-ogsb>"))
