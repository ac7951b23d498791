"""newsletter.toml: found, read, overridden from the environment, validated as a whole.

Every key can be overridden as ``NEWSLETTER_<KEY>`` (top level) or
``NEWSLETTER_<TABLE>_<KEY>``. Secrets come from the environment only.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError, Problems, did_you_mean, display_path

CONFIG_NAME = "newsletter.toml"
PROVIDERS = ("outbox", "smtp", "sendgrid")


@dataclass(frozen=True)
class Key:
    type: str  # str | int | bool | list | choice | duration | zone | url | color
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()


SCHEMA: dict[str, Any] = {
    "name": Key("str", required=True),
    "language": Key("str", "en"),
    "timezone": Key("zone", ""),  # empty: send_at must carry its own zone
    "archive_url": Key("url", ""),
    "asset_url": Key("url", ""),
    "unsubscribe_url": Key("url", ""),
    "provider": Key("choice", "outbox", choices=PROVIDERS),
    "database": Key("str", ".newsletter/newsletter.db"),
    "max_lateness": Key("duration", "6h"),
    "issues_dir": Key("str", "issues"),
    "build_dir": Key("str", "build"),
    "new_sections": Key("list", []),  # kinds `newsletter new` scaffolds; default: the first three
    "sender": {
        "name": Key("str", required=True),
        "email": Key("str", required=True),
        "reply_to": Key("str", ""),
        "address": Key("str", required=True),
        "unsubscribe_email": Key("str", ""),
        "list_id": Key("str", ""),
    },
    "colors": {
        "accent": Key("color", "#1a73e8"),
        "text": Key("color", "#1f2328"),
        "muted": Key("color", "#6e7781"),
        "background": Key("color", "#f4f5f7"),
        "card": Key("color", "#ffffff"),
    },
    "outbox": {"path": Key("str", "outbox")},
    "smtp": {
        "host": Key("str", "localhost"),
        "port": Key("int", 587),
        "security": Key("choice", "starttls", choices=("starttls", "ssl", "none")),
        "username": Key("str", ""),
        "timeout": Key("int", 30),
        "batch_size": Key("int", 100),
        "ca_file": Key("str", ""),  # a CA bundle for a server with a private certificate
    },
    "sendgrid": {
        "api_host": Key("url", "https://api.sendgrid.com"),
        "batch_size": Key("int", 1000),
        "categories": Key("list", []),
        "asm_group_id": Key("int", 0),
        "sandbox": Key("bool", False),
        "timeout": Key("int", 30),
    },
    "labels": {  # the fixed words of the templates, in the publication's language
        "issue": Key("str", "Issue {number}"),
        "greeting": Key("str", "Hi"),
        "reader": Key("str", "reader"),
        "editor": Key("str", "Editor"),
        "contributors": Key("str", "Contributors"),
        "view_in_browser": Key("str", "View in browser"),
        "unsubscribe": Key("str", "Unsubscribe"),
        "links": Key("str", "Links"),
        "why": Key("str", "You receive this because you subscribed to {name}."),
        "unsubscribe_prompt": Key("str", "Stop receiving {name} at {email}?"),
        "unsubscribe_button": Key("str", "Unsubscribe"),
        "unsubscribed": Key("str", "{email} is unsubscribed from {name}. You will not "
                                   "receive another issue."),
        "invalid_link": Key("str", "This unsubscribe link is not valid. Use the link in "
                                   "your latest email, or reply to it and ask us."),
    },
    "jekyll": {
        "layout": Key("str", "post"),
        "front_matter": Key("table", {}),
    },
}
SECTION_KEYS = {"label": Key("str", required=True), "template": Key("str", "")}


@dataclass(frozen=True)
class SectionKind:
    kind: str
    label: str
    template: str  # partial under templates/email/sections/ and templates/text/sections/


@dataclass(frozen=True)
class Secrets:
    """Environment-only values. Their repr never shows them."""

    sendgrid_api_key: str = field(default="", repr=False)
    smtp_password: str = field(default="", repr=False)
    newsletter_secret: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Secrets:
        return cls(
            env.get("SENDGRID_API_KEY", ""),
            env.get("SMTP_PASSWORD", ""),
            env.get("NEWSLETTER_SECRET", ""),
        )

    def values(self) -> list[str]:
        return [v for v in (self.sendgrid_api_key, self.smtp_password, self.newsletter_secret) if v]

    def get(self, name: str) -> str:
        """A secret by its environment variable's name."""
        return getattr(self, name.lower())


