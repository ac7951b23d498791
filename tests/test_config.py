"""newsletter.toml: validated as a whole, overridable from the environment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError, ExitStatus


def test_sample_config_loads_with_defaults(project):
    config = load_config(project / "newsletter.toml", env={})
    assert config["provider"] == "outbox"
    assert config["max_lateness"] == timedelta(hours=6)
    assert config["smtp"]["port"] == 587
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
    assert config["provider"] == "sendgrid"
    assert str(config.database) == "/srv/nl.db"
    assert config["outbox"]["path"] == "/tmp/out"
    assert config["smtp"]["port"] == 2525
    assert config["sendgrid"]["api_host"] == "http://127.0.0.1:8025"
    assert config["sendgrid"]["sandbox"] is True
    assert config["sendgrid"]["categories"] == ["weekly", "ai"]


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
        "newsletter.toml: environment variable NEWSLETTER_SMTP_SECURITY is 'tls'; use one "
        "of: starttls, ssl, none",
        "newsletter.toml:9: 'timezone' is 'Mars/Olympus', not a known time zone; use a name "
        "like 'Asia/Shanghai' or 'UTC'",
        "newsletter.toml:13: unknown key 'provder' in the top level; did you mean 'provider'?",
        "newsletter.toml:15: 'max_lateness' is 'soon', not a duration; write a number and a "
        "unit, like '6h' or '30m'",
        f"newsletter.toml:{port}: 'smtp.port' must be a whole number, not 'five'",
    ]
    assert caught.value.exit_code == ExitStatus.CONFIG


def test_missing_required_keys_and_unknown_tables(project):
    toml = project / "newsletter.toml"
    toml.write_text('name = "X"\n[sender]\nemail = "a@b.c"\n[sections.news]\nlabel = "N"\n'
                    '[smpt]\nhost = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(toml, env={})
    assert caught.value.format_message().splitlines() == [
        "newsletter.toml:2: missing required key 'sender.name'; add it to [sender]",
        "newsletter.toml:2: missing required key 'sender.address'; add it to [sender]",
        "newsletter.toml:6: unknown key 'smpt' in the top level; did you mean 'smtp'?",
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
