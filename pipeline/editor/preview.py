"""newsletter preview: the email as readers will see it, rebuilt on every change.

`build` plus a watcher (mkdocs' `serve` is the model): a change under the issue folder,
templates/ or newsletter.toml rebuilds, and the open page updates itself through
server-sent events. A failed rebuild shows its `path:line` errors in the page and the
server keeps running; fixing the file recovers.

The page never contradicts itself: `State.problems` is the one list of what is wrong
(the failed rebuild's errors, or else the findings of `check`), and the badge, the list
and the red box are all drawn from it. The email frame can show the email in the views
readers get: the email's own dark styles (its `prefers-color-scheme: dark` rules made
unconditional, as a dark client applies them), Outlook's width with no media queries
(Outlook for Windows ignores them), and the inbox row as Gmail and Apple Mail truncate it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from ..config import Config, load_config
from ..delivery.personalise import Part
from ..errors import PipelineError, Problem, display_path, listening
from ..issue import read_issue
from ..render import render_issue, web_url
from ..render.assets import Asset, prepare_image
from ..render.mail import GMAIL_CLIP
from .check import count_findings, lint, sort_findings, summarise

POLL_SECONDS = 0.25
SAMPLE_READER = {"name": "", "email": "reader@example.com", "unsubscribe_url": "#unsubscribe",
                 "preferences_url": "#preferences"}


@dataclass
class State:
    version: int = 0
    html: str = ""
    text: str = ""
    subject: str = ""
    preheader: str = ""
    sender: str = ""
    sender_name: str = ""
    size: int = 0
    findings: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    assets: tuple[Asset, ...] = ()  # the images as the build writes them

    @property
    def problems(self) -> list[Problem]:
        """What `newsletter check` would say now: a failed rebuild's problems, or else
        the findings of the build shown. The page draws everything from this list."""
        return self.errors or self.findings

    def as_json(self) -> dict:
        problems = self.problems
        errors, warnings = count_findings(problems)
        return {"version": self.version, "subject": self.subject, "preheader": self.preheader,
                "sender": self.sender, "sender_name": self.sender_name, "size": self.size,
                "limit": GMAIL_CLIP, "failed": bool(self.errors),
                "problems": [{"where": f"{p.path}:{p.line}" if p.line else p.path,
                              "severity": p.severity, "message": p.message} for p in problems],
                "errors": errors, "warnings": warnings, "summary": summarise(problems)}


_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.S | re.I)
_MEDIA = re.compile(r"@media\b([^{]*)\{", re.I)
_DARK = re.compile(r"prefers-color-scheme\s*:\s*dark", re.I)
_MEDIA_ATTRIBUTE = re.compile(r"""\smedia\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.I)


def _rewrite_media(css: str, keep) -> str:
    """css with every @media block replaced by keep(query, body) (braces matched)."""
    out, at = [], 0
    while (match := _MEDIA.search(css, at)) is not None:
        depth, end = 1, match.end()
        while end < len(css) and depth:
            depth += {"{": 1, "}": -1}.get(css[end], 0)
            end += 1
        out += [css[at:match.start()], keep(match.group(1), css[match.end():end - 1],
                                            css[match.start():end])]
        at = end
    return "".join(out) + css[at:]


def email_view(html: str, dark: bool = False, outlook: bool = False) -> str:
    """The email as a kind of client shows it, for a frame in an ordinary browser.

    dark: the email's own `prefers-color-scheme: dark` rules apply unconditionally (the
    page's frame cannot prefer dark on its own); with outlook, the client marks the
    message with data-ogsc/data-ogsb as Outlook.com and the Outlook apps do instead.
    outlook: no media queries at all, as Outlook for Windows reads the head styles."""
    def keep(query: str, body: str, block: str) -> str:
        if outlook:
            return ""
        return body if dark and _DARK.search(query) else block

    def style(match: re.Match) -> str:
        opening = match.group(1)
        query = _MEDIA_ATTRIBUTE.search(opening)
        if query and outlook:
            return ""
        if query and dark and _DARK.search(query.group(1)):
            opening = _MEDIA_ATTRIBUTE.sub("", opening)
        return opening + _rewrite_media(match.group(2), keep) + match.group(3)

    if not (dark or outlook):
        return html
    head, split, body = html.partition("</head>")
    if not split:  # no head: nothing a client would treat differently
        return html
    head = _STYLE.sub(style, head)
    if outlook and dark:
        head = re.sub(r"<html\b", "<html data-ogsc data-ogsb", head, count=1, flags=re.I)
        body = re.sub(r"<body\b", "<body data-ogsc data-ogsb", body, count=1, flags=re.I)
    return head + split + body