@dataclass(frozen=True)
class Config:
    path: Path  # the newsletter.toml file
    values: dict[str, Any]  # validated, with defaults; tables are dicts
    sections: dict[str, SectionKind]
    secrets: Secrets

    @property
    def root(self) -> Path:
        return self.path.parent

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the folder of newsletter.toml."""
        return (self.root / relative).resolve()

    @property
    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.values["timezone"]) if self.values["timezone"] else None

    def label(self, key: str) -> str:
        return self.values["labels"][key]

    @property
    def issues_dir(self) -> Path:
        return self.resolve(self.values["issues_dir"])

    @property
    def build_dir(self) -> Path:
        return self.resolve(self.values["build_dir"])

    @property
    def database(self) -> Path:
        return self.resolve(self.values["database"])

    @property
    def list_id(self) -> str:
        sender = self.values["sender"]
        if sender["list_id"]:
            return sender["list_id"]
        local, _, domain = sender["email"].partition("@")
        return f"{local}.{domain or 'localhost'}"

    def require(self, secret: str, purpose: str) -> str:
        """A secret a command cannot do without: its value, or one clear configuration
        error (exit status 4) that says how to provide it."""
        value = self.secrets.get(secret)
        if not value:
            raise ConfigError.one(self.path.name, f"{secret} is not set; export it {purpose}")
        return value

    @property
    def unsubscribe_email(self) -> str:
        sender = self.values["sender"]
        return sender["unsubscribe_email"] or sender["reply_to"] or sender["email"]


def find_config(start: Path) -> Path:
    for folder in [start, *start.parents]:
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError.one(
        CONFIG_NAME,
        f"not found in {start} or any parent folder; run the command inside your "
        f"newsletter's folder or pass --config PATH",
    )


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> Config:
    env = os.environ if env is None else env
    path = Path(path) if path else find_config((cwd or Path.cwd()).resolve())
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.one(shown, "file not found; check the --config path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError.one(shown, f"not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError.one(shown, f"TOML syntax error: {exc}; fix the syntax", line) from None

    lines = _key_lines(text)
    problems = Problems()
    values = _validate_table(raw, SCHEMA, (), env, lines, shown, problems)
    sections = _validate_sections(raw.get("sections", {}), lines, shown, problems)
    problems.raise_if_any(ConfigError)
    return Config(path.resolve(), values, sections, Secrets.from_env(env))


def _validate_table(raw: dict, schema: dict, table: tuple[str, ...], env: Mapping[str, str],
                    lines: dict, shown: str, problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    where = f"[{'.'.join(table)}]" if table else "the top level"
    for key in raw:
        if key not in schema and not (not table and key == "sections"):
            known = list(schema) + ([] if table else ["sections"])
            problems.add(shown, lines.get((*table, key)),
                         f"unknown key '{key}' in {where}{did_you_mean(key, known)}")
    for key, spec in schema.items():
        if isinstance(spec, dict):
            sub = raw.get(key, {})
            if not isinstance(sub, dict):
                problems.add(shown, lines.get((key,)), f"'{key}' must be a table [{key}]")
                sub = {}
            out[key] = _validate_table(sub, spec, (*table, key), env, lines, shown, problems)
            continue
        name = "_".join(("NEWSLETTER", *table, key)).upper()
        dotted = ".".join((*table, key))
        if name in env:
            value, source, line = env[name], f"environment variable {name}", None
            value = _from_env_string(value, spec)
        elif key in raw:
            value, source, line = raw[key], f"'{dotted}'", lines.get((*table, key))
        elif spec.required:
            problems.add(shown, lines.get(table), f"missing required key '{dotted}'; add it to "
                                                  f"{where}")
            continue
        else:
            out[key] = spec.default
            continue
        message = _check_value(value, spec)
        if message:
            problems.add(shown, line, f"{source} {message}")
        else:
            out[key] = _convert(value, spec)
    return out


def _validate_sections(raw: Any, lines: dict, shown: str, problems: Problems
                       ) -> dict[str, SectionKind]:
    if not isinstance(raw, dict) or not raw:
        problems.add(shown, lines.get(("sections",)),
                     "no section kinds: add at least one table like [sections.news] "
                     "with label = \"...\"")
        return {}
    kinds = {}
    for kind, table in raw.items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", kind):
            problems.add(shown, lines.get(("sections", kind)),
                         f"section kind '{kind}' must be lower-case letters, digits, - or _")
            continue
        if not isinstance(table, dict):
            problems.add(shown, lines.get(("sections", kind)),
                         f"'sections.{kind}' must be a table with label = \"...\"")
            continue
        values = _validate_table(table, SECTION_KEYS, ("sections", kind), {}, lines, shown,
                                 problems)
        if "label" in values:
            kinds[kind] = SectionKind(kind, values["label"], values["template"] or kind)
    return kinds


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def parse_duration(text: str) -> timedelta | None:
    match = _DURATION.match(text)
    if not match:
        return None
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


def _check_value(value: Any, spec: Key) -> str | None:
    kind = spec.type
    if kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else \
            f"must be a whole number, not {value!r}"
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, not {value!r}"
    if kind == "list":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else f"must be a list of strings, not {value!r}"
    if kind == "table":
        return None if isinstance(value, dict) else f"must be a table, not {value!r}"
    if not isinstance(value, str):
        return f"must be a string, not {value!r}"
    if kind == "choice" and value not in spec.choices:
        return f"is '{value}'; use one of: {', '.join(spec.choices)}{did_you_mean(value, spec.choices)}"
    if kind == "zone" and value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return f"is '{value}', not a known time zone; use a name like 'Asia/Shanghai' or 'UTC'"
    if kind == "duration" and parse_duration(value) is None:
        return f"is '{value}', not a duration; write a number and a unit, like '6h' or '30m'"
    if kind == "url" and value and not re.match(r"^https?://[^\s/]+", value):
        return f"is '{value}', not an http(s) URL; write it like 'https://news.example.com/x'"
    if kind == "color" and not re.fullmatch(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?", value):
        return f"is '{value}', not a colour; write it like '#1a73e8'"
    return None


def _convert(value: Any, spec: Key) -> Any:
    if spec.type == "duration":
        return parse_duration(value)
    if spec.type == "url":
        return value.rstrip("/")
    return value


def _from_env_string(value: str, spec: Key) -> Any:
    if spec.type == "int":
        try:
            return int(value)
        except ValueError:
            return value
    if spec.type == "bool":
        lowered = value.strip().lower()
        return {"1": True, "true": True, "yes": True, "0": False, "false": False,
                "no": False, "": False}.get(lowered, value)
    if spec.type == "list":
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line numbers of tables and keys, for messages (tomllib gives none)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            table = tuple(part.strip().strip('"') for part in header[1].split("."))
            lines.setdefault(table, number)
            continue
        key = re.match(r"^\s*([A-Za-z0-9_-]+|\"[^\"]+\")\s*=", line)
        if key:
            lines.setdefault((*table, key[1].strip('"')), number)
    return lines


def _toml_error_line(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match[1]) if match else None
