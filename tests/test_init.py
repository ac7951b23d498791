"""A publication of one's own: `newsletter init`, `templates copy`, `--project` and the
crontab line `newsletter cron` prints, run as it is printed."""

from __future__ import annotations

import email
import os
import re
import shlex
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import App, cli
from pipeline.config import load_config
from pipeline.delivery.cron import cron_line, running_command
from pipeline.render.templates import package_templates

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SECRET = "test-secret-init"
NEWSLETTER = Path(sys.executable).with_name("newsletter")  # this venv's console script


def newsletter(*args: str, config: Path | None = None, env: dict | None = None):
    app = App(config, env={"NEWSLETTER_SECRET": SECRET, **(env or {})}, clock=lambda: NOW)
    return CliRunner().invoke(cli, list(args), obj=app, catch_exceptions=False)


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sample(pub: Path) -> Path:
    (issue,) = sorted((pub / "issues").iterdir())
    return issue


def test_init_writes_a_publication_that_builds_checks_and_sends(here):
    result = newsletter("init", "mynews", "--name", "Field Notes",
                        "--sender", "Ann Lee <ann@field-notes.example>")
    assert result.exit_code == 0, result.output
    pub = here / "mynews"
    issue = pub / "issues" / "2026-03-02-welcome"
    assert sorted(str(p.relative_to(pub)) for p in pub.rglob("*")) == [
        ".github", ".github/workflows", ".github/workflows/newsletter-review.yml",
        ".gitignore", "env.example", "issues", "issues/2026-03-02-welcome",
        "issues/2026-03-02-welcome/01-welcome.md",
        "issues/2026-03-02-welcome/02-how-it-is-made.md",
        "issues/2026-03-02-welcome/issue.yaml", "newsletter.toml"]
    assert result.stdout.startswith("created mynews/\n  newsletter.toml\n")
    workflow = (pub / ".github" / "workflows" / "newsletter-review.yml").read_text()
    assert "on:\n  pull_request:\n" in workflow and "{%" not in workflow
    assert 'newsletter review "origin/${{ github.base_ref }}" --out review\n' in workflow
    assert "--body-file review/report.md\n" in workflow
    next_steps = result.stdout.split("Next:\n")[1]
    for step in ("cd mynews", "export NEWSLETTER_SECRET=", "newsletter build issues/2026-03-02-"
                 "welcome", "newsletter preview issues/", "newsletter send issues/"):
        assert step in next_steps

    config = load_config(pub / "newsletter.toml", {})
    assert config.name == "Field Notes" and config.language == "en"
    assert (config.sender.name, config.sender.email) == \
        ("Ann Lee", "ann@field-notes.example")
    assert config.labels.issue == "Issue {number}"
    assert list(config.sections) == ["news", "tips", "notes"]
    assert (pub / ".gitignore").read_text().split("\n")[1:-1] == [
        ".newsletter/", "build/", "outbox/", "site/", "logs/", "*.env", ".env"]
    env_example = (pub / "env.example").read_text()
    for name in ("NEWSLETTER_SECRET=", "SENDGRID_API_KEY=", "SMTP_PASSWORD=", ".newsletter/env",
                 "chmod 600"):
        assert name in env_example

    toml = pub / "newsletter.toml"
    built = newsletter("build", str(issue), config=toml)
    assert built.exit_code == 0, built.output
    assert "Welcome to Field Notes" in (pub / "build" / issue.name / "email.html").read_text()
    checked = newsletter("check", str(issue), config=toml)
    assert checked.exit_code == 0, checked.output
    assert checked.stderr == "0 errors, 0 warnings\n"
    assert newsletter("audience", "add", "you@example.com", config=toml).exit_code == 0
    sent = newsletter("send", issue.name, "--yes", config=toml)
    assert sent.exit_code == 0, sent.output
    (eml,) = (pub / "outbox" / issue.name).glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes())
    assert message["To"] == "you@example.com"
    assert message["Subject"] == "Welcome to Field Notes"
    assert message["From"] == "Ann Lee <ann@field-notes.example>"


def test_init_in_chinese(here):
    result = newsletter("init", "zhoukan", "--name", "AI 周刊", "--language", "zh-CN",
                        "--sender", "editors@example.com")
    assert result.exit_code == 0, result.output
    pub = here / "zhoukan"
    config = load_config(pub / "newsletter.toml", {})
    assert config.language == "zh-CN"
    assert config.labels.issue == "第 {number} 期"
    assert config.labels.unsubscribe == "退订"
    assert (config.sender.name, config.sender.email) == \
        ("AI 周刊", "editors@example.com")
    issue = sample(pub)
    assert 'title: "欢迎订阅AI 周刊"' in (issue / "issue.yaml").read_text()
    checked = newsletter("check", str(issue), config=pub / "newsletter.toml")
    assert checked.exit_code == 0, checked.output
    assert checked.stderr == "0 errors, 0 warnings\n"
    built = newsletter("build", str(issue), config=pub / "newsletter.toml")
    assert built.exit_code == 0, built.output
    text = (pub / "build" / issue.name / "email.txt").read_text()
    assert "AI 周刊 · 第 1 期 · 2026-03-02" in text
    assert "你好，%%name|读者朋友%%：" in text


