"""The hostile-input battery (issue 13): broken and malicious inputs, each with the exact
message and exit status it gets.

Every case runs `newsletter` as a child process of its own, so that what it costs is
its own: it must end by itself (a hang is killed at KILL_AFTER seconds and fails), within
MAX_RSS of memory (the child's peak, from wait4), with no traceback, and leave the
database, the outbox and every file outside the project as they were.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SECRET

KILL_AFTER = 60  # seconds: far beyond any case, short of hanging the suite
MAX_RSS = 200 * 1024 * 1024
SOURCE = "issues/2023-12-07-ai-productivity-09"


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path, Path], object]  # (project, outside) -> makes the input
    args: tuple[str, ...]
    status: int
    lines: tuple[str, ...]  # each is a whole line of the output
    env: tuple[tuple[str, str], ...] = ()


# --- inputs -------------------------------------------------------------------------


def issue(project: Path, name: str = "x") -> Path:
    """A copy of a real issue, without its id (an id is unique among folders)."""
    folder = project / "issues" / name
    os.makedirs(folder)
    for item in (project / SOURCE).iterdir():
        target = folder / item.name
        if item.is_dir():
            os.makedirs(target)
            for image in item.iterdir():
                (target / image.name).write_bytes(image.read_bytes())
        elif item.name == "issue.yaml":
            target.write_text("".join(line for line in item.read_text().splitlines(True)
                                      if not line.startswith("id:")))
        else:
            target.write_bytes(item.read_bytes())
    return folder


def issue_yaml(text: str | bytes) -> Callable[[Path, Path], None]:
    def setup(project: Path, outside: Path) -> None:
        path = issue(project) / "issue.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return setup


def in_issue(name: str, make: Callable[[Path, Path], object]) -> Callable[[Path, Path], None]:
    """A file (or a link, a pipe, a folder) called name in the issue folder."""
    def setup(project: Path, outside: Path) -> None:
        path = issue(project) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path, outside)
    return setup


def section(body: str) -> Callable[[Path, Path], None]:
    return lambda path, outside: path.write_text(f"---\nkind: news\n---\n\n## 条目\n\n{body}\n")


def image_line(src: str) -> Callable[[Path, Path], None]:
    return section(f"![图]({src})")


def shown_image(name: str, make: Callable[[Path, Path], object]
                ) -> Callable[[Path, Path], None]:
    """images/NAME made by make, and the first section showing it."""
    def setup(project: Path, outside: Path) -> None:
        folder = issue(project)
        make(folder / "images" / name, outside)
        image_line(f"images/{name}")(folder / "01-news.md", outside)
    return setup


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims this size and holds one row: what a pixel bomb looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def renamed(name: str) -> Callable[[Path, Path], None]:
    return lambda project, outside: issue(project, name)


BOMB = "".join(f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + BOMB + \
    "number: 1\ntitle: t\ndate: 2023-12-07\ntags: *i\n"
DEEP = "number: 1\ntitle: t\ndate: 2023-12-07\ntags: " + "[" * 5000 + "]" * 5000 + "\n"
META = "number: 9\ntitle: t\ndate: 2023-12-07\n"
X = "issues/x"
CHECK = ("check", X)


def _symlink_out(path: Path, outside: Path) -> None:
    path.symlink_to(outside / "secret.txt")


def _many_sections(project: Path, outside: Path) -> None:
    folder = issue(project)
    for n in range(101):
        (folder / f"{n + 10:03d}-more.md").write_text("---\nkind: news\n---\n\n## 条目\n\n正文。\n")


def _big_sections(project: Path, outside: Path) -> None:
    folder = issue(project)
    for n in range(5):
        (folder / f"0{n + 5}-long.md").write_text("---\nkind: news\n---\n\n## 条目\n\n"
                                                  + "很长的一段。" * 6000 + "\n")


def _csv(content: str | bytes) -> Callable[[Path, Path], None]:
    def setup(project: Path, outside: Path) -> None:
        data = content.encode() if isinstance(content, str) else content
        (project / "list.csv").write_bytes(data)
    return setup


def _garbage(name: str) -> Callable[[Path, Path], None]:
    def setup(project: Path, outside: Path) -> None:
        (project / name).write_bytes(b"SQLite format 2\x00" + bytes(range(256)) * 8)
    return setup


CASES = [
    # issue.yaml
    Case("yaml alias bomb", issue_yaml(ALIAS_BOMB), CHECK, 1, (
        f"{X}/issue.yaml:1: error: anchors and aliases (& and *) are not used here; write "
        "the value out in full",)),
    Case("yaml nested 5000 deep", issue_yaml(DEEP), CHECK, 1, (
        f"{X}/issue.yaml:4: error: nested more than 20 levels deep; an issue's values are "
        "text, dates and short lists",)),
    Case("yaml python tag", issue_yaml('title: !!python/object/apply:os.system ["touch pwned"]\n'
                                       + META), CHECK, 1, (
        f"{X}/issue.yaml:1: error: a YAML tag (!!…) that is not plain data; write the value "
        "as text, a number, a date or a list",)),
    Case("yaml NUL byte", issue_yaml(META.encode() + b"editor: a\x00b\n"), CHECK, 1, (
        f"{X}/issue.yaml:4: error: a control character (\\x00) that YAML does not allow; "
        "save the file as plain text",)),
    Case("issue.yaml too large", issue_yaml(META + "# " + "x" * 70_000 + "\n"), CHECK, 1, (
        f"{X}/issue.yaml: error: too large (68 KB, limit 64 KB); keep it to what an issue "
        "needs",)),
    Case("issue.yaml not UTF-8", issue_yaml(META.encode() + "editor: 编辑\n".encode("gbk")),
         CHECK, 1, (f"{X}/issue.yaml:4: error: not valid UTF-8 (byte 0xb1); save the file "
                    "as UTF-8",)),
    Case("issue.yaml a list", issue_yaml("- number: 1\n- title: t\n"), CHECK, 1, (
        f"{X}/issue.yaml:1: error: must be a list of 'key: value' lines",)),
    Case("issue.yaml duplicate key", issue_yaml(META + "title: again\n"), CHECK, 1, (
        f"{X}/issue.yaml:4: error: duplicate key 'title' (first on line 2); keep one",)),
    Case("issue.yaml impossible date", issue_yaml("number: 9\ntitle: t\ndate: 2023-02-30\n"),
         CHECK, 1, (f"{X}/issue.yaml:3: error: 'date' is '2023-02-30', not a real date; write "
                    "it as YYYY-MM-DD, like 2024-01-31",)),
    Case("issue.yaml huge value", issue_yaml(META.replace("title: t", "title: [" + "1," * 20000
                                                         + "1]")), CHECK, 1, (
        f"{X}/issue.yaml:2: error: 'title' must be text, not [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
        "1, 1, 1, 1, 1, 1, 1, 1, 1, 1…",)),
    Case("issue.yaml links outside", in_issue("issue.yaml", lambda p, o: (p.unlink(),
                                                                         _symlink_out(p, o))),
         CHECK, 1, (f"{X}/issue.yaml: error: leads outside the issue folder (a symlink); copy "
                    "the file into the folder instead",)),
    Case("issue.yaml a folder", in_issue("issue.yaml", lambda p, o: (p.unlink(), p.mkdir())),
         CHECK, 1, (f"{X}/issue.yaml: error: is not a regular file (a folder, a pipe or a "
                    "device); only files are read",)),
    Case("issue.yaml a pipe", in_issue("issue.yaml", lambda p, o: (p.unlink(), os.mkfifo(p))),
         CHECK, 1, (f"{X}/issue.yaml: error: is not a regular file (a folder, a pipe or a "
                    "device); only files are read",)),
    Case("subject with CR/LF", issue_yaml('number: 9\ntitle: "AI\\r\\nBcc: evil@example.com"\n'
                                          "date: 2023-12-07\n"), ("send", X, "--yes"), 1, (
        f"{X}/issue.yaml: the subject contains a line break; write it on one line",)),
    # sections
    Case("section too large", in_issue("01-news.md", section("很长的一段。" * 8000)), CHECK, 1, (
        f"{X}/01-news.md: error: too large (141 KB, limit 128 KB); split it into smaller "
        "sections",)),
    Case("sections too large together", _big_sections, CHECK, 1, (
        f"{X}: error: the section files together are too large (533 KB, limit 512 KB); an "
        "issue this long is more than one issue",)),
    Case("101 sections", _many_sections, CHECK, 1, (
        f"{X}: error: 105 section files (limit 100); an issue this long is more than one "
        "issue",)),
    Case("section a pipe", in_issue("05-pipe.md", lambda p, o: os.mkfifo(p)), CHECK, 1, (
        f"{X}/05-pipe.md: error: is not a regular file (a folder, a pipe or a device); only "
        "files are read",)),
    Case("section a folder", in_issue("05-dir.md", lambda p, o: p.mkdir()), CHECK, 1, (
        f"{X}/05-dir.md: error: is not a regular file (a folder, a pipe or a device); only "
        "files are read",)),
    Case("section links outside", in_issue("05-link.md", _symlink_out), CHECK, 1, (
        f"{X}/05-link.md: error: leads outside the issue folder (a symlink); copy the file "
        "into the folder instead",)),
    Case("section link loop", in_issue("05-loop.md", lambda p, o: p.symlink_to(p.name)),
         CHECK, 1, (f"{X}/05-loop.md: error: is a link that goes round in a loop; replace it "
                    "with the file itself",)),
    Case("section name with terminal escape", in_issue("05-\x1b[2J.md", section("正文。")),
         CHECK, 1, (f"{X}/05-\\x1b[2J.md: error: has a control character (\\x1b) in its name; "
                    "rename it with letters, digits and hyphens",)),
    Case("section of 16,000 links", in_issue("01-news.md", section("[a](https://a.example/) "
                                                                   * 5200)), CHECK, 1, (
        f"{X}/01-news.md:7: warning: https://a.example/ is linked twice in this item; keep "
        "one link",)),
    Case("section of brackets", in_issue("01-news.md", section("[" * 40_000)), CHECK, 0, (
        "0 errors, 0 warnings",)),
    Case("javascript link", in_issue("01-news.md", section("[点我](javascript:alert(1))")),
         CHECK, 1, (f"{X}/01-news.md:7: error: a link to a script URL (javascript:, data:); "
                    "link to an https:// page instead",)),
    # folder names
    Case("folder name with CR/LF", renamed("cr\r\nBcc: x"), ("check", "issues/cr\r\nBcc: x"), 1,
         ("issues/cr\\r\\nBcc: x: error: the issue folder has a control character (\\r) in "
          "its name; rename it with letters, digits and hyphens",)),
    Case("folder name not UTF-8", renamed(os.fsdecode(b"bad\xff")),
         ("check", os.fsdecode(b"issues/bad\xff")), 1, (
             "issues/bad\\xff: error: the issue folder has a name that is not valid UTF-8 "
             "(\\xff); rename it with letters, digits and hyphens",)),
    Case("folder name with bidi override", renamed("x\u202egpj.exe"),
         ("check", "issues/x\u202egpj.exe"), 1, (
             "issues/x\\u202egpj.exe: error: the issue folder has a control character "
             "(\\u202e) in its name; rename it with letters, digits and hyphens",)),
    Case("no such folder", lambda p, o: None, ("send", "../../etc", "--yes"), 1, (
        "../../etc: no such issue folder; give a folder path or the name of a folder "
        "under issues/",)),
    # images
    Case("image links outside", shown_image("secret.png", _symlink_out), CHECK, 1, (
        f"{X}/01-news.md:7: error: image 'images/secret.png' leads outside the issue folder "
        "(a symlink); copy the file into the folder instead",)),
    Case("image path climbs out", in_issue("01-news.md", image_line("../../outside/secret.png")),
         CHECK, 1, (f"{X}/01-news.md:7: error: image '../../outside/secret.png' points outside "
                    "the issue folder; put the file under images/ and write images/<file>",)),
    Case("header image absolute", issue_yaml(META + "header_image: /etc/passwd\n"), CHECK, 1, (
        f"{X}/issue.yaml:4: error: header_image '/etc/passwd' points outside the issue folder; "
        "put the file under images/ and write images/<file>",)),
    Case("image too large", shown_image("huge.png", lambda p, o: p.write_bytes(
        png_header(64, 1) + bytes(11 << 20))), CHECK, 1, (
        f"{X}/01-news.md:7: error: image 'images/huge.png' is too large (11.0 MB, limit "
        "10.0 MB); export it smaller",)),
    Case("image pixel bomb", shown_image("bomb.png", lambda p, o: p.write_bytes(
        png_header(100_000, 100_000))), CHECK, 1, (
        f"{X}/01-news.md:7: error: image 'images/bomb.png' has more than 50 megapixels; "
        "export it smaller, 1200 px wide is plenty for email",)),
    Case("image not an image", shown_image("x.png", lambda p, o: p.write_text(
        "<script>alert(1)</script>")), CHECK, 1, (
        f"{X}/01-news.md:7: error: image 'images/x.png' is not a PNG, JPEG, GIF or WebP "
        "image that can be read; export it again",)),
    # the database
    Case("database not a database", _garbage("garbage.db"), ("audience", "count"), 1, (
        "garbage.db: is not a database; is `database` in newsletter.toml the right "
        "file?; what was saved before is kept: run the command again once that is fixed",),
         env=(("NEWSLETTER_DATABASE", "garbage.db"),)),
    Case("database folder is a file", _garbage("plain"), ("audience", "count"), 1, (
        "plain/newsletter.db: cannot make the database's folder (File exists); check "
        "`database` in newsletter.toml",), env=(("NEWSLETTER_DATABASE", "plain/newsletter.db"),)),
    # CSV files of readers
    Case("csv stray quote", _csv('email,name\nada@example.com,"Ada\n'
                                 + "".join(f"r{n}@example.com,R{n}\n" for n in range(1000))),
         ("audience", "import", "list.csv"), 1, (
             'list.csv:2: an unclosed quote (") starts here and swallows the next 1000 lines; '
             "close it or remove it",)),
    Case("csv column twice", _csv("Email,name,email\nada@example.com,Ada,x@example.com\n"),
         ("audience", "import", "list.csv"), 1, (
             'list.csv:1: the column "Email" appears twice (columns 1 and 3); rename or remove '
             "one",)),
    Case("csv a workbook", _csv(b"PK\x03\x04" + bytes(200)), ("audience", "import", "list.csv"),
         1, ('list.csv: this is a ZIP archive (an Excel .xlsx workbook?), not a CSV file; save '
             'it as CSV (in Excel: File > Save As > "CSV UTF-8")',)),
    Case("csv a 2 MB line", _csv("email,name\n" + "x" * (2 << 20) + "\n"),
         ("audience", "import", "list.csv"), 1, (
             "list.csv:2: a cell longer than 64 KB; is this a CSV file?",)),
    # unsubscribe tokens (the mailto: subject an operator pastes)
    Case("token forged", lambda p, o: None, ("audience", "unsubscribe",
                                             "AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAA"), 1, (
        "not a valid unsubscribe token (the token's signature does not match); copy it whole "
        "from the mail's subject, or give the address",)),
    Case("token padded", lambda p, o: None, ("audience", "unsubscribe",
                                             "AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAA="), 1, (
        "not a valid unsubscribe token (malformed token); copy it whole from the mail's "
        "subject, or give the address",)),
    Case("token with CR/LF", lambda p, o: None, ("audience", "unsubscribe", "a\r\nb"), 1, (
        "not a valid unsubscribe token (malformed token); copy it whole from the mail's "
        "subject, or give the address",)),
    # newsletter.toml
    Case("sender name with CR/LF", lambda p, o: _edit_toml(
        p, '[sender]\nname = "AI生产力快报"', '[sender]\nname = "AI\\r\\nBcc: x@example.com"'),
         ("check", SOURCE), 4, (
        "newsletter.toml:18: sender.name: contains a line break or another control "
        "character, which would break the email's headers; write it on one line",)),
]
def _edit_toml(project: Path, old: str, new: str) -> None:
    path = project / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# --- the run ------------------------------------------------------------------------


def snapshot(project: Path, outside: Path) -> dict[str, str]:
    """What must not change: the database's rows, the outbox and the files outside."""
    state = {}
    database = project / ".newsletter" / "newsletter.db"
    with sqlite3.connect(database) as db:
        state["database"] = hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
    db.close()
    for root in (project / "outbox", outside):
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file():
                state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


