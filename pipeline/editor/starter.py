"""`newsletter init` and `newsletter templates copy`: a publication of one's own.

The files init writes are package data under ``starter/``: a commented newsletter.toml
(rendered with the publication's name, language and sender), one sample issue in
English or Chinese, a .gitignore and an env.example.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from datetime import date
from email.utils import parseaddr
from pathlib import Path

import jinja2

from ..config import CONFIG_NAME, Labels, value_problem
from ..errors import ConfigError, PipelineError, Problem, ProblemsError, display_path
from ..render.templates import package_templates

STARTER = Path(__file__).resolve().with_name("starter")
SAMPLE_SLUG = "welcome"
GITIGNORE = (".newsletter/", "build/", "outbox/", "site/", "logs/", "*.env", ".env")

LABELS = {
    "en": dataclasses.asdict(Labels()),
    "zh": {
        "issue": "第 {number} 期",
        "greeting": "你好，{name}：",
        "reader": "读者朋友",
        "editor": "编辑",
        "contributors": "供稿",
        "view_in_browser": "在浏览器中阅读",
        "unsubscribe": "退订",
        "links": "文中链接",
        "why": "你收到这封邮件，是因为你订阅了{name}。",
        "unsubscribe_prompt": "确定让 {email} 不再接收{name}吗？",
        "unsubscribe_button": "确认退订",
        "unsubscribed": "已为 {email} 退订{name}，你不会再收到新的一期。",
        "invalid_link": "这个退订链接无效。请使用最近一期邮件中的链接，或直接回复邮件告诉我们。",
        "subscribe_prompt": "用邮箱订阅{name}：",
        "email_field": "你的邮箱地址",
        "subscribe_button": "订阅",
        "check_inbox": "还差一步：如果 {email} 可以接收{name}，一封带确认链接的邮件正在路上，打开它完成订阅。",
        "not_an_address": "这不是一个有效的邮箱地址，请检查后再试。",
        "too_many": "请求太频繁了，请稍后再试。",
        "confirm_subject": "请确认订阅{name}",
        "confirm_intro": "有人（希望是你）请求把{name}发送到 {email}。点击下面的按钮确认订阅；链接 {days} 天内有效。",
        "confirm_button": "确认订阅",
        "confirm_ignore": "如果这不是你本人的操作，请忽略这封邮件：没有你的确认，我们不会给你发送任何内容。",
        "confirm_prompt": "确定把{name}发送到 {email} 吗？",
        "confirmed": "{email} 已订阅{name}，欢迎你！",
        "invalid_confirmation": "这个确认链接无效或已过期。请重新订阅，获取新的确认链接。",
        "resubscribe_button": "重新订阅",
        "preferences": "订阅偏好",
        "preferences_prompt": "选择{name}发送给 {email} 的主题：",
        "preferences_button": "保存",
        "preferences_saved": "已保存：{email} 会收到下面勾选的主题。",
        "invalid_preferences_link": "这个链接无效。请使用最近一期邮件中的“订阅偏好”链接，或直接回复邮件告诉我们。",
    },
}
SECTIONS = {
    "en": {"news": "News", "tips": "Tips", "notes": "From the editors"},
    "zh": {"news": "新闻速递", "tips": "实用技巧", "notes": "编者按"},
}
ADDRESS = {"en": "Your postal address, 1 Example Street, City",
           "zh": "你的通信地址：某市某路 1 号"}


@dataclass
class Publication:
    """What init made: the project folder, the sample issue, and each file written or kept."""

    root: Path
    issue: Path
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def init_publication(folder: Path, today: date, name: str | None = None,
                     language: str = "en", sender: str | None = None) -> Publication:
    """A new publication in folder (made if missing): newsletter.toml, a sample issue,
    .gitignore and env.example. Refuses a folder that already has a newsletter.toml;
    never overwrites any other file."""
    config = folder / CONFIG_NAME
    if config.exists():
        raise PipelineError("already exists: this folder holds a publication; choose "
                            "another folder", path=display_path(config))
    if folder.exists() and not folder.is_dir():
        raise PipelineError("is a file, not a folder", path=display_path(folder))
    if value_problem("language", language):
        raise PipelineError(f"--language '{language}' is not a language tag; write one like "
                            "en, de or zh-CN")
    lang = "zh" if language.lower().startswith("zh") else "en"
    name = (name or folder.resolve().name).strip()
    if not name or value_problem("line", name):
        raise PipelineError("--name is empty or not one line; give the publication a name")
    sender_name, sender_email = parse_sender(sender, name)

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(STARTER), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["toml"] = env.filters["quoted"] = _quoted  # a TOML and YAML double-quoted string
    values = {"name": name, "language": language, "sender_name": sender_name,
              "sender_email": sender_email, "address": ADDRESS[lang], "labels": LABELS[lang],
              "sections": SECTIONS[lang], "date": today.isoformat()}

    issue = folder / "issues" / f"{today.isoformat()}-{SAMPLE_SLUG}"
    made = Publication(folder, issue)
    folder.mkdir(parents=True, exist_ok=True)
    files = {config: "newsletter.toml.j2", folder / "env.example": "env.example",
             folder / ".github" / "workflows" / "newsletter-review.yml": "review.yml"}
    files.update({issue / source.name: f"{lang}/{source.name}"
                  for source in sorted((STARTER / lang).iterdir()) if source.is_file()})
    for target, source in files.items():
        if target.exists():
            made.kept.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(source).render(values), encoding="utf-8")
        made.written.append(target)
    _write_gitignore(folder / ".gitignore", made)
    return made


def parse_sender(text: str | None, name: str) -> tuple[str, str]:
    """--sender "Name <addr>" or just "addr" (the name is then the publication's)."""
    if not text:
        return name, "newsletter@example.com"
    display, address = parseaddr(text)
    if not address or value_problem("email", address) or value_problem("line", display):
        raise PipelineError(f"--sender '{text}' is not an email address; write "
                            "'Name <you@example.com>' or just the address")
    return display.strip() or name, address


def next_steps(made: Publication, folder_as_given: str) -> list[str]:
    """What to type next, for init to print."""
    import shlex

    issue = f"issues/{made.issue.name}"
    return [
        f"cd {shlex.quote(folder_as_given)}",
        "# edit newsletter.toml: the lines marked CHANGE (sender, postal address, URLs)",
        "export NEWSLETTER_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
        "   # keep it: see env.example",
        f"newsletter build {issue}",
        f"newsletter preview {issue}",
        "newsletter audience add you@example.com",
        f"newsletter send {issue} --test --to you@example.com",
        f"newsletter send {issue}   # to the outbox/ folder until you set provider",
    ]


def copy_templates(root: Path, force: bool = False) -> list[Path]:
    """Copy the package's templates into root/templates/ to customise them; refuses to
    overwrite a file without force. Returns the files written."""
    source = package_templates()
    target = root / "templates"
    if target.resolve() == source.resolve():
        raise PipelineError("these are the package's own templates (a source checkout); "
                            "there is nothing to copy", path=display_path(target))
    files = sorted(p for p in source.rglob("*.j2") if p.is_file())
    pairs = [(path, target / path.relative_to(source)) for path in files]
    existing = [to for _, to in pairs if to.exists()]
    if existing and not force:
        raise ProblemsError([Problem(display_path(to), None, "exists; not overwritten "
                                     "(use --force to replace it with the package's)")
                             for to in existing])
    for path, to in pairs:
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, to)
    return [to for _, to in pairs]


def _write_gitignore(path: Path, made: Publication) -> None:
    """Write .gitignore, or add the missing patterns to the one there."""
    if not path.exists():
        path.write_text((STARTER / "gitignore").read_text(encoding="utf-8"), encoding="utf-8")
        made.written.append(path)
        return
    text = path.read_text(encoding="utf-8")
    present = {line.strip() for line in text.splitlines()}
    missing = [pattern for pattern in GITIGNORE if pattern not in present]
    if not missing:
        made.kept.append(path)
        return
    lead = "" if not text or text.endswith("\n") else "\n"
    path.write_text(text + lead + "# added by `newsletter init`\n" + "\n".join(missing) + "\n",
                    encoding="utf-8")
    made.written.append(path)


def _quoted(value: object) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def project_config(folder: Path) -> Path:
    """--project DIR: DIR/newsletter.toml, which must exist."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise ConfigError.one(display_path(path), "not found; --project takes a publication's "
                                                  "folder (make one with `newsletter init DIR`)")
    return path
