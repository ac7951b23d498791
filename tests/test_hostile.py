"""Hostile and careless input (issue 13, begun): what reaches headers and links is
always well-formed, and nothing secret reaches a screen."""

from __future__ import annotations

import email
import io
import re
from email import policy

import pytest

from pipeline.config import load_config
from pipeline.web import create_app
from tests.conftest import NOW, SECRET, token_of

ISSUE = "2023-12-07-ai-productivity-09"


def messages(project) -> list[tuple[bytes, email.message.EmailMessage]]:
    return [(path.read_bytes(), email.message_from_bytes(path.read_bytes(), policy=policy.default))
            for path in sorted((project / "outbox" / ISSUE).glob("*.eml"))]


@pytest.mark.parametrize("subject", [
    "x" * 1200,                                   # one word longer than a line may be
    "Weekly" + " notes on models and tools" * 40,  # ASCII that must be folded at spaces
    "本期：" + "大模型与智能体的一周" * 60,            # CJK, encoded-words
])
def test_a_long_subject_is_folded_within_998_octets_and_reads_back_whole(run, audience,
                                                                          project, subject):
    meta = project / "issues" / ISSUE / "issue.yaml"
    text = meta.read_text(encoding="utf-8")
    meta.write_text(re.sub(r"^subject:.*$", f'subject: "{subject}"', text, count=1, flags=re.M),
                    encoding="utf-8")
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 0, result.output
    sent = messages(project)
    assert len(sent) == 12
    for raw, message in sent:
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        assert message["Subject"] == subject


@pytest.mark.parametrize("url, link", [
    ("https://news.example.com/u?list=ai", "https://news.example.com/u?list=ai&token="),
    ("https://news.example.com/u?", "https://news.example.com/u?token="),
    ("https://news.example.com/u#bye", "https://news.example.com/u?token="),
])
def test_unsubscribe_links_join_any_query_and_serve_accepts_them(run, audience, project, url,
                                                                 link):
    run.env["NEWSLETTER_UNSUBSCRIBE_URL"] = url
    assert run("send", ISSUE, "--yes").exit_code == 0
    token = token_of(audience, "ada.zhang@example.com")
    raw, message = next((raw, m) for raw, m in messages(project)
                        if "ada.zhang@example.com" in m["To"])
    # the issue's links name the issue, for stats
    expected = link + token + f"&issue={ISSUE}" + ("#bye" if "#" in url else "")
    assert message["List-Unsubscribe"].startswith(f"<{expected}>")
    assert f'href="{expected}"' in message.get_body(("html",)).get_content().replace("&amp;", "&")

    config = load_config(project / "newsletter.toml", env={**run.env, "NEWSLETTER_SECRET": SECRET})
    app = create_app(config, lambda: NOW)
    path, _, query = expected.split("#")[0].removeprefix("https://news.example.com").partition("?")
    seen = {}
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
                         "wsgi.input": io.BytesIO()},
                        lambda status, headers: seen.update(status=status)))
    assert seen["status"] == "200 OK" and "ada.zhang@example.com" in body.decode()


def test_a_dry_run_shows_a_placeholder_never_a_real_token(run, audience):
    result = run("send", ISSUE, "--dry-run")
    assert result.exit_code == 0
    first = "lin.xiaoyu@example.com"  # the first reader imported
    assert token_of(audience, first) not in result.stdout
    assert f"?token=TOKEN&issue={ISSUE}>, <mailto:newsletter+unsubscribe@example.com?subject=unsubscribe%20TOKEN>" in \
        result.stdout.replace("\n", "")


def test_export_writes_formula_cells_as_text_and_import_takes_them_back(run, audience, project):
    (project / "evil.csv").write_text(
        'email,name,company\n'
        'mallory@example.com,"=HYPERLINK(""http://evil.example"",""x"")",+cmd|calc\n'
        'dash@example.com,-Dash,@home\n', encoding="utf-8")
    assert run("audience", "import", "evil.csv").exit_code == 0
    assert run("audience", "export", "out.csv").stdout == "wrote 14 subscribers to out.csv\n"
    rows = (project / "out.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == ("email,name,status,tags,consent_at,consent_source,consent_client,"
                       "consent_agent,confirmed_at,city,company")
    assert """mallory@example.com,"'=HYPERLINK(""http://evil.example"",""x"")",active,,,,,,,,'+cmd|calc""" \
        in rows
    assert "dash@example.com,'-Dash,active,,,,,,,,'@home" in rows
    again = run("audience", "import", "out.csv")  # a round trip changes nobody
    assert again.stdout == ("added 0, updated 0, unchanged 14, kept unsubscribed 0, "
                            "skipped 0\n")


