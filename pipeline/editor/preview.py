"""newsletter preview: the email as readers will see it, rebuilt on every change.

`build` plus a watcher (mkdocs' `serve` is the model): a change under the issue folder,
templates/ or newsletter.toml rebuilds, and the open page updates itself through
server-sent events. A failed rebuild shows its `path:line` errors in the page and the
server keeps running; fixing the file recovers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..config import Config, load_config
from ..delivery.personalise import Part
from ..errors import PipelineError, Problem, display_path, listening
from ..issue import read_issue
from ..render import render_issue, web_url
from ..render.assets import Asset, prepare_image
from ..render.mail import GMAIL_CLIP
from .check import lint, sort_findings

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
    size: int = 0
    findings: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    assets: tuple[Asset, ...] = ()  # the images as the build writes them

    def as_json(self) -> dict:
        def plain(problems: list[Problem]) -> list[dict]:
            return [{"where": f"{p.path}:{p.line}" if p.line else p.path,
                     "severity": p.severity, "message": p.message} for p in problems]

        return {"version": self.version, "subject": self.subject, "preheader": self.preheader,
                "sender": self.sender, "size": self.size, "limit": GMAIL_CLIP,
                "findings": plain(self.findings), "errors": plain(self.errors)}


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
            path = unquote(urlparse(self.path).path)
            state = previewer.state
            if path == "/":
                return self.send(200, page, "text/html; charset=utf-8")
            if path == "/email.html":
                return self.send(200, state.html.encode(), "text/html; charset=utf-8")
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
