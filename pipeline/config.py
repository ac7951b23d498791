"""newsletter.toml as one typed object: found, read, overridden from the environment,
validated once, every problem reported at once as ``newsletter.toml:LINE: key: what is
wrong``.

Each table is a frozen dataclass whose fields say what they hold (``key(kind, ...)``);
the loader walks those fields, so the schema, the defaults and the types are written
once. Every key can be overridden as ``NEWSLETTER_<KEY>`` (top level) or
``NEWSLETTER_<TABLE>_<KEY>``. Secrets come from the environment, or from the project's
``.newsletter/env`` file (``KEY=value`` lines, refused when others can read it); the
environment wins over the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError, Problems, did_you_mean, display_path

CONFIG_NAME = "newsletter.toml"
ENV_FILE = ".newsletter/env"
PROVIDERS = ("outbox", "smtp", "sendgrid")
SECRETS = {  # environment variable -> what it is
    "NEWSLETTER_SECRET": "the long random string that signs unsubscribe links",
    "NEWSLETTER_SECRET_PREVIOUS": "secrets that signed unsubscribe links before "
                                  "NEWSLETTER_SECRET, comma-separated: their links still work",
    "SENDGRID_API_KEY": "the SendGrid API key, with mail send permission",
    "SMTP_PASSWORD": "the password of smtp.username",
}


MAX_TOPICS = 30  # [topics]: the preference page lists them all
# Tags: a reader's (segments) and the topics readers may choose ([topics]).
MAX_TAG = 32  # characters
_TAG = re.compile(r"[^\W_][\w-]*")  # a letter or digit (any script), then those, _ and -
TAG_RULE = (f"a tag is 1 to {MAX_TAG} letters, digits, '-' or '_', starting with a letter "
            "or digit, like ai or deep-learning")


def tag_problem(tag: str) -> str | None:
    """What is wrong with a tag as written, or None."""
    if not tag:
        return f"an empty tag; {TAG_RULE}"
    if len(tag) > MAX_TAG or not _TAG.fullmatch(tag):
        shown = tag if len(tag) <= 40 else tag[:39] + "…"
        return f"'{shown}' is not a tag; {TAG_RULE}"
    return None


def normal_tag(tag: str) -> str:
    """A tag as stored and compared: trimmed, lower-cased."""
    return tag.strip().lower()


def key(kind: str = "str", default: Any = dataclasses.MISSING, *, choices: tuple[str, ...] = (),
        low: int | None = None, high: int | None = None, fields: tuple[str, ...] = ()) -> Any:
    """A configuration key: its kind (how it is checked and converted) and its default;
    no default means required. ``fields`` are the {names} a format string may use."""
    metadata = {"kind": kind, "choices": choices, "low": low, "high": high, "fields": fields}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def table(cls: type) -> Any:
    """A [table] of keys, itself a dataclass."""
    return field(metadata={"kind": "table", "table": cls})


@dataclass(frozen=True, kw_only=True)
class Sender:
    name: str = key("line")
    email: str = key("email")
    reply_to: str = key("email", "")
    address: str = key("str")  # the postal address in every footer
    unsubscribe_email: str = key("email", "")
    list_id: str = key("line", "")


@dataclass(frozen=True, kw_only=True)
class DarkColors:
    """[colors.dark]: what readers in dark mode see instead (prefers-color-scheme: dark,
    and the forced dark of Outlook.com and the Outlook apps)."""

    accent: str = key("color", "#8ab4f8")
    text: str = key("color", "#e6e8eb")
    muted: str = key("color", "#9aa4af")
    background: str = key("color", "#121212")
    card: str = key("color", "#1e1f22")
    code: str = key("color", "#2a2c30")
    divider: str = key("color", "#3a3d42")


@dataclass(frozen=True, kw_only=True)
class Colors:
    """[colors]: the email's colours. The defaults keep every text at WCAG AA contrast
    (4.5:1) wherever the templates put it, in both schemes; `check` warns when a
    publication's own do not."""

    accent: str = key("color", "#1967d2")  # links, section headings, the tips label
    text: str = key("color", "#1f2328")
    muted: str = key("color", "#59636e")  # dates, small print: on card and background
    background: str = key("color", "#f4f5f7")
    card: str = key("color", "#ffffff")
    code: str = key("color", "#eef0f3")  # behind code
    divider: str = key("color", "#e3e5e8")
    dark: DarkColors = table(DarkColors)