class Previewer:
    """Holds the latest build of one issue and tells waiting pages when it changes."""

    def __init__(self, folder: Path, config_path: Path, env: Mapping[str, str]):
        self.folder = folder.resolve()
        self.config_path = config_path
        self.env = env
        self.state = State()
        self.changed = threading.Condition()
        self.stopping = False
        self.rebuild()

    def rebuild(self) -> State:
        state = State(version=self.state.version + 1)
        try:
            config = load_config(self.config_path, self.env)
            issue = read_issue(self.folder, config)
            rendered = render_issue(issue, config, relative_assets=True)
        except PipelineError as exc:
            state.errors = list(exc.problems)
            state.html, state.text = self.state.html, self.state.text  # keep the last good
            state.assets = self.state.assets
        else:
            constants = {"web_url": web_url(issue, config) or "#"}
            state.html = Part(rendered.html, constants, html=True).fill(SAMPLE_READER)
            state.text = Part(rendered.text, constants, html=False).fill(SAMPLE_READER)
            state.subject, state.preheader = rendered.subject, rendered.preheader
            sender = config.sender
            state.sender = f"{sender.name} <{sender.email}>"
            state.sender_name = sender.name or sender.email
            state.size = rendered.html_size
            state.assets = rendered.assets
            state.findings = sort_findings(lint(issue, rendered, config))
        with self.changed:
            self.state = state
            self.changed.notify_all()
        return state

    def watched(self) -> dict[Path, float]:
        root = self.config_path.parent
        files = [self.config_path, *self.folder.rglob("*"), *(root / "templates").rglob("*")]
        stamps = {}
        for path in files:
            try:
                stamps[path] = path.stat().st_mtime_ns
            except OSError:
                pass
        return stamps

    def watch(self, log=lambda line: None) -> None:
        """Poll for changes (a few dozen files: cheap, and needs no extra library)."""
        seen = self.watched()
        while not self.stopping:
            time.sleep(POLL_SECONDS)
            now = self.watched()
            if now != seen:
                seen = now
                state = self.rebuild()
                log(f"rebuilt: {len(state.errors)} errors" if state.errors else
                    f"rebuilt: {state.size / 1024:.1f} KB, {len(state.findings)} findings")

    def wait_for_change(self, version: int, timeout: float) -> int:
        with self.changed:
            self.changed.wait_for(lambda: self.state.version != version or self.stopping,
                                  timeout=timeout)
            return self.state.version

    def stop(self) -> None:
        with self.changed:
            self.stopping = True
            self.changed.notify_all()


def make_server(previewer: Previewer, host: str, port: int) -> ThreadingHTTPServer:
    page = resources.files(__package__).joinpath("preview.html").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            path, query = unquote(url.path), parse_qs(url.query)
            state = previewer.state
            if path == "/":
                return self.send(200, page, "text/html; charset=utf-8")
            if path == "/email.html":
                html = email_view(state.html, dark=query.get("scheme") == ["dark"],
                                  outlook=query.get("client") == ["outlook"])
                return self.send(200, html.encode(), "text/html; charset=utf-8")
            if path == "/email.txt":
                return self.send(200, state.text.encode(), "text/plain; charset=utf-8")
            if path == "/state.json":
                return self.send(200, json.dumps(state.as_json(), ensure_ascii=False).encode(),
                                 "application/json")
            if path == "/events":
                return self.events()
            if path.startswith("/assets/"):
                return self.asset(path.removeprefix("/assets/"))
            return self.send(404, b"not found", "text/plain")

        def asset(self, relative: str) -> None:
            """An image as the build writes it (scaled, converted): what readers get."""
            asset = next((a for a in previewer.state.assets if a.name == relative), None)
            if asset is None or not asset.source.is_file():
                return self.send(404, b"not found", "text/plain")
            kinds = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                     ".gif": "image/gif", ".webp": "image/webp", ".svg": "image/svg+xml"}
            return self.send(200, prepare_image(asset).data,
                             kinds.get(Path(asset.name).suffix.lower(),
                                       "application/octet-stream"))

        def events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            version = previewer.state.version
            try:
                self.wfile.write(f"data: {version}\n\n".encode())
                self.wfile.flush()
                while not previewer.stopping:
                    latest = previewer.wait_for_change(version, timeout=10)
                    message = f"data: {latest}\n\n" if latest != version else ": idle\n\n"
                    version = latest
                    self.wfile.write(message.encode())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


@contextmanager
def launch_chromium():
    """Debian's Chromium through Playwright (never a downloaded browser), closed after."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise PipelineError("screenshots need Playwright: pip install playwright (it drives "
                            "the system's /usr/bin/chromium)") from None
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        raise PipelineError("screenshots need Chromium at /usr/bin/chromium: apt-get "
                            "install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"])
        try:
            yield browser
        finally:
            browser.close()


def take_screenshots(base_url: str, out: Path, slug: str, widths=(375, 600)) -> list[Path]:
    """PNG screenshots of the email at each width, with Debian's Chromium."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with launch_chromium() as browser:
        for width in widths:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(f"{base_url}/email.html", wait_until="load")
            path = out / f"{slug}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            written.append(path)
            page.close()
    return written


def run_preview(folder: Path, config: Config, env: Mapping[str, str], host: str, port: int,
                open_browser: bool, log) -> None:
    """`newsletter preview`: serve until Ctrl-C, rebuilding on every change."""
    if not folder.is_dir():
        read_issue(folder, config)  # says what is wrong, path and all
    previewer = Previewer(folder, config.path, env)
    with listening(host, port):
        server = make_server(previewer, host, port)
    url = f"http://{host}:{server.server_address[1]}"
    threading.Thread(target=previewer.watch, args=(log,), daemon=True).start()
    log(f"previewing {display_path(folder)} at {url}/ (Ctrl-C stops)")
    for problem in previewer.state.errors:
        log(str(problem))
    if open_browser:
        import webbrowser

        webbrowser.open(url + "/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        previewer.stop()
        server.server_close()
        log("preview stopped")


def screenshot_issue(folder: Path, config: Config, env: Mapping[str, str], host: str,
                     out: Path) -> list[Path]:
    """`preview --screenshot DIR`: PNGs at 375 and 600 px, then exit."""
    if not folder.is_dir():
        read_issue(folder, config)
    previewer = Previewer(folder, config.path, env)
    if previewer.state.errors:
        raise PipelineError("\n".join(str(p) for p in previewer.state.errors))
    with listening(host, 0):
        server = make_server(previewer, host, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return take_screenshots(f"http://{host}:{server.server_address[1]}", out, folder.name)
    finally:
        server.shutdown()
        server.server_close()
