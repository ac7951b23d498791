"""A throwaway PostgreSQL for the tests, from Debian's postgresql package.

``initdb`` and ``pg_ctl`` in a temporary folder, on a free loopback port, with trust
authentication on 127.0.0.1 only (and one role, ``PASSWORD_USER``, that must give its
password, for the tests of a wrong one). Both refuse to run as root: as root they run as
the ``postgres`` user, in a folder it owns. Each test gets a database of its own, a copy
of an empty one (CREATE DATABASE … TEMPLATE is fast)."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGE = "postgresql"
PASSWORD_USER, PASSWORD = "keyed", "right-password"


def binaries() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0)
    return found[-1].parent if found and (found[-1].parent / "initdb").exists() else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
        self.data = self.folder / "data"
        self.port = 0
        self.names = itertools.count(1)
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}"
                               f"{self._log()}")

    def _log(self) -> str:
        log = self.folder / "log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def start(self) -> PostgresServer:
        if self.as_root:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:  # a test server: no durability
            conf.write(f"listen_addresses = '127.0.0.1'\nunix_socket_directories = "
                       f"'{self.folder}'\nfsync = off\nsynchronous_commit = off\n"
                       "full_page_writes = off\nmax_connections = 60\n")
        (self.data / "pg_hba.conf").write_text(
            f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n")
        for attempt in range(5):  # a free port can be taken before the server binds it
            self.port = free_port()
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"),
                          "-o", f"-p {self.port}", "-w", "-t", "30", "start")
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        admin = self.admin()
        admin.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'")
        admin.execute("CREATE DATABASE empty")
        admin.close()
        return self

    def url(self, database: str = "postgres", user: str = "postgres",
            password: str | None = None) -> str:
        who = f"{user}:{password}" if password is not None else user
        return f"postgresql://{who}@127.0.0.1:{self.port}/{database}"

    def admin(self):
        import psycopg

        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self) -> str:
        """A new, empty database of this server: its URL."""
        name = f"test{next(self.names)}"
        admin = self.admin()
        try:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE empty STRATEGY file_copy")
        finally:
            admin.close()
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.port:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for(condition, timeout: float = 30, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False
