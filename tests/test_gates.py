"""What stops a send: check errors and text left from `newsletter new` (a person may
--force, cron never does), schedules in the past or of a sent issue, an empty audience."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from pipeline.editor.scaffold import SCAFFOLD_LINES

ISSUE = "2023-12-07-ai-productivity-09"
ROUNDUP = "2023-03-19-ai-weekly-roundup"


def break_issue(project) -> str:
    """A link without text (a check error, not a reading error); returns the finding."""
    path = project / "issues" / ISSUE / "01-productivity.md"
    text = path.read_text(encoding="utf-8") + "\nSee [](https://example.com/more).\n"
    path.write_text(text, encoding="utf-8")
    line = len(text.rstrip("\n").split("\n"))
    return (f"issues/{ISSUE}/01-productivity.md:{line}: the link to https://example.com/more "
            "has no text; write what it leads to between the brackets")


def sent_rows(project) -> int:
    db = project / ".newsletter" / "newsletter.db"
    return sqlite3.connect(db).execute("SELECT count(*) FROM sends").fetchone()[0]


def test_send_refuses_an_issue_with_check_errors_and_force_overrides(run, audience, project):
    finding = break_issue(project)
    refused = run("send", ISSUE, "--yes")
    assert refused.exit_code == 1
    assert refused.stderr == (f"{finding}\n{ISSUE}: not sent: `newsletter check` finds 1 "
                              "error; fix them, or send with --force\n")
    assert not (project / "outbox").exists() and sent_rows(project) == 0
    forced = run("send", ISSUE, "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert len(list((project / "outbox" / ISSUE).glob("*.eml"))) == 12


def test_text_left_from_newsletter_new_is_a_check_error_and_blocks_the_send(run, audience,
                                                                            project):
    assert run("new", "fresh", "--date", "2023-12-08").exit_code == 0
    folder = project / "issues" / "2023-12-08-fresh"
    check = run("check", str(folder))
    assert check.exit_code == 1
    scaffold = [line for line in check.stdout.splitlines() if "newsletter new" in line]
    assert scaffold[0] == ("issues/2023-12-08-fresh/01-tips.md:6: error: text from "
                           "`newsletter new` is still here; replace it with the issue's own "
                           "words, or delete it")
    assert len(scaffold) == 3 * len(SCAFFOLD_LINES)  # every guidance line of 3 sections
    refused = run("send", str(folder), "--yes")
    assert refused.exit_code == 1 and "not sent: `newsletter check` finds" in refused.stderr
    forced = run("send", str(folder), "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert len(list((project / "outbox" / "fresh").glob("*.eml"))) == 12  # by its id


def test_cron_never_forces_and_says_why_it_skipped_every_run(run, audience, project):
    run.now = datetime(2023, 12, 6, 0, 0, tzinfo=UTC)
    assert run("schedule", ISSUE, "--at", "2023-12-06T09:00:00+08:00").exit_code == 0
    finding = break_issue(project)
    for _ in range(2):
        result = run("send", "--due", "--now", "2023-12-06T09:05:00+08:00")
        assert result.exit_code == 3
        assert result.stderr == (
            f"2023-12-06T09:05:00+08:00 {ISSUE}: not sent: `newsletter check` finds 1 error, "
            f"the first {finding}; fix them and the next run sends it\n")
    assert not (project / "outbox").exists() and sent_rows(project) == 0
    assert run("send", "--due", "--force").exit_code == 2  # a usage error: not for cron


def test_schedule_refuses_the_past_and_a_sent_issue(run, audience, project):
    past = run("schedule", ISSUE, "--at", "2023-12-06T09:00:00+08:00")  # now: 16:00 there
    assert past.exit_code == 1
    assert past.stderr == ("--at 2023-12-06T09:00:00+08:00 is in the past (it is now "
                           "2023-12-06T16:00:00+08:00); give a later time, or send it now "
                           "with `newsletter send`\n")
    assert run("send", ISSUE, "--yes").exit_code == 0
    sent = run("schedule", ISSUE, "--at", "2024-01-01T09:00:00+08:00")
    assert sent.exit_code == 1
    assert sent.stderr == (f"{ISSUE}: its send started 2023-12-06T08:00:00+00:00 (12 readers) "
                           "and it is never sent twice; there is nothing to schedule\n")
    assert "send_at" not in (project / "issues" / ISSUE / "issue.yaml").read_text()
    assert run("schedule", ROUNDUP, "--at", "2024-01-01T09:00:00+08:00").exit_code == 0


def test_an_empty_audience_is_an_error_that_leaves_the_issue_scheduled(run, project):
    run.now = datetime(2023, 12, 6, 0, 0, tzinfo=UTC)
    run("schedule", ISSUE, "--at", "2023-12-06T09:00:00+08:00")
    nobody = (f"{ISSUE}: nobody to send to: the audience has no active readers; add some "
              "(newsletter audience import FILE) and send again")
    now = run("send", ISSUE, "--yes")
    assert now.exit_code == 1 and now.stderr == nobody + "\n"
    due = run("send", "--due", "--now", "2023-12-06T09:05:00+08:00")
    assert due.exit_code == 3
    assert due.stderr.splitlines()[-1] == f"2023-12-06T09:05:00+08:00 {ISSUE}: failed: {nobody}"
    run.now = datetime(2023, 12, 6, 1, 5, tzinfo=UTC)
    assert run("status", ISSUE).stdout.startswith(f"{ISSUE}  due ")
    assert run("audience", "add", "reader@example.com").exit_code == 0
    later = run("send", "--due", "--now", "2023-12-06T09:10:00+08:00")
    assert later.exit_code == 0, later.output
    assert run("status", ISSUE).stdout.startswith(f"{ISSUE}  sent ")


# --- cron, unattended ----------------------------------------------------------------


def due_now(project) -> None:
    """Schedule the issue a minute ago by the real clock (cron runs on it), and give the
    project the secret the way an operator would for cron: the 0600 env file."""
    import re

    meta = project / "issues" / ISSUE / "issue.yaml"
    moment = datetime.now(UTC).replace(microsecond=0).isoformat()
    meta.write_text(re.sub(r"^date:.*$", lambda m: f"{m[0]}\nsend_at: {moment}",
                           meta.read_text(encoding="utf-8"), count=1, flags=re.M),
                    encoding="utf-8")
    secrets = project / ".newsletter" / "env"
    secrets.parent.mkdir(exist_ok=True)
    secrets.write_text("NEWSLETTER_SECRET=cron-secret\n")
    secrets.chmod(0o600)


def test_the_printed_cron_line_pasted_into_sh_under_env_i_delivers_a_due_issue(run, audience,
                                                                              project):
    import subprocess

    due_now(project)
    line = run("cron").stdout.rstrip("\n")
    command = line.split(" ", 5)[5].replace("\\%", "%")
    ran = subprocess.run(["env", "-i", "/bin/sh", "-c", command], cwd="/", capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert len(list((project / "outbox" / ISSUE).glob("*.eml"))) == 12
    log = (project / "logs" / "send.log").read_text()
    assert f"{ISSUE}: done through outbox: sent 12, failed 0, invalid 0, unknown 0" in log


def test_cron_check_runs_the_line_as_cron_would_and_reports(run, audience, project):
    due_now(project)
    result = run("cron", "--check")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == run("cron").stdout.rstrip("\n")
    assert lines[1] == ("ran it as cron would (env -i, /bin/sh, from the home folder): exit 0; "
                        "it wrote to logs/send.log:")
    assert any(f"{ISSUE}: due at " in entry for entry in lines[2:])
    assert f"  {ISSUE}: done through outbox: sent 12, failed 0, invalid 0, unknown 0, skipped 0, " \
           "pending 0 of 12" in lines
    again = run("cron", "--check")  # nothing is due any more, nothing is sent twice
    assert again.exit_code == 0 and again.stdout.splitlines()[2].endswith(" nothing due")
    assert len(list((project / "outbox" / ISSUE).glob("*.eml"))) == 12


def test_cron_check_reports_a_missing_secret_with_its_exit_status(run, audience, project):
    result = run("cron", "--check")
    assert result.exit_code == 4
    assert result.stdout.splitlines()[2] == (
        "  newsletter.toml: NEWSLETTER_SECRET is not set (the long random string that signs "
        "unsubscribe links); export it, or put it in .newsletter/env (mode 600)")


def test_cron_systemd_prints_a_service_and_a_timer(run, project):
    import sys

    units = run("cron", "--systemd").stdout
    assert f"WorkingDirectory={project}\n" in units
    assert f"ExecStart={sys.executable} -m pipeline send --due\n" in units
    assert "Type=oneshot" in units and "OnCalendar=*:0/5" in units
    assert units.index("# /etc/systemd/system/newsletter-send.service") < \
        units.index("# /etc/systemd/system/newsletter-send.timer")
