"""What was reviewed is what is sent: `send` records the issue folder's content hash and
its git commit, refuses a folder with changes not committed, and `status` and the
archive page show the version that was sent."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

from pipeline.issue.version import content_hash
from tests.conftest import NOW

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


def test_the_id_the_first_send_records_does_not_stop_its_resumption(run, engine, audience,
                                                                    project):
    """The sample has no `id:`; its first send writes one into issue.yaml. A send stopped
    at the daily limit resumes without a commit of that line; any other change still
    stops it, and so does the id line with one more change."""
    commit = repository(project)
    folder = project / "issues" / ISSUE
    meta = folder / "issue.yaml"
    assert "id:" not in meta.read_text()
    digest = content_hash(folder)
    first = run("send", ISSUE, "--yes", env={"NEWSLETTER_DELIVERY_MAX_PER_DAY": "5"})
    assert first.exit_code == 3, first.output  # stopped at the limit, 7 pending
    assert ("id: 2023-12-07-ai-productivity-09  # recorded by newsletter: keep it when you "
            "rename the folder\n") in meta.read_text()
    assert git(project, "status", "--porcelain", "--", "issues") == \
        f"M issues/{ISSUE}/issue.yaml"  # (.strip() took the leading space)
    edited = meta.read_text()
    meta.write_text(edited.replace("editor: 晓霖", "editor: 晓霖、妙生"))
    refused = run("send", ISSUE, "--yes")
    assert refused.exit_code == 1
    assert (f"issues/{ISSUE}: has changes that are not committed (issues/{ISSUE}/issue.yaml)"
            in refused.stderr)
    meta.write_text(edited)
    with run.at(NOW + timedelta(hours=24, minutes=1)):  # the next day's 5
        resumed = run("send", ISSUE, "--yes", env={"NEWSLETTER_DELIVERY_MAX_PER_DAY": "5"})
    assert resumed.exit_code == 3, resumed.output
    assert "not committed" not in resumed.stderr
    assert engine.statuses() == {"sent": 10, "pending": 2}
    # the version is the one reviewed, from before the id was written
    assert engine.query("SELECT content_hash, source_commit FROM sends") == [(digest, commit)]