def test_export_to_a_dash_writes_standard_output_not_a_file(run, audience, project):
    result = run("audience", "export", "-")
    assert result.stdout.splitlines()[0] == ("email,name,status,tags,consent_at,consent_source,"
                                             "consent_client,consent_agent,confirmed_at,city")
    assert len(result.stdout.splitlines()) == 13
    assert result.stderr == "wrote 12 subscribers to standard output\n"
    assert not (project / "-").exists()


# --- nothing outside the issue folder, nothing but regular files --------------------------


def build(project, folder: str):
    """`newsletter build` in its own process, so that a hang would be a failed test."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "pipeline", "build", folder], cwd=project,
                          capture_output=True, text=True, timeout=60)


def test_an_image_that_links_outside_the_issue_folder_is_an_error(project, tmp_path):
    secret = tmp_path / "outside" / "id_rsa.png"
    secret.parent.mkdir()
    secret.write_bytes((project / "issues" / ISSUE / "images" / "colab.png").read_bytes())
    link = project / "issues" / ISSUE / "images" / "colab.png"
    link.unlink()
    link.symlink_to(secret)
    done = build(project, f"issues/{ISSUE}")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert any(line.endswith("image 'images/colab.png' leads outside the issue folder (a "
                             "symlink); copy the file into the folder instead") for line in lines)
    assert "Traceback" not in done.stderr
    assert not (project / "build").exists()


def test_a_folder_a_pipe_or_a_link_out_named_like_a_section_is_an_error(project, tmp_path):
    import os

    folder = project / "issues" / ISSUE
    (folder / "04-folder.md").mkdir()
    os.mkfifo(folder / "05-pipe.md")
    outside = tmp_path / "notes.md"
    outside.write_text("---\nkind: news\n---\n\n## Elsewhere\n\nText.\n", encoding="utf-8")
    (folder / "06-link.md").symlink_to(outside)
    done = build(project, f"issues/{ISSUE}")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"issues/{ISSUE}/04-folder.md: is not a regular file (a folder, a pipe or a device); "
        "only files are read",
        f"issues/{ISSUE}/05-pipe.md: is not a regular file (a folder, a pipe or a device); "
        "only files are read",
        f"issues/{ISSUE}/06-link.md: leads outside the issue folder (a symlink); copy the "
        "file into the folder instead",
    ]


# --- serve holds ---------------------------------------------------------------------------


def test_serve_answers_a_reader_while_150_idle_connections_hang_open(project, audience):
    """Slowloris: idle connections beyond waitress's default limit of 100 must not keep a
    reader from unsubscribing; and every page forbids script and framing."""
    import socket
    import time
    import urllib.request

    from tests.conftest import start_process
    from tests.smtp_server import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_process(project, ["serve", "--port", str(port)], base + "/healthz",
                            {"NEWSLETTER_SECRET": SECRET})
    idle = []
    try:
        for _ in range(150):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        idle[0].sendall(b"GET /unsubscribe HTTP/1.1\r\nHost: x\r\n")  # and one half-request
        token = token_of(audience, "ada.zhang@example.com")
        started = time.monotonic()
        with urllib.request.urlopen(f"{base}/unsubscribe?token={token}", timeout=10) as page:
            body, headers = page.read().decode(), page.headers
        assert time.monotonic() - started < 5
        assert "ada.zhang@example.com" in body
        assert headers["Content-Security-Policy"] == (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
        assert headers["X-Frame-Options"] == "DENY"
        assert "<script" not in body
    finally:
        for connection in idle:
            connection.close()
        process.terminate()
        process.wait(timeout=10)
