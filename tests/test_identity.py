"""Stable issue identity: the `id` in issue.yaml keys the ledger, the schedule, the archive
and the Message-IDs, so renaming or moving a folder never sends an issue again."""

from __future__ import annotations

import email
import shutil
import sqlite3
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest

from tests.conftest import MINIMAL_SECTION, MINIMAL_YAML, write_issue

EARLY = datetime(2023, 12, 6, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai: before any schedule here

ISSUE = "2023-12-07-ai-productivity-09"
ROUNDUP = "2023-03-19-ai-weekly-roundup"
RECORDED = "  # recorded by newsletter: keep it when you rename the folder\n"
READERS = 12


def sends(project: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(project / ".newsletter" / "newsletter.db")
    return db.execute("SELECT issue, state FROM sends ORDER BY id").fetchall()


def emls(project: Path) -> list[Path]:
    return sorted((project / "outbox").rglob("*.eml"))


def give_id(project: Path, folder: str, issue_id: str) -> Path:
    meta = project / "issues" / folder / "issue.yaml"
    meta.write_text(meta.read_text().replace("publish: true\n", f"publish: true\nid: {issue_id}\n"))
    return meta


# --- the key in issue.yaml -------------------------------------------------------------


def test_an_id_that_is_not_a_slug_is_reported_at_its_line(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML + "id: AI Weekly 10\n",
                                  "01-news.md": MINIMAL_SECTION})
    result = run("build", "bad")
    assert result.exit_code == 1
    assert result.stderr == ("bad/issue.yaml:4: 'id' is 'AI Weekly 10', not a usable id; use "
                             "lower-case letters, digits and hyphens, like ai-weekly-10 (keep "
                             "it once the issue is sent: the ledger and the archive's URLs use "
                             "it)\n")
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML + "id: yes\n"})
    assert run("check", "bad").stdout == (
        "bad/issue.yaml:4: error: 'id' must be text like ai-weekly-10, not True; put it in "
        "quotes if it is meant as text\n")


def test_a_duplicate_id_is_an_error_naming_both_folders(run, project):
    give_id(project, ISSUE, "ai-09")
    shutil.copytree(project / "issues" / ISSUE, project / "issues" / "2023-12-14-copy")
    for folder, other in ((ISSUE, "2023-12-14-copy"), ("2023-12-14-copy", ISSUE)):
        result = run("build", folder)
        assert result.exit_code == 1
        assert result.stderr == (f"issues/{folder}/issue.yaml:11: id 'ai-09' is also the id of "
                                 f"issues/{other}/; give each issue its own id (a copied "
                                 "folder needs a new one)\n")
    # an issue without an id is known by its folder's name, which may clash as well
    copy = project / "issues" / "2023-12-14-copy" / "issue.yaml"
    copy.write_text(copy.read_text().replace("id: ai-09", f"id: {ROUNDUP}"))
    result = run("check", ROUNDUP)
    assert result.exit_code == 1
    assert result.stdout == (f"issues/{ROUNDUP}/issue.yaml: error: id '{ROUNDUP}' (from the "
                             "folder's name) is also the id of issues/2023-12-14-copy/; add a "
                             "line 'id: ...' with an id of its own\n")
    status = run("status").stdout
    assert f"{ROUNDUP}  invalid" in status and "2023-12-14-copy  invalid" in status


def test_new_writes_the_slug_as_the_id_and_refuses_a_taken_one(run, project):
    assert run("new", "ai-weekly-10", "--date", "2024-01-05").exit_code == 0
    meta = (project / "issues" / "2024-01-05-ai-weekly-10" / "issue.yaml").read_text()
    assert "\nid: ai-weekly-10\nnumber: 10\n" in meta
    again = run("new", "ai-weekly-10", "--date", "2024-01-12")
    assert again.exit_code == 1
    assert again.stderr == ("'ai-weekly-10' is already the id of issues/2024-01-05-ai-weekly-10/;"
                            " give the new issue a slug of its own, like ai-weekly-11\n")
    assert not (project / "issues" / "2024-01-12-ai-weekly-10").exists()
    # a folder's name is the id of an issue without one
    taken = run("new", ISSUE.removeprefix("2023-12-07-"), "--date", "2023-12-07")
    assert taken.exit_code == 1 and "already exists" in taken.stderr
    assert run("new", "ai-weekly-11", "--date", "2024-01-12").exit_code == 0


# --- renaming and moving never sends again ---------------------------------------------


