"""`newsletter new` and `newsletter build` from the command line."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import FIXTURES


def test_new_scaffolds_a_numbered_issue_that_builds(run, project):
    result = run("new", "ai-weekly", "--date", "2024-01-05")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("created issues/2024-01-05-ai-weekly/\n  01-tips.md\n  02-news.md\n"
                             "  03-insights.md\n  images/\n  issue.yaml\n")
    folder = project / "issues" / "2024-01-05-ai-weekly"
    meta = (folder / "issue.yaml").read_text()
    assert "number: 10\n" in meta  # after the latest sample, number 9
    assert "date: 2024-01-05\n" in meta
    assert "kind: news\ntitle: 大模型动态\n" in (folder / "02-news.md").read_text()
    built = run("build", "2024-01-05-ai-weekly")
    assert built.exit_code == 0, built.output


def test_new_defaults_to_today_in_the_configured_zone(run, project):
    result = run("new", "late-night")  # 2023-12-06 08:00 UTC is 16:00 in Shanghai
    assert result.stdout.startswith("created issues/2023-12-06-late-night/")


def test_new_refuses_a_bad_slug_and_an_existing_folder(run, project):
    result = run("new", "Bad Slug")
    assert result.exit_code == 1
    assert result.stderr == ("Error: 'Bad Slug' is not a usable slug; use lower-case letters, "
                             "digits and hyphens, like ai-weekly-10\n"[len("Error: "):])
    run("new", "twice", "--date", "2024-01-05")
    again = run("new", "twice", "--date", "2024-01-05")
    assert again.exit_code == 1
    assert again.stderr == ("issues/2024-01-05-twice: already exists; choose another slug or "
                            "date\n")


def test_build_prints_sizes(run, project):
    result = run("build", "issues/2023-03-19-ai-weekly-roundup")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "built build/2023-03-19-ai-weekly-roundup/"
    assert lines[1].startswith("  email.html  ") and lines[1].endswith(" KB")
    assert lines[3] == "  assets/     2 files"


def test_build_of_a_folder_outside_issues(run, project):
    shutil.copytree(FIXTURES / "kitchen-sink", project / "elsewhere" / "kitchen-sink")
    result = run("build", "elsewhere/kitchen-sink", "--out", "out")
    assert result.exit_code == 0, result.output
    text = (project / "out" / "kitchen-sink" / "email.txt").read_text()
    html = (project / "out" / "kitchen-sink" / "email.html").read_text()
    for title in ("Paragraphs and emphasis", "Lists", "Quote and code", "Image"):
        assert title in text and title in html


def test_build_warns_near_and_fails_at_gmail_clipping(run, project):
    folder = project / "issues" / "2023-03-19-ai-weekly-roundup"
    def filler(paragraphs: int) -> str:
        text = "\n\n".join(f"填充段落 {n}：" + "这是一段用来撑大邮件的文字。" * 6
                           for n in range(paragraphs))
        return f"---\nkind: day\ntitle: 周六\n---\n\n## 长文\n\n{text}\n"

    (folder / "06-long.md").write_text(filler(300))  # about 131 KB of HTML
    result = run("build", "2023-03-19-ai-weekly-roundup")
    assert result.exit_code == 1
    assert result.stderr.startswith("build/2023-03-19-ai-weekly-roundup/email.html: ")
    assert result.stderr.endswith(" KB reaches Gmail's 102 KB limit, where it clips the message; "
                                  "shorten the issue or move items to the web version\n")
    (folder / "06-long.md").write_text(filler(190))  # about 96 KB
    result = run("build", "2023-03-19-ai-weekly-roundup")
    assert result.exit_code == 0
    assert "is close to Gmail's 102 KB clipping limit" in result.stderr


def test_console_script_runs_as_a_process(project):
    done = subprocess.run([sys.executable, "-m", "pipeline", "build", "2023-12-07-ai-productivity-09"],
                          cwd=project, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("built build/2023-12-07-ai-productivity-09/")


def test_every_command_has_help():
    import click

    from pipeline.cli import cli

    def walk(group: click.Group, prefix: str) -> list[str]:
        names = []
        for name, command in group.commands.items():
            assert command.help, f"`{prefix}{name}` has no help text"
            names.append(prefix + name)
            if isinstance(command, click.Group):
                names += walk(command, f"{prefix}{name} ")
        return names

    assert sorted(walk(cli, "")) == [
        "audience", "audience add", "audience bounces", "audience count", "audience export",
        "audience import", "audience list", "audience remove", "audience sync", "audience tag",
        "audience unsubscribe", "build", "check", "cron", "db", "db status", "db upgrade",
        "export", "init", "new", "preview", "publish", "report", "review", "schedule", "send",
        "serve", "stats", "status", "templates", "templates copy"]
