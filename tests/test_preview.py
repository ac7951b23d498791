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
    return page.evaluate(f"{FRAME}.contentDocument.body.innerText")


def test_the_page_shows_the_inbox_row_the_email_and_the_check(browser, preview):
    url, _ = preview
    page = open_page(browser, url)
    assert page.locator("#sender").inner_text() == "AI生产力快报 <newsletter@example.com>"
    assert page.locator("#subject").inner_text() == "AI生产力快报｜09：Colab 直接调用 transformers"
    assert page.locator("#preheader").inner_text().startswith("GPT 商店推迟到 2024 年")
    assert page.locator("#size").inner_text().endswith(" KB of Gmail's 102.0 KB")
    assert page.locator("#summary").inner_text() == "0 errors, 0 warnings"
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
    page.click("#dark")
    assert "dark" in page.locator("#stage").get_attribute("class")
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
    meta.write_text(good.replace("AI生产力快报｜09：", "AI生产力快报｜09 修订："))
    page.wait_for_selector("#errors", state="hidden", timeout=5000)
    page.wait_for_function("document.getElementById('subject').textContent.includes('修订')")
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
