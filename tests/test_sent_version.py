"""What was reviewed is what is sent: `send` records the issue folder's content hash and
its git commit, refuses a folder with changes not committed, and `status` and the
archive page show the version that was sent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pipeline.issue.version import content_hash

ISSUE = "2023-12-07-ai-productivity-09"


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True,
                          text=True, timeout=30).stdout.strip()


def repository(project: Path) -> str:
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.email", "editor@example.com")
    git(project, "config", "user.name", "Editor")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the publication")
    return git(project, "rev-parse", "HEAD")


def test_send_records_the_commit_and_hash_and_status_shows_them(run, engine, audience,
                                                                project):
    commit = repository(project)
    folder = project / "issues" / ISSUE
    digest = content_hash(folder)
    sent = run("send", ISSUE, "--yes")
    assert sent.exit_code == 0, sent.output
    assert engine.query("SELECT content_hash, source_commit FROM sends") == [(digest, commit)]
    status = run("status", ISSUE)
    assert f"  version sha256:{digest[:12]} commit {commit[:12]}" in status.stdout
    (state,) = json.loads(run("status", ISSUE, "--json").stdout)
    assert (state["content_hash"], state["commit"]) == (digest, commit)


def test_an_issue_with_uncommitted_changes_is_refused(run, audience, project):
    repository(project)
    folder = project / "issues" / ISSUE
    section = folder / "02-model-news.md"
    section.write_text(section.read_text() + "\n一句审阅后加的话。\n")
    (folder / "images" / "new.png").write_bytes(b"not reviewed")
    refused = run("send", ISSUE, "--yes")
    assert refused.exit_code == 1
    assert (f"issues/{ISSUE}: has changes that are not committed (issues/{ISSUE}/02-model-news.md, "
            f"issues/{ISSUE}/images/new.png); commit them, so that what is sent is what was "
            "reviewed (or set [review] require_clean = false)") in refused.stderr
    assert not (project / "outbox").exists()
    allowed = run("send", ISSUE, "--yes", env={"NEWSLETTER_REVIEW_REQUIRE_CLEAN": "false"})
    assert allowed.exit_code == 0, allowed.output


def test_a_folder_outside_git_is_sent_with_its_hash(run, engine, audience, project):
    digest = content_hash(project / "issues" / ISSUE)
    assert run("send", ISSUE, "--yes").exit_code == 0
    assert engine.query("SELECT content_hash, source_commit FROM sends") == [(digest, "")]
    status = run("status", ISSUE).stdout
    assert f"  version sha256:{digest[:12]}  " in status or status.rstrip().endswith(
        f"version sha256:{digest[:12]}")


def test_the_archive_page_shows_the_sent_version(run, audience, project):
    commit = repository(project)
    digest = content_hash(project / "issues" / ISSUE)
    assert run("send", ISSUE, "--yes").exit_code == 0
    assert run("publish", "--out", "site").exit_code == 0
    issue_id = next(p.name for p in (project / "site").iterdir()
                    if (p / "index.html").is_file() and "productivity" in p.name)
    page = (project / "site" / issue_id / "index.html").read_text()
    assert (f'<p class="meta version">Sent version: <code>sha256:{digest[:12]} · commit '
            f'{commit[:12]}</code></p>') in page