@dataclass(frozen=True, kw_only=True)
class Outbox:
    path: Path = key("path", "outbox")


@dataclass(frozen=True, kw_only=True)
class SMTP:
    host: str = key("line", "localhost")
    port: int = key("int", 587, low=1, high=65535)
    security: str = key("choice", "starttls", choices=("starttls", "ssl", "none"))
    username: str = key("line", "")  # the password comes from SMTP_PASSWORD
    timeout: int = key("int", 30, low=1, high=600)
    batch_size: int = key("int", 10, low=1, high=10000)
    ca_file: str = key("str", "")  # a CA bundle for a server with a private certificate


@dataclass(frozen=True, kw_only=True)
class SendGrid:
    api_host: str = key("url", "https://api.sendgrid.com")  # the key: SENDGRID_API_KEY
    batch_size: int = key("int", 1000, low=1, high=1000)  # SendGrid takes 1000 at most
    categories: list[str] = key("list", [])
    asm_group_id: int = key("int", 0, low=0)
    sandbox: bool = key("bool", False)
    timeout: int = key("int", 30, low=1, high=600)
    # verifies the signed Event Webhook (POST /webhooks/sendgrid): the "Verification Key"
    # of Mail Settings → Event Webhook, base64 as SendGrid shows it; empty: webhook off
    webhook_public_key: str = key("public_key", "")
    webhook_max_age: int = key("int", 600, low=30, high=86400)  # seconds a signature is good


@dataclass(frozen=True, kw_only=True)
class Delivery:
    # requests (SendGrid) or connections (SMTP) in flight; 0: the provider's own default
    concurrency: int = key("int", 0, low=0, high=32)
    max_per_second: int = key("int", 0, low=0)  # messages; 0: no limit
    max_per_day: int = key("int", 0, low=0)  # in any 24 hours, across runs; 0: no limit
    fallback: str = key("choice", "", choices=("", *PROVIDERS))  # when the first is down


@dataclass(frozen=True, kw_only=True)
class Signup:
    """[signup]: `POST /subscribe` of `serve`, double opt-in. The limits are counted in
    the memory of the serving process, over the last ``window``."""

    url: str = key("url", "")  # where serve answers POST /subscribe; default: beside
    #                            unsubscribe_url (…/subscribe); the confirmation link is …/confirm
    expiry: timedelta = key("duration", "7d")  # a confirmation link works this long
    per_client: int = key("int", 10, low=0)  # requests from one client address; 0: no limit
    per_email: int = key("int", 3, low=0)  # confirmation mails to one address; 0: no limit
    window: timedelta = key("duration", "1h")


@dataclass(frozen=True, kw_only=True)
class Check:
    """What `newsletter check` looks for beyond the issue itself."""

    repeat_window: int = key("int", 3, low=0, high=100)  # issues back; 0: no repeat check
    online_before_send: bool = key("bool", False)  # images reachable at asset_url first


@dataclass(frozen=True, kw_only=True)
class Review:
    """What was reviewed is what is sent."""

    require_clean: bool = key("bool", True)  # refuse an issue with uncommitted changes
    base_branch: str = key("line", "main")  # `review` compares with its merge base


