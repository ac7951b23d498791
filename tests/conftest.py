"""Shared fixtures: a copy of the publication in a temporary folder, and a CLI runner
with an injected environment and clock (nothing is patched)."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.audience.queries import token_for
from pipeline.audience.tokens import Signer
from pipeline.cli import App, cli
from pipeline.store import connect

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The tests' own publication: newsletter.toml, issues/ and subscribers.csv, frozen copies of
# the repository's samples, so that an editor's work under issues/ cannot break the tests.
PUBLICATION = FIXTURES / "publication"
NOW = datetime(2023, 12, 6, 8, 0, tzinfo=UTC)
SECRET = "test-secret-4f1c2a"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture publication (newsletter.toml, issues/, subscribers.csv) copied into a
    fresh folder (the cwd). It has no templates/, so the package's own are used."""
    shutil.copytree(PUBLICATION, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def own_templates(project: Path) -> Path:
    """The package's templates copied into the project's templates/, for tests that edit
    them (a project's templates/ overrides the package's)."""
    from pipeline.render.templates import package_templates

    return Path(shutil.copytree(package_templates(), project / "templates"))


class Runner:
    def __init__(self, project: Path):
        self.project = project
        self.env: dict[str, str] = {"NEWSLETTER_SECRET": SECRET}
        self.now = NOW
        self.sleep = FakeSleep()

    @contextmanager
    def at(self, moment: datetime):
        """``with run.at(moment):`` commands run as if it were that time (a schedule is
        set ahead of the time it is for)."""
        saved, self.now = self.now, moment
        try:
            yield
        finally:
            self.now = saved

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None):
        app = App(self.project / "newsletter.toml", env={**self.env, **(env or {})},
                  clock=lambda: self.now, sleep=self.sleep)
        return CliRunner().invoke(cli, list(args), obj=app, input=input,
                                  catch_exceptions=False)


@pytest.fixture
def run(project: Path) -> Runner:
    return Runner(project)


def token_of(db: Path, address: str, secret: str = SECRET) -> str:
    """The token of a reader's unsubscribe link, as a send signs it with ``secret``: their
    ref read from the database."""
    connection = connect(db)
    try:
        return token_for(connection, Signer(secret), address)
    finally:
        connection.close()


def write_issue(folder: Path, files: dict[str, str | bytes]) -> Path:
    """An issue folder with exactly these files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


MINIMAL_YAML = 'number: 3\ntitle: "Test issue"\ndate: 2024-01-31\n'
MINIMAL_SECTION = "---\nkind: news\n---\n\n## An item\n\nSome text.\n"


class FakeSleep:
    """Records the waits a send asked for, without waiting."""

    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def audience(request, run, project) -> Path | str:
    """The sample audience (12 readers, subscribers.csv) imported into the project's
    database: the SQLite file, or the test's PostgreSQL database (URL) when the test asks
    for ``engine`` too."""
    engine = request.getfixturevalue("engine") if "engine" in request.fixturenames else None
    result = run("audience", "import", "subscribers.csv")
    assert result.exit_code == 0, result.output
    return engine.location if engine else project / ".newsletter" / "newsletter.db"


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the session (tests/postgres.py), stopped at the end. In
    CI it must be there (make test installs it); elsewhere its tests are skipped without."""
    import os

    from tests.postgres import PACKAGE, PostgresServer, binaries

    found = binaries()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL's initdb and pg_ctl are missing; make test installs the "
                        f"{PACKAGE} package")
        pytest.skip(f"PostgreSQL is missing: apt-get install {PACKAGE}")
    with PostgresServer(found) as server:
        yield server


@pytest.fixture
def pg_url(postgres) -> str:
    """A fresh, empty PostgreSQL database of the session's server: its URL."""
    return postgres.create_database()


@dataclass
class Engine:
    """The database a test runs on: the project's SQLite file, or a PostgreSQL URL."""

    name: str
    location: Path | str

    @property
    def env(self) -> dict[str, str]:
        """The environment that points a `newsletter` process at it."""
        return {"NEWSLETTER_DATABASE": self.location} if self.name == "postgresql" else {}

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a statement (``?`` placeholders), read with a connection of its own."""
        db = connect(self.location)
        try:
            return [tuple(row) for row in db.execute(sql, params).fetchall()]
        finally:
            db.close()

    def statuses(self) -> dict[str, int]:
        """How many ledger rows have each status."""
        return dict(self.query("SELECT status, count(*) FROM deliveries GROUP BY status"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, run, project) -> Engine:
    """The test runs twice: on SQLite and on PostgreSQL (``run`` is pointed at it)."""
    if request.param == "sqlite":
        return Engine("sqlite", project / ".newsletter" / "newsletter.db")
    url = request.getfixturevalue("pg_url")
    run.env["NEWSLETTER_DATABASE"] = url
    return Engine("postgresql", url)


@pytest.fixture
def sendgrid(run):
    from tests.sendgrid_server import API_KEY, SendGridServer

    with SendGridServer() as server:
        run.env.update({"NEWSLETTER_PROVIDER": "sendgrid",
                        "NEWSLETTER_SENDGRID_API_HOST": server.url,
                        "SENDGRID_API_KEY": API_KEY})
        yield server


@pytest.fixture
def smtp(run):
    from tests.smtp_server import Sink, SMTPServer

    sink = Sink(refuse={"chen.mo@example.com": "550 5.1.1 mailbox unavailable"})
    with SMTPServer(sink) as server:
        run.env.update({"NEWSLETTER_PROVIDER": "smtp", "NEWSLETTER_SMTP_HOST": "127.0.0.1",
                        "NEWSLETTER_SMTP_PORT": str(server.port),
                        "NEWSLETTER_SMTP_SECURITY": "none"})
        yield sink


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (no browser download). In CI it must
    be there (.ci/run installs it); elsewhere the browser tests are skipped without it."""
    import os

    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs the chromium package")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def static_server():
    """Serves a folder over HTTP on loopback: ``static_server(folder) -> base URL``."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    servers = []

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def serve(folder: Path) -> str:
        handler = functools.partial(Quiet, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page scrolls sideways (0: none)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def start_process(project: Path, args: list[str], ready_url: str,
                  env: dict[str, str] | None = None):
    """`python -m pipeline ARGS` in its own process; returns once ready_url answers."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    environment = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    environment.update(env or {})
    process = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=project,
                               env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    for _ in range(200):
        try:
            urllib.request.urlopen(ready_url, timeout=1)
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(process.communicate()[1])
