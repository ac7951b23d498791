"""newsletter.toml: validated as a whole, overridable from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError, ExitStatus


def test_sample_config_loads_with_defaults(project):
    config = load_config(project / "newsletter.toml", env={})
    assert config.provider == "outbox"
    assert config.max_lateness == timedelta(hours=6)
    assert config.smtp.port == 587
    assert config.sender.email == "newsletter@example.com"
    assert config.labels.issue == "第 {number} 期"
    assert config.sections["tips"].label == "聪明生产力"
    assert config.sections["day"].template == "day"
    assert config.database == project / ".newsletter" / "newsletter.db"
    assert config.list_id == "newsletter.example.com"


def test_environment_overrides_any_key(project):
    config = load_config(project / "newsletter.toml", env={
        "NEWSLETTER_PROVIDER": "sendgrid",
        "NEWSLETTER_DATABASE": "/srv/nl.db",
        "NEWSLETTER_OUTBOX_PATH": "/tmp/out",
        "NEWSLETTER_SMTP_PORT": "2525",
        "NEWSLETTER_SENDGRID_API_HOST": "http://127.0.0.1:8025",
        "NEWSLETTER_SENDGRID_SANDBOX": "true",
        "NEWSLETTER_SENDGRID_CATEGORIES": "weekly, ai",
    })
    assert config.provider == "sendgrid"
    assert str(config.database) == "/srv/nl.db"
    assert config.outbox.path == Path("/tmp/out")
    assert config.smtp.port == 2525
    assert config.sendgrid.api_host == "http://127.0.0.1:8025"
    assert config.sendgrid.sandbox is True
    assert config.sendgrid.categories == ["weekly", "ai"]


def test_secrets_come_from_the_environment_and_never_show(project):
    config = load_config(project / "newsletter.toml",
                         env={"SENDGRID_API_KEY": "SG.secret", "NEWSLETTER_SECRET": "s3"})
    assert config.secrets.sendgrid_api_key == "SG.secret"
    assert "SG.secret" not in repr(config) and "s3" not in repr(config.secrets)


def test_every_config_error_at_once_with_key_names(project):
    toml = project / "newsletter.toml"
    text = toml.read_text()
    text = text.replace('provider = "outbox"', 'provder = "outbox"')
    text = text.replace("port = 587", 'port = "five"')
    text = text.replace('max_lateness = "6h"', 'max_lateness = "soon"')
    text = text.replace('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"')
    toml.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(toml, env={"NEWSLETTER_SMTP_SECURITY": "tls"})
    lines = caught.value.format_message().splitlines()
    port = text.splitlines().index('port = "five"') + 1
    assert lines == [
        "newsletter.toml: smtp.security: 'tls' is not one of: starttls, ssl, none (from "
        "environment variable NEWSLETTER_SMTP_SECURITY)",
        "newsletter.toml:9: timezone: 'Mars/Olympus' is not a known time zone; use a name "
        "like 'Asia/Shanghai' or 'UTC'",
        "newsletter.toml:13: provder: unknown key in the top level; did you mean 'provider'?",
        "newsletter.toml:15: max_lateness: 'soon' is not a duration; write a number and a "
        "unit, like '6h' or '30m'",
        f"newsletter.toml:{port}: smtp.port: must be a whole number, not 'five'",
    ]
    assert caught.value.exit_code == ExitStatus.CONFIG


def test_missing_required_keys_and_unknown_tables(project):
    toml = project / "newsletter.toml"
    toml.write_text('name = "X"\n[sender]\nemail = "a@b.c"\n[sections.news]\nlabel = "N"\n'
                    '[smpt]\nhost = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(toml, env={})
    assert caught.value.format_message().splitlines() == [
        "newsletter.toml:2: sender.name: missing; add it to [sender]",
        "newsletter.toml:2: sender.address: missing; add it to [sender]",
        "newsletter.toml:6: smpt: unknown key in the top level; did you mean 'smtp'?",
    ]


def test_config_is_found_in_a_parent_folder(project, run):
    (project / "deeper" / "still").mkdir(parents=True)
    config = load_config(None, env={}, cwd=project / "deeper" / "still")
    assert config.path == project / "newsletter.toml"


def test_no_config_anywhere(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipeline.cli import App, cli

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["build", "x"], obj=App(env={}))
    assert result.exit_code == ExitStatus.CONFIG
    assert result.stderr == (f"newsletter.toml: not found in {tmp_path} or any parent folder; "
                             "run the command inside your newsletter's folder or pass "
                             "--config PATH\n")


def test_toml_syntax_error(project):
    toml = project / "newsletter.toml"
    toml.write_text('name = "X\n')
    with pytest.raises(ConfigError) as caught:
        load_config(toml, env={})
    assert caught.value.format_message().startswith("newsletter.toml:1: TOML syntax error: ")


def _line(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


def test_bad_values_are_configuration_errors_not_later_tracebacks(project):
    """A line break in a header field, a batch size out of range, an address that is not
    one, a provider that does not exist, a label with a {name} nobody fills: all reported
    at once, with their lines."""
    toml = project / "newsletter.toml"
    text = toml.read_text()
    text = text.replace('name = "AI生产力快报"\nemail', 'name = "AI\\nBcc: x@evil.example"\nemail')
    text = text.replace('reply_to = "editors@example.com"', 'reply_to = "editors at example"')
    text = text.replace('issue = "第 {number} 期"', 'issue = "第 {numbr} 期"')
    text = text.replace('categories = ["newsletter"]', 'categories = ["newsletter"]\nbatch_size = 0')
    text = text.replace('port = 587', 'port = -1')
    toml.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(toml, env={"NEWSLETTER_PROVIDER": "mailchump",
                               "NEWSLETTER_SMTP_BATCH_SIZE": "-5"})
    assert caught.value.exit_code == ExitStatus.CONFIG
    sender_line = text.splitlines().index('name = "AI\\nBcc: x@evil.example"') + 1
    reply_line, label_line, port_line, batch_line = (
        _line(text, needle) for needle in ('reply_to = "editors at example"',
                                           'issue = "第 {numbr} 期"', "port = -1",
                                           "batch_size = 0"))
    assert caught.value.format_message().splitlines() == [
        "newsletter.toml: provider: 'mailchump' is not one of: outbox, smtp, sendgrid (from "
        "environment variable NEWSLETTER_PROVIDER)",
        "newsletter.toml: smtp.batch_size: is -5; use a number from 1 to 10000 (from "
        "environment variable NEWSLETTER_SMTP_BATCH_SIZE)",
        f"newsletter.toml:{sender_line}: sender.name: contains a line break or another "
        "control character, which would break the email's headers; write it on one line",
        f"newsletter.toml:{reply_line}: sender.reply_to: 'editors at example' is not an "
        "email address (an email address must have an @-sign); write it like "
        "'news@example.com'",
        f"newsletter.toml:{label_line}: labels.issue: '第 {{numbr}} 期' uses {{numbr}}, which "
        "is not filled here; use {number}",
        f"newsletter.toml:{port_line}: smtp.port: is -1; use a number from 1 to 65535",
        f"newsletter.toml:{batch_line}: sendgrid.batch_size: is 0; use a number from 1 to 1000",
    ]


def test_database_is_a_file_or_a_postgresql_url_never_another_url(project):
    url = "postgresql://nl:s3cret@db.example:5433/news?sslmode=require"
    config = load_config(project / "newsletter.toml", env={"NEWSLETTER_DATABASE": url})
    assert config.database == url  # kept as written: pipeline.store connects to it
    assert load_config(project / "newsletter.toml", env={
        "NEWSLETTER_DATABASE": "postgres://db.example/news"}).database == \
        "postgres://db.example/news"
    with pytest.raises(ConfigError) as caught:
        load_config(project / "newsletter.toml",
                    env={"NEWSLETTER_DATABASE": "mysql://nl:s3cret@db.example/news"})
    assert caught.value.format_message() == (
        "newsletter.toml: database: 'mysql://nl:***@db.example/news' is not a database "
        "newsletter can use; give a SQLite file path (relative to newsletter.toml, or "
        "absolute) or a postgresql:// URL (from environment variable NEWSLETTER_DATABASE)")
    with pytest.raises(ConfigError) as caught:
        load_config(project / "newsletter.toml",
                    env={"NEWSLETTER_OUTBOX_PATH": "s3://bucket/outbox"})
    assert caught.value.format_message() == (
        "newsletter.toml: outbox.path: 's3://bucket/outbox' is a URL; give a path here "
        "(relative to newsletter.toml, or an absolute one) (from environment variable "
        "NEWSLETTER_OUTBOX_PATH)")


def test_secrets_from_the_private_env_file_and_the_environment_wins(project):
    env_file = project / ".newsletter" / "env"
    env_file.parent.mkdir()
    env_file.write_text("# for cron\nNEWSLETTER_SECRET=from-file\nexport SMTP_PASSWORD='pw'\n"
                        "NEWSLETTER_PROVIDER=smtp\n")
    env_file.chmod(0o600)
    config = load_config(project / "newsletter.toml", env={})
    assert config.secrets.newsletter_secret == "from-file"
    assert config.secrets.smtp_password == "pw"
    assert config.provider == "smtp"
    config = load_config(project / "newsletter.toml", env={"NEWSLETTER_SECRET": "from-env"})
    assert config.secrets.newsletter_secret == "from-env"


def test_an_env_file_others_can_read_is_refused(project):
    env_file = project / ".newsletter" / "env"
    env_file.parent.mkdir()
    env_file.write_text("NEWSLETTER_SECRET=s\nPATH=/tmp\n")
    env_file.chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        load_config(project / "newsletter.toml", env={})
    assert caught.value.format_message() == (
        ".newsletter/env: readable by others (mode 644); it holds secrets: chmod 600 "
        ".newsletter/env")
    env_file.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        load_config(project / "newsletter.toml", env={})
    assert caught.value.format_message() == (
        ".newsletter/env:2: 'PATH' is not a secret or a NEWSLETTER_* setting; write KEY=value "
        "with KEY one of NEWSLETTER_SECRET, NEWSLETTER_SECRET_PREVIOUS, SENDGRID_API_KEY, "
        "SMTP_PASSWORD or NEWSLETTER_<KEY>")


@pytest.mark.parametrize("args, secret", [
    (["send", "2023-12-07-ai-productivity-09", "--yes"], "NEWSLETTER_SECRET"),
    (["send", "--due"], "NEWSLETTER_SECRET"),
    (["serve", "--port", "0"], "NEWSLETTER_SECRET"),
    (["audience", "sync"], "SENDGRID_API_KEY"),
])
def test_each_command_says_which_secret_it_needs(run, args, secret):
    run.env.pop("NEWSLETTER_SECRET")
    result = run(*args)
    assert result.exit_code == ExitStatus.CONFIG
    what = {"NEWSLETTER_SECRET": "the long random string that signs unsubscribe links",
            "SENDGRID_API_KEY": "the SendGrid API key, with mail send permission"}[secret]
    assert result.stderr == (f"newsletter.toml: {secret} is not set ({what}); export it, or "
                             "put it in .newsletter/env (mode 600)\n")


def test_dark_colours_are_a_nested_table_with_defaults(project):
    """[colors.dark] holds the dark-mode counterparts; a key it leaves out keeps its
    default, and each is overridable as NEWSLETTER_COLORS_DARK_<KEY>."""
    toml = project / "newsletter.toml"
    text = toml.read_text()
    toml.write_text(text.replace('[colors.dark]\naccent = "#2dd4bf"\n', '[colors.dark]\n'))
    config = load_config(toml, env={"NEWSLETTER_COLORS_DARK_TEXT": "#ffffff"})
    assert (config.colors.muted, config.colors.code, config.colors.divider) == \
        ("#59636e", "#eef0f3", "#e3e5e8")
    dark = config.colors.dark
    assert (dark.accent, dark.text, dark.muted, dark.background, dark.card, dark.code,
            dark.divider) == ("#8ab4f8", "#ffffff", "#9aa4af", "#121212", "#1e1f22",
                              "#2a2c30", "#3a3d42")
    toml.write_text('name = "X"\n[sender]\nname = "X"\nemail = "a@example.com"\n'
                    'address = "1 Road"\n[sections.news]\nlabel = "N"\n')
    assert load_config(toml, env={}).colors.dark.background == "#121212"  # no [colors]


def test_a_wrong_dark_colour_says_its_key_and_line(project):
    toml = project / "newsletter.toml"
    text = toml.read_text().replace('[colors.dark]\naccent = "#2dd4bf"',
                                    '[colors.dark]\naccent = "teal"\nshade = "#000"')
    toml.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(toml, env={})
    accent, shade = _line(text, 'accent = "teal"'), _line(text, 'shade = "#000"')
    assert caught.value.format_message().splitlines() == [
        f"newsletter.toml:{accent}: colors.dark.accent: 'teal' is not a colour; write it "
        "like '#1a73e8'",
        f"newsletter.toml:{shade}: colors.dark.shade: unknown key in [colors.dark]",
    ]
    toml.write_text('name = "X"\n[sender]\nname = "X"\nemail = "a@example.com"\n'
                    'address = "1 Road"\n[sections.news]\nlabel = "N"\n'
                    '[colors]\ndark = "night"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(toml, env={})
    assert caught.value.format_message() == \
        "newsletter.toml:9: colors.dark: must be a table [colors.dark]"