@dataclass(frozen=True, kw_only=True)
class Labels:
    """The fixed words of the templates, in the publication's language."""

    issue: str = key("format", "Issue {number}", fields=("number",))
    greeting: str = key("format", "Hi {name},", fields=("name",))
    reader: str = key("str", "there")  # the greeting's {name} for a reader without one
    editor: str = key("str", "Editor")
    contributors: str = key("str", "Contributors")
    view_in_browser: str = key("str", "View in browser")
    unsubscribe: str = key("str", "Unsubscribe")
    links: str = key("str", "Links")
    sent_version: str = key("str", "Sent version")  # the archive page: hash and commit
    why: str = key("format", "You receive this because you subscribed to {name}.",
                   fields=("name",))
    unsubscribe_prompt: str = key("format", "Stop receiving {name} at {email}?",
                                  fields=("name", "email"))
    unsubscribe_button: str = key("str", "Unsubscribe")
    unsubscribed: str = key("format", "{email} is unsubscribed from {name}. You will not "
                                      "receive another issue.", fields=("name", "email"))
    invalid_link: str = key("str", "This unsubscribe link is not valid. Use the link in your "
                                   "latest email, or reply to it and ask us.")
    # signup: the archive's form, the confirmation email and the pages of `serve`
    subscribe_prompt: str = key("format", "Get {name} by email:", fields=("name",))
    email_field: str = key("str", "Your email address")
    subscribe_button: str = key("str", "Subscribe")
    check_inbox: str = key("format", "Almost done: if {email} can receive {name}, a message "
                                     "with a confirmation link is on its way. Open it to "
                                     "confirm.", fields=("name", "email"))
    not_an_address: str = key("str", "That is not an email address; check it and try again.")
    too_many: str = key("str", "Too many requests; please try again later.")
    confirm_subject: str = key("format", "Confirm your subscription to {name}",
                               fields=("name",))
    confirm_intro: str = key("format", "Someone, hopefully you, asked for {name} to be sent "
                                       "to {email}. Confirm with the button below; the link "
                                       "works for {days} days.",
                               fields=("name", "email", "days"))
    confirm_button: str = key("str", "Confirm my subscription")
    confirm_ignore: str = key("str", "If you did not ask for this, ignore this email: "
                                     "nothing is sent to you without your confirmation.")
    confirm_prompt: str = key("format", "Send {name} to {email}?", fields=("name", "email"))
    confirmed: str = key("format", "{email} is subscribed to {name}. Welcome!",
                         fields=("name", "email"))
    invalid_confirmation: str = key("str", "This confirmation link is not valid or has "
                                           "expired. Subscribe again to get a new one.")
    resubscribe_button: str = key("str", "Subscribe again")
    # the preference page ([topics]), and the footer's link to it
    preferences: str = key("str", "Preferences")
    preferences_prompt: str = key("format", "Choose the topics {name} sends to {email}:",
                                  fields=("name", "email"))
    preferences_button: str = key("str", "Save")
    preferences_saved: str = key("format", "Saved: {email} gets the topics chosen below.",
                                 fields=("name", "email"))
    invalid_preferences_link: str = key("str", "This link is not valid. Use the preferences "
                                               "link in your latest email, or reply to it "
                                               "and ask us.")


@dataclass(frozen=True, kw_only=True)
class Links:
    """[links]: UTM tags added to the email's external links at render time ({id},
    {number} and {lang} are the issue's); an empty value adds no tag."""

    tag: bool = key("bool", True)  # false: no tags at all (an issue's tag_links: false too)
    utm_source: str = key("format", "", fields=("id", "number", "lang"))
    utm_medium: str = key("format", "email", fields=("id", "number", "lang"))
    utm_campaign: str = key("format", "{id}", fields=("id", "number", "lang"))


@dataclass(frozen=True, kw_only=True)
class Jekyll:
    layout: str = key("line", "post")
    # more keys for every exported post (categories, author, ...); not those export sets
    front_matter: dict[str, Any] = key("front_matter", {})


# The keys export writes itself, which [jekyll] front_matter may not replace: why not.
JEKYLL_OWN_KEYS = {
    "layout": "set it with [jekyll] layout = \"...\"",
    "title": "each post's comes from its issue.yaml",
    "date": "each post's comes from its issue.yaml",
    "tags": "each post's come from its issue.yaml",
    "excerpt": "each post's is its issue's preheader",
    "render_with_liquid": "the post's image URLs are Liquid (relative_url)",
}