def test_every_key_is_commented_and_the_commented_defaults_load(here):
    """Each key of the written newsletter.toml has a comment line above it, and removing
    the "# " of every "# key = value" line still makes a valid configuration."""
    assert newsletter("init", "pub").exit_code == 0
    text = (here / "pub" / "newsletter.toml").read_text()
    lines = text.split("\n")
    keys = 0
    for number, line in enumerate(lines):
        key = re.match(r"^(# )?([a-z_]+) = ", line)
        if key:
            keys += 1
            assert lines[number - 1].startswith("#"), f"line {number + 1}: {line}"
    assert keys > 50
    uncommented = re.sub(r"(?m)^# ([a-z_]+ = )", r"\1", text)
    (here / "pub" / "all.toml").write_text(uncommented)
    config = load_config(here / "pub" / "all.toml", {})
    assert config.max_lateness.total_seconds() == 6 * 3600
    assert config.sendgrid.batch_size == 1000
    assert tomllib.loads(uncommented)["smtp"]["ca_file"] == ""


def test_init_refuses_a_publication_and_keeps_other_files(here):
    assert newsletter("init", "pub").exit_code == 0
    again = newsletter("init", "pub")
    assert again.exit_code == 1
    assert again.stderr == ("pub/newsletter.toml: already exists: this folder holds a "
                            "publication; choose another folder\n")

    repo = here / "repo"  # an existing folder: its files are kept, .gitignore completed
    repo.mkdir()
    (repo / ".gitignore").write_text("node_modules/\nbuild/\n")
    (repo / "env.example").write_text("MINE=1\n")
    result = newsletter("init", "repo")
    assert result.exit_code == 0, result.output
    assert "  env.example (already there, kept)\n" in result.stdout
    assert (repo / "env.example").read_text() == "MINE=1\n"
    assert (repo / ".gitignore").read_text() == (
        "node_modules/\nbuild/\n# added by `newsletter init`\n.newsletter/\noutbox/\nsite/\n"
        "logs/\n*.env\n.env\n")

    bad = newsletter("init", "x", "--sender", "not an address")
    assert bad.exit_code == 1
    assert "--sender 'not an address' is not an email address" in bad.stderr
    assert newsletter("init", "y", "--language", "english!").exit_code == 1
    assert not (here / "x").exists() and not (here / "y").exists()


def test_templates_copy(here):
    assert newsletter("init", "pub").exit_code == 0
    toml = here / "pub" / "newsletter.toml"
    result = newsletter("templates", "copy", config=toml)
    assert result.exit_code == 0, result.output
    shipped = sorted(p.relative_to(package_templates()) for p in package_templates().rglob("*.j2"))
    copied = sorted(p.relative_to(here / "pub" / "templates")
                    for p in (here / "pub" / "templates").rglob("*"))
    assert [p for p in copied if p.suffix == ".j2"] == shipped
    assert "wrote pub/templates/email/issue.mjml.j2\n" in result.stdout

    # the project's own templates now win over the package's
    issue_template = here / "pub" / "templates" / "email" / "issue.mjml.j2"
    issue_template.write_text(issue_template.read_text().replace(
        "{{ issue.title }}</h1>", "{{ issue.title }} (our own)</h1>"))
    issue = sample(here / "pub")
    assert newsletter("build", str(issue), config=toml).exit_code == 0
    assert "(our own)" in (here / "pub" / "build" / issue.name / "email.html").read_text()

    refused = newsletter("templates", "copy", config=toml)
    assert refused.exit_code == 1
    assert ("pub/templates/email/issue.mjml.j2: exists; not overwritten (use --force to "
            "replace it with the package's)\n") in refused.stderr
    assert "(our own)" in issue_template.read_text()
    forced = newsletter("templates", "copy", "--force", config=toml)
    assert forced.exit_code == 0, forced.output
    assert "(our own)" not in issue_template.read_text()