def test_renaming_a_sent_folder_sends_nobody_twice(run, audience, project):
    meta = project / "issues" / ISSUE / "issue.yaml"
    before = meta.read_text()
    with run.at(EARLY):
        run("schedule", ISSUE, "--at", "2023-12-06T09:00:00+08:00")
    # scheduling records the id the folder's name gave it, keeping every other line
    assert meta.read_text() == before.replace(
        "date: 2023-12-07\n", "date: 2023-12-07\nsend_at: 2023-12-06T09:00:00+08:00\n"
    ) + f"id: {ISSUE}{RECORDED}"
    first = run("send", "--due", "--now", "2023-12-06T09:05:00+08:00")
    assert first.exit_code == 0, first.output
    assert len(emls(project)) == READERS

    renamed = project / "issues" / "2023-12-07-colab-and-chatgpt"
    (project / "issues" / ISSUE).rename(renamed)
    again = run("send", renamed.name, "--yes")
    assert again.exit_code == 0, again.output
    assert again.stdout == f"{ISSUE}: already sent on 2023-12-06 to 12 readers; nothing to send\n"
    due = run("send", "--due", "--now", "2023-12-06T09:10:00+08:00")
    assert due.exit_code == 0, due.output
    assert due.stderr == "2023-12-06T09:10:00+08:00 nothing due\n"
    assert len(emls(project)) == READERS
    assert run("status", renamed.name).stdout.startswith(
        f"{renamed.name}  sent       send_at 2023-12-06T09:00:00+08:00  outbox: 12 recipients, "
        "sent 12,")
    assert sends(project) == [(ISSUE, "done")]

    # moved out of issues/ altogether, and sent by its path
    moved = project / "archive" / "09"
    moved.parent.mkdir()
    renamed.rename(moved)
    assert run("send", "archive/09", "--yes").stdout.startswith(f"{ISSUE}: already sent on ")
    assert len(emls(project)) == READERS


def test_an_issue_with_an_id_keeps_its_urls_message_ids_and_outbox_folder(run, audience, project):
    give_id(project, ISSUE, "ai-productivity-09")
    assert run("send", "ai-productivity-09", "--yes").exit_code == 0  # ISSUE may be the id
    folder = project / "outbox" / "ai-productivity-09"
    messages = sorted(folder.glob("*.eml"))
    assert len(messages) == READERS
    message = email.message_from_bytes(messages[0].read_bytes(), policy=policy.default)
    assert message["Message-ID"] == "<ai-productivity-09.1@example.com>"
    html = message.get_body(("html",)).get_content()
    assert 'href="https://news.example.com/issues/ai-productivity-09/"' in html  # view online
    assert 'src="https://news.example.com/assets/ai-productivity-09/images/colab.png"' in html
    assert ISSUE not in html
    assert run("publish").stdout == ("published 2 issues to site/\n  ai-productivity-09/\n"
                                     f"  {ROUNDUP}/\n")
    assert (project / "site" / "ai-productivity-09" / "images" / "colab.png").is_file()
    feed = (project / "site" / "feed.xml").read_text()
    assert "<id>https://news.example.com/issues/ai-productivity-09/</id>" in feed
    status = run("status", ISSUE).stdout
    assert status.startswith(f"{ISSUE}  sent ") and status.endswith("  id ai-productivity-09\n")


def test_recording_the_id_keeps_the_file_or_refuses_to_send(run, audience, project):
    # a file in flow style cannot take a line without changing: nobody is sent anything
    write_issue(project / "issues" / "2024-01-31-flow", {
        "issue.yaml": '{number: 3, title: "Flow", date: 2024-01-31}\n',
        "01-news.md": MINIMAL_SECTION})
    result = run("send", "2024-01-31-flow", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        "issues/2024-01-31-flow/issue.yaml: the issue's id is recorded before it is first sent "
        "or scheduled, and could not be: cannot write 'id' without changing other lines (is the "
        "file in flow style?); add the line 'id: 2024-01-31-flow' yourself\n")
    assert not emls(project) and sends(project) == []
    # CRLF line ends, a comment and no final line break are kept as they were
    meta = project / "issues" / ROUNDUP / "issue.yaml"
    text = meta.read_text().replace("\n", "\r\n").replace("editor: 晓霖", "editor: 晓霖 # 编辑")
    meta.write_bytes(text.rstrip("\r\n").encode())
    assert run("send", ROUNDUP, "--yes").exit_code == 0
    assert meta.read_bytes().decode() == (text.rstrip("\r\n") + "\r\n" + f"id: {ROUNDUP}"
                                          + RECORDED.replace("\n", "\r\n"))


# --- a database written before ids existed -----------------------------------------------


def forget_the_id(meta: Path) -> None:
    """issue.yaml as it was before ids existed: no id line."""
    meta.write_text("".join(line for line in meta.read_text().splitlines(keepends=True)
                            if not line.startswith("id:")))


def test_a_send_keyed_by_folder_name_still_matches(run, audience, project):
    meta = project / "issues" / ISSUE / "issue.yaml"
    with run.at(EARLY):
        run("schedule", ISSUE, "--at", "2023-12-06T15:30:00+08:00")  # now: half an hour ago
    run("send", "--due")
    forget_the_id(meta)  # the ledger holds the folder's name, as before ids existed
    assert sends(project) == [(ISSUE, "done")]
    assert run("send", "--due").stderr == "2023-12-06T08:00:00+00:00 nothing due\n"
    again = run("send", ISSUE, "--yes")
    assert again.stdout == f"{ISSUE}: already sent on 2023-12-06 to 12 readers; nothing to send\n"
    assert f"id: {ISSUE}{RECORDED}" in meta.read_text()  # recorded now: a rename is safe
    assert len(emls(project)) == READERS