# The child reports its own peak memory as it exits, on a pipe of its own: VmHWM, the
# high-water mark of its own memory map (getrusage's ru_maxrss would start from the size
# of the pytest process it was forked from).
CHILD = ("import atexit, os\n"
         "def peak():\n"
         "    for line in open('/proc/self/status'):\n"
         "        if line.startswith('VmHWM:'):\n"
         "            return int(line.split()[1])\n"
         "atexit.register(lambda: os.write(int(os.environ['PEAK_FD']), b'%d' % peak()))\n"
         "from pipeline.cli import main\n"
         "main()\n")


def run_child(project: Path, args: tuple[str, ...], env: dict[str, str]
              ) -> tuple[int, str, int]:
    """newsletter ARGS in its own process: exit status, output, peak memory (bytes)."""
    read, write = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args], cwd=project,
        env={**os.environ, "NEWSLETTER_SECRET": SECRET, "PEAK_FD": str(write), **env},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, pass_fds=(write,))
    os.close(write)
    try:
        output, _ = child.communicate(timeout=KILL_AFTER)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        pytest.fail(f"newsletter {' '.join(args)} did not end within {KILL_AFTER} s")
    with os.fdopen(read, "rb") as pipe:
        peak = pipe.read()
    assert peak, "the child ended without reporting its memory (killed?)"
    return child.returncode, output.decode("utf-8", "replace"), int(peak) * 1024  # KB


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the project with a secret that links in the project point at."""
    folder = tmp_path.parent / f"{tmp_path.name}-outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("the operator's private notes\n")
    return folder


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_gets_its_message_and_changes_nothing(case, run, audience, project,
                                                            outside):
    assert run("send", SOURCE, "--yes").exit_code == 0  # an outbox to keep unchanged
    case.setup(project, outside)
    before = snapshot(project, outside)
    status, output, peak = run_child(project, case.args, dict(case.env))
    assert "Traceback" not in output, output
    assert status == case.status, output
    lines = output.splitlines()
    for line in case.lines:
        assert line in lines, output
    assert peak <= MAX_RSS, f"peak memory {peak >> 20} MB"
    assert snapshot(project, outside) == before


def test_a_read_only_database_is_said_as_such(tmp_path):
    """As root (CI) no file is read-only to us, so SQLite is asked to open it read-only:
    the error it gives is the one a cron user without write access gets."""
    from pipeline.store.database import connect, database_problem

    connect(tmp_path / "newsletter.db").close()
    db = sqlite3.connect(f"file:{tmp_path / 'newsletter.db'}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as raised:
        db.execute("DELETE FROM subscribers")
    db.close()
    assert database_problem(raised.value) == (
        "cannot be written (read-only); give the user running newsletter write access to "
        "the file and its folder")