def test_project_option(here):
    assert newsletter("init", "pub").exit_code == 0
    issue = sample(here / "pub")
    result = newsletter("--project", "pub", "build", issue.name)
    assert result.exit_code == 0, result.output
    assert (here / "pub" / "build" / issue.name / "email.html").is_file()

    missing = newsletter("--project", "nowhere", "status")
    assert missing.exit_code == 4
    assert missing.stderr == ("nowhere/newsletter.toml: not found; --project takes a "
                              "publication's folder (make one with `newsletter init DIR`)\n")
    both = newsletter("--project", "pub", "--config", "pub/newsletter.toml", "status")
    assert both.exit_code == 2


def test_project_is_found_from_a_subfolder_by_a_real_process(here):
    assert newsletter("init", "pub").exit_code == 0
    issue = sample(here / "pub")
    result = subprocess.run([sys.executable, "-m", "pipeline", "build", issue.name],
                            cwd=issue, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (here / "pub" / "build" / issue.name / "email.txt").is_file()
    other = subprocess.run([sys.executable, "-m", "pipeline", "--project", str(here / "pub"),
                            "status"], cwd="/", capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr
    assert other.stdout.startswith(f"{issue.name}  draft")


def test_version_names_the_distribution():
    from importlib.metadata import version

    result = subprocess.run([NEWSLETTER, "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout == f"newsletter, version {version('newsletter-as-code')}\n"


# --- cron ----------------------------------------------------------------------------


def test_running_command():
    assert running_command("/opt/venv/bin/newsletter", "/opt/venv/bin/python") == \
        ["/opt/venv/bin/newsletter"]
    assert running_command("/opt/venv/lib/python3.11/site-packages/pipeline/__main__.py",
                           "/opt/venv/bin/python") == ["/opt/venv/bin/python", "-m", "pipeline"]
    assert running_command(".venv/bin/newsletter", ".venv/bin/python") == \
        [os.path.abspath(".venv/bin/newsletter")]


def test_cron_line_quotes_paths_and_escapes_percent():
    line = cron_line(Path("/srv/my news/100%"), ["/opt/my venv/bin/newsletter"])
    assert line == ("*/5 * * * * cd '/srv/my news/100\\%' && mkdir -p logs && "
                    "'/opt/my venv/bin/newsletter' send --due >> "
                    "'/srv/my news/100\\%/logs/send.log' 2>&1")


@pytest.mark.parametrize("how", ["script", "module"])
def test_the_printed_cron_line_runs_as_printed(here, how):
    """`newsletter cron` from the console script and from python -m pipeline, in a
    project whose path has a space and a %; then the line's command as cron runs it: with
    /bin/sh, from another folder, with cron's bare environment."""
    pub = here / "my 100% news"
    assert newsletter("init", str(pub)).exit_code == 0
    command = [str(NEWSLETTER)] if how == "script" else [sys.executable, "-m", "pipeline"]
    printed = subprocess.run([*command, "cron"], cwd=pub / "issues", capture_output=True,
                             text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    line = printed.stdout.rstrip("\n")
    runs = shlex.join(command) if how == "script" else \
        f"{shlex.quote(sys.executable)} -m pipeline"
    assert line == (f"*/5 * * * * cd {shlex.quote(str(pub)).replace('%', chr(92) + '%')} && "
                    f"mkdir -p logs && {runs} send --due >> "
                    f"{shlex.quote(str(pub / 'logs/send.log')).replace('%', chr(92) + '%')} "
                    "2>&1")
    assert not (pub / "logs").exists()

    fields = line.split(" ", 5)
    assert fields[:5] == ["*/5", "*", "*", "*", "*"]
    as_cron_runs_it = fields[5].replace("\\%", "%")  # cron unescapes \% before /bin/sh
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(here), "SHELL": "/bin/sh", "LANG": "C.UTF-8"}
    assert printed.stderr == ("warning: NEWSLETTER_SECRET is not in .newsletter/env: an "
                              "unattended run (cron, systemd) will not have it and exits 4; "
                              "put it there (mode 600)\n")

    def run_as_cron():
        return subprocess.run(["/bin/sh", "-c", as_cron_runs_it], cwd="/", env=bare,
                              capture_output=True, text=True, timeout=60)

    ran = run_as_cron()  # as the warning said: no secret in cron's environment
    assert ran.returncode == 4, ran.stderr
    assert "NEWSLETTER_SECRET is not set" in (pub / "logs" / "send.log").read_text()
    secrets = pub / ".newsletter" / "env"
    secrets.parent.mkdir(exist_ok=True)
    secrets.write_text("NEWSLETTER_SECRET=cron-secret\n")
    secrets.chmod(0o600)
    again = subprocess.run([*command, "cron"], cwd=pub, capture_output=True, text=True,
                           timeout=60)
    assert again.stdout == printed.stdout and again.stderr == ""
    ran = run_as_cron()
    assert ran.returncode == 0, ran.stderr
    assert (pub / "logs" / "send.log").read_text().rstrip().endswith(" nothing due")