def test_an_id_added_by_hand_after_a_send_finds_the_send_and_rekeys_it(run, audience, project):
    meta = project / "issues" / ISSUE / "issue.yaml"
    with run.at(EARLY):
        run("schedule", ISSUE, "--at", "2023-12-06T15:30:00+08:00")  # now: half an hour ago
    run("send", "--due")
    forget_the_id(meta)
    meta.write_text(meta.read_text() + "id: ai-productivity-09\n")
    status = run("status", ISSUE).stdout  # found under the folder's name, read-only
    assert status.startswith(f"{ISSUE}  sent ") and "sent 12" in status
    due = run("send", "--due")  # due by its send_at, were its send not found
    assert due.exit_code == 0 and due.stderr == "2023-12-06T08:00:00+00:00 nothing due\n"
    assert sends(project) == [(ISSUE, "done")]
    again = run("send", ISSUE, "--yes")
    assert again.exit_code == 0
    assert again.stdout == ("ai-productivity-09: already sent on 2023-12-06 to 12 readers; "
                            "nothing to send\n")
    assert sends(project) == [("ai-productivity-09", "done")]  # re-keyed to the id
    (project / "issues" / ISSUE).rename(project / "issues" / "2023-12-07-renamed")
    assert run("send", "--due").stderr == "2023-12-06T08:00:00+00:00 nothing due\n"
    assert run("send", "2023-12-07-renamed", "--yes").stdout.startswith(
        "ai-productivity-09: already sent on 2023-12-06")
    assert len(emls(project)) == READERS


def test_a_folder_name_that_is_not_an_id(run, audience, project):
    folder = project / "issues" / "AI Weekly 09"
    shutil.move(project / "issues" / ISSUE, folder)
    run("send", "AI Weekly 09", "--yes")
    assert f"id: ai-weekly-09{RECORDED}" in (folder / "issue.yaml").read_text()
    assert len(list((project / "outbox" / "ai-weekly-09").glob("*.eml"))) == READERS
    # as before ids existed: the send keyed by the folder's name as it was, no id line
    db = sqlite3.connect(project / ".newsletter" / "newsletter.db")
    db.execute("UPDATE sends SET issue = 'AI Weekly 09'")
    db.commit()
    forget_the_id(folder / "issue.yaml")
    again = run("send", "AI Weekly 09", "--yes")
    assert again.stdout == ("ai-weekly-09: already sent on 2023-12-06 to 12 readers; nothing "
                            "to send\n")
    assert sends(project) == [("ai-weekly-09", "done")]


@pytest.mark.parametrize("text, expected", [
    ("number: 1\n", "derived"),
    ("number: 1\nid: ai-weekly-10\n", "ai-weekly-10"),
    ("number: 1\nid: ai-weekly-10  # keep it\n", "ai-weekly-10"),
    ("number: 1\nid: 'ai-weekly-10'\n", "ai-weekly-10"),
    ('number: 1\n"id": ai-weekly-10\n', "ai-weekly-10"),
    ("{number: 1, id: ai-weekly-10}\n", "ai-weekly-10"),
    ("number: 1\nid: yes\n", None),
    ("number: 1\nid: 10\n", "10"),
    ("number: 1\nid:\n", None),
    ("number: 1\nid: one\nid: two\n", "two"),
])
def test_the_quick_id_of_a_folder_is_what_yaml_says(tmp_path, text, expected):
    """Every folder's id is read on every command, mostly from its lines; whatever the
    shortcut answers, it is what parsing the YAML answers."""
    import yaml

    from pipeline.issue.identity import IssueIds, derived_id, is_id

    folder = tmp_path / "2024-01-05-weekly"
    folder.mkdir()
    (folder / "issue.yaml").write_text(text)
    found = IssueIds([folder]).by_id
    data = yaml.safe_load(text)
    value = data.get("id")
    parsed = derived_id(folder) if "id" not in data else \
        (str(value) if isinstance(value, str | int) and not isinstance(value, bool) and
         is_id(str(value)) else None)
    got = next(iter(found), None)
    assert got == parsed
    assert got == (derived_id(folder) if expected == "derived" else expected)


def test_an_issue_yaml_with_anchors_has_no_quick_id_and_its_read_says_why(run, project):
    """Anchors and aliases are refused (an alias bomb); the id shortcut agrees."""
    from pipeline.issue.identity import IssueIds

    folder = project / "issues" / "2024-01-05-weekly"
    folder.mkdir()
    (folder / "issue.yaml").write_text("base: &b {id: from-anchor}\n<<: *b\nnumber: 1\n")
    assert IssueIds([folder]).by_id == {}
    result = run("check", "issues/2024-01-05-weekly")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:2] == [
        "issues/2024-01-05-weekly: error: no section files; add Markdown files such as "
        "01-news.md, one per section, in reading order",
        "issues/2024-01-05-weekly/issue.yaml:1: error: anchors and aliases (& and *) are not "
        "used here; write the value out in full"]