@dataclass(frozen=True, kw_only=True)
class SectionKind:
    kind: str = ""
    label: str = key("str")
    template: str = key("line", "")  # partial under templates/email/sections/; default: kind


@dataclass(frozen=True)
class Secrets:
    """Environment-only values (or the 0600 env file). Their repr never shows them."""

    newsletter_secret: str = field(default="", repr=False)  # signs unsubscribe links
    newsletter_secret_previous: str = field(default="", repr=False)  # "old1,old2": verify only
    sendgrid_api_key: str = field(default="", repr=False)
    smtp_password: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Secrets:
        return cls(**{name.lower(): env.get(name, "") for name in SECRETS})

    def values(self) -> list[str]:
        return [v for v in (self.sendgrid_api_key, self.smtp_password, self.newsletter_secret,
                            *self.previous()) if v]

    def previous(self) -> tuple[str, ...]:
        """NEWSLETTER_SECRET_PREVIOUS: each secret of the comma-separated list."""
        return tuple(s.strip() for s in self.newsletter_secret_previous.split(",") if s.strip())

    def get(self, name: str) -> str:
        """A secret by its environment variable's name."""
        return getattr(self, name.lower())


@dataclass(frozen=True, kw_only=True)
class Config:
    path: Path  # the newsletter.toml file
    name: str = key("line")
    language: str = key("language", "en")
    timezone: str = key("zone", "")  # empty: send_at must carry its own zone
    archive_url: str = key("url", "")
    asset_url: str = key("url", "")
    unsubscribe_url: str = key("url", "")
    # the preference page of `serve` ([topics]); empty: beside unsubscribe_url (…/preferences)
    preferences_url: str = key("url", "")
    provider: str = key("choice", "outbox", choices=PROVIDERS)
    # a SQLite file (a Path) or a PostgreSQL URL (a str): pipeline.store opens either
    database: Path | str = key("database", ".newsletter/newsletter.db")
    database_wait: timedelta = key("duration", "10m")  # a send's patience with a locked database
    max_lateness: timedelta = key("duration", "6h")
    issues_dir: Path = key("path", "issues")
    build_dir: Path = key("path", "build")
    new_sections: list[str] = key("list", [])  # kinds `new` scaffolds; default: first three
    sender: Sender = table(Sender)
    colors: Colors = table(Colors)
    outbox: Outbox = table(Outbox)
    smtp: SMTP = table(SMTP)
    sendgrid: SendGrid = table(SendGrid)
    delivery: Delivery = table(Delivery)
    signup: Signup = table(Signup)
    check: Check = table(Check)
    review: Review = table(Review)
    labels: Labels = table(Labels)
    links: Links = table(Links)
    jekyll: Jekyll = table(Jekyll)
    sections: dict[str, SectionKind] = field(default_factory=dict)
    # [labels.en], [labels.zh-CN]: the labels of an edition in that language, each key
    # not given there taken from [labels]
    language_labels: dict[str, Labels] = field(default_factory=dict)
    # [topics]: tag -> label, the tags a reader may choose on the preference page (in order)
    topics: dict[str, str] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=Secrets)
    # (table, ..., key) -> its line in newsletter.toml, for messages about a key's value
    key_lines: dict[tuple[str, ...], int] = field(default_factory=dict, repr=False,
                                                  compare=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    def labels_for(self, language: str) -> Labels:
        """The labels of an edition in this language: [labels.<language>] (or of its
        primary language: [labels.en] for en-GB), else [labels]."""
        wanted = language.lower()
        for candidates in (lambda tag: tag.lower() == wanted,
                           lambda tag: tag.lower().split("-")[0] == wanted.split("-")[0]):
            found = next((tag for tag in self.language_labels if candidates(tag)), None)
            if found:
                return self.language_labels[found]
        return self.labels

    @property
    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None

    @property
    def list_id(self) -> str:
        if self.sender.list_id:
            return self.sender.list_id
        local, _, domain = self.sender.email.partition("@")
        return f"{local}.{domain or 'localhost'}"

    @property
    def subscribe_url(self) -> str:
        """Where `serve` answers POST /subscribe: [signup] url, else beside
        unsubscribe_url; empty when neither is set."""
        if self.signup.url or not self.unsubscribe_url:
            return self.signup.url
        return urljoin(self.unsubscribe_url, "subscribe")

    @property
    def preferences_page(self) -> str:
        """The preference page's URL: preferences_url, else beside unsubscribe_url; empty
        when neither is set."""
        if self.preferences_url or not self.unsubscribe_url:
            return self.preferences_url
        return urljoin(self.unsubscribe_url, "preferences")

    @property
    def confirm_url(self) -> str:
        """The page a confirmation link opens: beside the subscribe URL."""
        return urljoin(self.subscribe_url, "confirm") if self.subscribe_url else ""

    @property
    def previous_secrets(self) -> tuple[str, ...]:
        """Secrets that signed unsubscribe links before NEWSLETTER_SECRET: their links
        still verify, no new link uses them."""
        return self.secrets.previous()

    @property
    def unsubscribe_email(self) -> str:
        """Where List-Unsubscribe's mailto: goes: [sender] unsubscribe_email, else the
        sender's address with a +unsubscribe tag (a mailbox a program can read, never
        the editors' reply-to inbox)."""
        if self.sender.unsubscribe_email:
            return self.sender.unsubscribe_email
        local, _, domain = self.sender.email.rpartition("@")
        return f"{local}+unsubscribe@{domain}"

    def require(self, secret: str) -> str:
        """A secret a command cannot do without: its value, or the one configuration
        error (exit status 4) that says what it is and how to provide it."""
        value = self.secrets.get(secret)
        if not value:
            raise ConfigError.one(self.path.name, f"{secret} is not set ({SECRETS[secret]}); "
                                                  f"export it, or put it in {ENV_FILE} "
                                                  "(mode 600)")
        return value


# --- finding and loading --------------------------------------------------------------


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
    except OSError as exc:
        raise ConfigError.one(shown, f"cannot be read: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError.one(shown, f"TOML syntax error: {exc}; fix the syntax", line) from None

    root = path.resolve().parent
    problems = Problems()
    env = {**read_env_file(root / ENV_FILE, problems), **env}
    reader = _Reader(shown, _key_lines(text), env, root, problems)
    labels = raw.get("labels", {})
    per_language = {k: v for k, v in labels.items() if isinstance(v, dict)} \
        if isinstance(labels, dict) else {}
    if per_language:
        raw = {**raw, "labels": {k: v for k, v in labels.items() if k not in per_language}}
    values = reader.table(Config, {k: v for k, v in raw.items()
                                   if k not in ("sections", "topics")}, ())
    sections = reader.sections(raw.get("sections", {}))
    language_labels = reader.language_labels(per_language, raw.get("labels", {}))
    topics = reader.topics(raw.get("topics", {}))
    for kind in values.get("new_sections", []):
        if sections and kind not in sections:
            problems.add(shown, reader.lines.get(("new_sections",)),
                         f"new_sections: '{kind}' is not a section kind"
                         f"{did_you_mean(kind, sections)}; known kinds: {', '.join(sections)}")
    problems.raise_if_any(ConfigError)
    return _build(Config, values, path=path.resolve(), sections=sections, topics=topics,
                  language_labels=language_labels, secrets=Secrets.from_env(env),
                  key_lines=reader.lines)


def read_env_file(path: Path, problems: Problems) -> dict[str, str]:
    """``KEY=value`` lines (comments and blank lines allowed) of a file only its owner
    can read; a missing file is no file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    shown = display_path(path)
    if mode & 0o077:
        problems.add(shown, None, f"readable by others (mode {mode & 0o777:o}); it holds "
                                  f"secrets: chmod 600 {shown}")
        return {}
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.removeprefix("export ").partition("=")
        name = name.strip()
        if not equals or not (name in SECRETS or name.startswith("NEWSLETTER_")):
            problems.add(shown, number, f"'{line.split('=')[0][:40]}' is not a secret or a "
                                        f"NEWSLETTER_* setting; write KEY=value with KEY one "
                                        f"of {', '.join(SECRETS)} or NEWSLETTER_<KEY>")
            continue
        values[name] = value.strip().strip("'\"")
    return values


def _build(cls: type, values: dict[str, Any], **extra: Any) -> Any:
    """The dataclass from validated values, tables built from theirs."""
    kwargs = dict(extra)
    for f in dataclasses.fields(cls):
        if f.metadata.get("kind") == "table" and "table" in f.metadata:
            kwargs[f.name] = _build(f.metadata["table"], values.get(f.name, {}))
        elif f.name in values:
            kwargs[f.name] = values[f.name]
    return cls(**kwargs)


class _Reader:
    """Walks the dataclasses' fields over the TOML, collecting every problem."""

    def __init__(self, shown: str, lines: dict, env: Mapping[str, str], root: Path,
                 problems: Problems):
        self.shown, self.lines, self.env, self.root = shown, lines, env, root
        self.problems = problems

    def table(self, cls: type, raw: dict, where: tuple[str, ...], env_prefix: bool = True
              ) -> dict[str, Any]:
        fields = {f.name: f for f in dataclasses.fields(cls) if "kind" in f.metadata}
        known = list(fields) + ([] if where else ["sections", "topics"])
        place = f"[{'.'.join(where)}]" if where else "the top level"
        for name in raw:
            if name not in fields:
                self.add((*where, name), f"unknown key in {place}{did_you_mean(name, known)}")
        out: dict[str, Any] = {}
        for name, spec in fields.items():
            meta = spec.metadata
            dotted = (*where, name)
            if "table" in meta:
                sub = raw.get(name, {})
                if not isinstance(sub, dict):
                    self.add(dotted, f"must be a table [{'.'.join(dotted)}]")
                    sub = {}
                out[name] = self.table(meta["table"], sub, dotted)
                continue
            variable = "_".join(("NEWSLETTER", *where, name)).upper()
            if env_prefix and variable in self.env:
                value, source = _from_env_string(self.env[variable], meta["kind"]), variable
            elif name in raw:
                value, source = raw[name], None
            elif spec.default is dataclasses.MISSING and spec.default_factory is \
                    dataclasses.MISSING:
                self.add(where, f"{'.'.join(dotted)}: missing; add it to {place}", key=False)
                continue
            else:
                default = spec.default if spec.default is not dataclasses.MISSING else \
                    spec.default_factory()
                out[name] = self._convert(default, meta)
                continue
            message = _check(value, meta)
            if message:
                self.add(dotted, message + (f" (from environment variable {source})"
                                            if source else ""), line=source is None)
            else:
                out[name] = self._convert(value, meta)
        return out

    def sections(self, raw: Any) -> dict[str, SectionKind]:
        if not isinstance(raw, dict) or not raw:
            self.add(("sections",), "no section kinds: add at least one table like "
                                    "[sections.news] with label = \"...\"")
            return {}
        kinds = {}
        for kind, table_ in raw.items():
            where = ("sections", kind)
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", kind):
                self.add(where, "a section kind is lower-case letters, digits, - or _")
                continue
            if not isinstance(table_, dict):
                self.add(where, "must be a table with label = \"...\"")
                continue
            values = self.table(SectionKind, table_, where, env_prefix=False)
            if "label" in values:
                kinds[kind] = SectionKind(kind=kind, label=values["label"],
                                          template=values["template"] or kind)
        return kinds

    def language_labels(self, tables: dict[str, dict], base: dict) -> dict[str, Labels]:
        """[labels.<language>] tables, each over [labels] as written."""
        found = {}
        for language, table_ in tables.items():
            where = ("labels", language)
            if not _LANGUAGE.fullmatch(language):
                self.add(where, "a table in [labels] is one language's labels, named by a "
                                "language tag like [labels.en] or [labels.zh-CN]")
                continue
            values = self.table(Labels, {**base, **table_}, where, env_prefix=False)
            if len(values) == len(dataclasses.fields(Labels)):
                found[language] = Labels(**values)
        return found

    def topics(self, raw: Any) -> dict[str, str]:
        """[topics]: tag = "label"; each tag as it is stored (lower case), each label
        on one line."""
        if not isinstance(raw, dict):
            self.add(("topics",), 'must be a table [topics] of tag = "label" lines')
            return {}
        topics = {}
        for tag, label in raw.items():
            where = ("topics", tag)
            problem = tag_problem(tag)
            if problem:
                self.add(where, f"{problem} (the keys of [topics] are the tags readers choose)")
            elif tag != normal_tag(tag):
                self.add(where, f"write the tag in lower case: {normal_tag(tag)}")
            elif not isinstance(label, str) or not label.strip() or _CONTROL.search(label):
                self.add(where, f'the label must be text on one line, like {tag} = "AI 工具"')
            else:
                topics[tag] = label.strip()
        if len(topics) > MAX_TOPICS:
            self.add(("topics",), f"{len(topics)} topics; a reader can choose from at most "
                                  f"{MAX_TOPICS}: remove some")
        return topics

    def add(self, where: tuple[str, ...], message: str, line: bool = True,
            key: bool = True) -> None:
        prefix = f"{'.'.join(where)}: " if key and where else ""
        self.problems.add(self.shown, self.lines.get(where) if line else None, prefix + message)

    def _convert(self, value: Any, meta: Mapping[str, Any]) -> Any:
        kind = meta["kind"]
        if kind == "duration":
            return parse_duration(value)
        if kind == "url":
            return value.rstrip("/")
        if kind == "path" or (kind == "database" and not _DATABASE_URL.match(value)):
            return (self.root / value).resolve()
        return value


# --- values ------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DATABASE_URL = re.compile(r"^postgres(?:ql)?://")


def _masked(url: str) -> str:
    """A URL with its password, if any, as ***."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@", r"\1:***@", url)
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def parse_duration(text: str) -> timedelta | None:
    match = _DURATION.match(text)
    if not match:
        return None
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


# Plainly valid addresses, which email-validator accepts too: ASCII dot-atoms at a dotted
# domain of letter/digit/hyphen labels (none an IDNA "xn--" label) with a letters-only
# top-level domain that is not special-use. They skip email-validator, which costs
# ~35 µs an address: a send checks every reader's address. Anything else is asked of it.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"(?!xn--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"(?P<local>{_ATEXT}(?:\.{_ATEXT})*)@(?:{_LABEL}\.)+"
                            r"(?P<tld>[A-Za-z]{2,63})")
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def email_address_problem(value: str) -> str | None:
    """Why an address is not one (syntax only: no DNS), or None."""
    plain = _PLAIN_ADDRESS.fullmatch(value)
    if plain and len(value) <= 254 and len(plain["local"]) <= 64 and \
            plain["tld"].lower() not in _SPECIAL_USE:
        return None
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        reason = str(exc).rstrip(".")
        return reason[:1].lower() + reason[1:]
    return None


def value_problem(kind: str, value: str) -> str | None:
    """What is wrong with a value of this kind ("line", "email", "language", …), or None:
    for commands that write configuration (init) and check it as loading would."""
    return _check(value, {"kind": kind, "choices": (), "low": None, "high": None,
                          "fields": ()})


def _check(value: Any, meta: Mapping[str, Any]) -> str | None:
    kind = meta["kind"]
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be a whole number, not {value!r}"
        low, high = meta["low"], meta["high"]
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"of {low} or more"
            return f"is {value}; use a number {bounds}"
        return None
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, not {value!r}"
    if kind == "list":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else f"must be a list of strings, not {value!r}"
    if kind == "table":
        return None if isinstance(value, dict) else f"must be a table, not {value!r}"
    if kind == "front_matter":
        if not isinstance(value, dict):
            return f"must be a table, not {value!r}"
        own = [name for name in value if name in JEKYLL_OWN_KEYS]
        return f"'{own[0]}' is set by export: {JEKYLL_OWN_KEYS[own[0]]}; remove it" if own \
            else None
    if not isinstance(value, str):
        return f"must be a string, not {value!r}"
    return _check_text(value, meta)


def _is_ec_public_key(text: str) -> bool:
    import base64
    import binascii

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(text.strip(), validate=True))
    except (ValueError, binascii.Error, TypeError):
        return False
    return isinstance(key, ec.EllipticCurvePublicKey)


def _check_text(value: str, meta: Mapping[str, Any]) -> str | None:
    kind = meta["kind"]
    if kind in ("line", "email", "url", "path", "database", "choice", "zone", "language") and \
            _CONTROL.search(value):
        return ("contains a line break or another control character, which would break "
                "the email's headers; write it on one line")
    if kind == "choice" and value not in meta["choices"]:
        named = [choice for choice in meta["choices"] if choice]
        empty = " (or empty for none)" if "" in meta["choices"] else ""
        return (f"'{value}' is not one of: {', '.join(named)}{empty}"
                f"{did_you_mean(value, named)}")
    if kind == "zone" and value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return f"'{value}' is not a known time zone; use a name like 'Asia/Shanghai' or 'UTC'"
    if kind == "duration" and parse_duration(value) is None:
        return f"'{value}' is not a duration; write a number and a unit, like '6h' or '30m'"
    if kind == "url" and value and not re.match(r"^https?://[^\s/?#]+", value):
        return f"'{value}' is not an http(s) URL; write it like 'https://news.example.com/x'"
    if kind == "color" and not re.fullmatch(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?", value):
        return f"'{value}' is not a colour; write it like '#1a73e8'"
    if kind == "public_key" and value and not _is_ec_public_key(value):
        return ("is not an ECDSA public key; paste the Verification Key of SendGrid's "
                "Event Webhook settings (base64, like MFkwEwYHKoZIzj0CAQYI…)")
    if kind == "language" and not _LANGUAGE.fullmatch(value):
        return f"'{value}' is not a language tag; write it like 'en' or 'zh-CN'"
    if kind == "email" and value:
        problem = email_address_problem(value)
        if problem:
            return f"'{value}' is not an email address ({problem}); write it like " \
                   "'news@example.com'"
    if kind == "path" and re.match(r"^[a-z][a-z0-9+.-]*://", value):
        return (f"'{_masked(value)}' is a URL; give a path here (relative to "
                "newsletter.toml, or an absolute one)")
    if kind == "database" and re.match(r"^[a-z][a-z0-9+.-]*://", value) and \
            not _DATABASE_URL.match(value):
        return (f"'{_masked(value)}' is not a database newsletter can use; give a SQLite file "
                "path (relative to newsletter.toml, or absolute) or a postgresql:// URL")
    if kind == "format":
        return _check_format(value, meta["fields"])
    return None


def _check_format(value: str, allowed: tuple[str, ...]) -> str | None:
    """A label that is filled with .format(): only its own {names}, braces balanced."""
    try:
        used = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError:
        return (f"'{value}' has an unmatched '{{' or '}}'; write '{{{{' or '}}}}' for a "
                "brace")
    wrong = [name for name in used if name not in allowed]
    if wrong:
        offered = ", ".join("{" + name + "}" for name in allowed) or "no {placeholders}"
        return f"'{value}' uses {{{wrong[0]}}}, which is not filled here; use {offered}"
    return None


def _from_env_string(value: str, kind: str) -> Any:
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            return value
    if kind == "bool":
        lowered = value.strip().lower()
        return {"1": True, "true": True, "yes": True, "0": False, "false": False,
                "no": False, "": False}.get(lowered, value)
    if kind == "list":
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line numbers of tables and keys, for messages (tomllib gives none)."""
    lines: dict[tuple[str, ...], int] = {}
    current: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            current = tuple(part.strip().strip('"') for part in header[1].split("."))
            lines.setdefault(current, number)
            continue
        found = re.match(r"^\s*([A-Za-z0-9_-]+|\"[^\"]+\")\s*=", line)
        if found:
            lines.setdefault((*current, found[1].strip('"')), number)
    return lines


def _toml_error_line(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match[1]) if match else None
