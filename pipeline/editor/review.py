"""newsletter review [BASE]: what a pull request changes, as readers will get it.

For every issue changed since BASE (default: the merge base with review.base_branch), a
folder under the output with report.md (subject, preheader, size, the findings of
`check`, the audience it would go to, a word-level diff of the plain-text part against
BASE) and screenshots at 600 and 375 px in light and dark mode; and one report.md of
all of them, for a pull-request comment. An issue in several languages (issue 18) has
the readers each edition would go to, and every other edition's subject, preheader,
size and text diff; the screenshots are of the default edition only.

git runs with fixed argument lists and a timeout (issue.version.git); the issue as it
was at BASE is read from `git archive` into a temporary folder.
"""

from __future__ import annotations

import difflib
import io
import re
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..config import Config
from ..errors import ExitStatus, IssueError, PipelineError, Problem, display_path
from ..issue import Issue, read_issue
from ..issue.model import pick_edition
from ..issue.reader import ISSUE_FILE
from ..issue.version import git, work_tree
from ..render import render_issue
from ..render.assets import write_assets
from .build import format_size
from .check import check_issue, summarise

SCREENS = {"600-light": (600, "light"), "600-dark": (600, "dark"),
           "375-light": (375, "light"), "375-dark": (375, "dark")}


class ReviewUsageError(PipelineError):
    """Not a git repository, or a BASE git does not know: a usage error (exit 2)."""

    exit_code = ExitStatus.USAGE


@dataclass
class EditionReview:
    """One other edition of an issue in several languages, as its readers get it."""

    language: str
    subject: str
    preheader: str
    size: int
    diff: str

    def markdown(self, base: str) -> str:
        return "\n".join([
            f"#### Edition {self.language}", "", f"- **Subject:** {self.subject}",
            f"- **Preheader:** {self.preheader or '—'}",
            f"- **Size:** {format_size(self.size)} of HTML", "",
            f"Plain text against {base[:12]}:", "", "```diff",
            self.diff or "(no change in the text)", "```", ""])


@dataclass
class IssueReview:
    folder: Path
    subject: str = ""
    preheader: str = ""
    size: int = 0
    findings: list[Problem] = field(default_factory=list)
    audience: str = ""
    diff: str = ""
    screenshots: list[Path] = field(default_factory=list)
    readers_by_edition: dict[str, int] = field(default_factory=dict)  # of several only
    editions: list[EditionReview] = field(default_factory=list)  # but the default

    def markdown(self, base: str) -> str:
        lines = [f"### {display_path(self.folder)}", "",
                 f"- **Subject:** {self.subject}", f"- **Preheader:** {self.preheader or '—'}",
                 f"- **Size:** {format_size(self.size)} of HTML (Gmail clips at 102 KB)",
                 f"- **Audience:** {self.audience}"]
        if self.readers_by_edition:
            lines.append("- **Editions:** " + ", ".join(
                f"{language} {count} readers" for language, count
                in self.readers_by_edition.items()) + " (each reader's language picks one; "
                "the subject, preheader and size above are of the first)")
        lines += [f"- **Check:** {summarise(self.findings)}", ""]
        lines += [f"  - `{f.as_finding()}`" for f in self.findings]
        lines += ["", f"#### Plain text against {base[:12]}", "",
                  "```diff", self.diff or "(no change in the text)", "```", ""]
        lines += [edition.markdown(base) for edition in self.editions]
        if self.screenshots:
            lines += ["Screenshots: " + ", ".join(p.name for p in self.screenshots), ""]
        return "\n".join(lines)


def resolve_base(root: Path, base: str | None, config: Config) -> str:
    """The commit BASE names, or the merge base of HEAD and review.base_branch."""
    if work_tree(root) is None:
        raise ReviewUsageError(f"{display_path(root)} is not in a git repository; review "
                               "compares the issues with a commit: run it in the "
                               "publication's git work tree")
    if base is None:
        branch = config.review.base_branch
        merged = git(["merge-base", "HEAD", branch], root, check=False)
        if merged.returncode:
            raise ReviewUsageError(f"no merge base of HEAD and '{branch}'; give BASE (a "
                                   "branch, tag or commit) or set [review] base_branch")
        return merged.stdout.decode().strip()
    if base.startswith("-"):
        raise ReviewUsageError(f"unknown BASE '{base}'; give a branch, tag or commit")
    found = git(["rev-parse", "--verify", "-q", "--end-of-options", f"{base}^{{commit}}"],
                root, check=False)
    if found.returncode:
        raise ReviewUsageError(f"unknown BASE '{base}'; give a branch, tag or commit that "
                               "this repository has (git fetch it first in CI)")
    return found.stdout.decode().strip()


def changed_issues(config: Config, base: str) -> list[Path]:
    """Issue folders under issues/ with a file changed since base (committed or not)."""
    root = config.root
    top = work_tree(root)
    assert top is not None
    issues = config.issues_dir.resolve()
    listed = git(["diff", "--name-only", "-z", base, "--", str(issues)], root).stdout
    untracked = git(["ls-files", "--others", "--exclude-standard", "--full-name", "-z", "--",
                     str(issues)], root).stdout  # new files: not in the diff yet
    folders = set()
    for name in (listed + b"\0" + untracked).decode("utf-8", "surrogateescape").split("\0"):
        if not name:
            continue
        try:
            first = (top / name).resolve().relative_to(issues).parts[0]
        except (ValueError, IndexError):
            continue
        if (issues / first / ISSUE_FILE).is_file():
            folders.add(issues / first)
    return sorted(folders)


def texts_at(folder: Path, base: str, config: Config, scratch: Path) -> dict[str, str]:
    """The plain-text part of each of the issue's editions as it was at base, by
    language; {} when it did not exist or could not be read then."""
    top = work_tree(folder)
    assert top is not None
    relative = folder.resolve().relative_to(top.resolve()).as_posix()
    archive = git(["archive", "--format=tar", base, "--", relative], top, check=False)
    if archive.returncode:
        return {}
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(scratch, filter="data")
    old = scratch / PurePosixPath(relative)
    try:
        return {edition.language: render_issue(edition, config).text
                for edition in read_issue(old, config).editions}
    except IssueError:
        return {}


_TOKEN = re.compile(r"\s+|[A-Za-z0-9_'’.-]+|.", re.S)


def word_diff(old: str, new: str) -> str:
    """The changed lines as a diff, each '+' line marking its changed words as
    [-removed-]{+added+} (CJK compared character by character)."""
    out = []
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        before, after = old.splitlines()[i1:i2], new.splitlines()[j1:j2]
        out += [f"- {line}" for line in before]
        if tag == "replace":
            out.append("+ " + _marked("\n".join(before), "\n".join(after))
                       .replace("\n", "\n+ "))
        else:
            out += [f"+ {line}" for line in after]
    return "\n".join(out)


def _marked(old: str, new: str) -> str:
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    parts = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            parts.append("".join(a[i1:i2]))
            continue
        if i2 > i1:
            parts.append(f"[-{''.join(a[i1:i2])}-]")
        if j2 > j1:
            parts.append(f"{{+{''.join(b[j1:j2])}+}}")
    return "".join(parts)


def audience_of(folder: Path, config: Config) -> str:
    """Who the issue would go to: its segment (issue.yaml's `audience`) counted as
    `send --dry-run` and `status` count it (plan_send: audience.count_segment), and named."""
    from ..delivery.send import plan_send

    try:
        plan = plan_send(folder, config, config.provider, _now())
    except PipelineError as exc:
        return f"unknown ({exc.format_message().splitlines()[0]})"
    who = ("every active reader" if plan.audience == "everyone"
           else f"the segment {plan.audience}")
    if plan.already_sent:
        return (f"{plan.recipients} readers still to send; {plan.already_sent} already sent "
                f"({who}; {config.provider})")
    return f"{plan.recipients} readers ({who}; {config.provider})"


def readers_by_edition(issue: Issue, config: Config) -> dict[str, int]:
    """How many readers of the issue's segment each edition would go to, were it sent
    now: those whose language picks it (ledger.Ledger picks them so when a send starts)."""
    from ..audience.queries import count_languages
    from ..store import connect

    found = dict.fromkeys(issue.languages, 0)
    db = connect(config.database)
    try:
        for language, count in count_languages(db, issue.audience).items():
            found[pick_edition(language, issue.languages)] += count
    finally:
        db.close()
    return found


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def screenshot(folder: Path, out: Path, config: Config) -> list[Path]:
    """The email at 600 and 375 px, in light and dark mode (the email's own
    prefers-color-scheme styles), with /usr/bin/chromium; no network."""
    build = out / "email"
    rendered = render_issue(read_issue(folder, config), config, relative_assets=True)
    build.mkdir(parents=True, exist_ok=True)
    (build / "email.html").write_text(rendered.html, encoding="utf-8")
    write_assets(rendered.assets, build / "assets")
    # a thread of its own: Playwright's sync API refuses a thread that runs an event loop
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(_shoot, build / "email.html", out).result()


def _shoot(email: Path, out: Path) -> list[Path]:
    from .preview import launch_chromium

    written = []
    with launch_chromium() as browser:
        for name, (width, scheme) in SCREENS.items():
            page = browser.new_page(viewport={"width": width, "height": 800},
                                    color_scheme=scheme)
            page.route("http*://**", lambda route: route.abort())  # readers' links: not here
            page.goto(email.resolve().as_uri(), wait_until="load")
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=True)
            page.close()
            written.append(path)
    return written


def review_issue(folder: Path, config: Config, base: str, out: Path,
                 screenshots: bool = True) -> IssueReview:
    review = IssueReview(folder)
    review.findings = check_issue(folder, config)
    try:
        issue = read_issue(folder, config)
        rendered = render_issue(issue, config)
    except IssueError:
        review.audience = "not known until the errors above are fixed"
        return review
    review.subject, review.preheader = rendered.subject, rendered.preheader
    review.size = rendered.html_size
    review.audience = audience_of(folder, config)
    with tempfile.TemporaryDirectory() as scratch:
        old = texts_at(folder, base, config, Path(scratch))
    review.diff = word_diff(old.get(issue.language, ""), rendered.text)
    if issue.translations:
        review.readers_by_edition = readers_by_edition(issue, config)
        for language, edition in issue.translations.items():
            other = render_issue(edition, config)
            review.editions.append(EditionReview(
                language, other.subject, other.preheader, other.html_size,
                word_diff(old.get(language, ""), other.text)))
    if screenshots:
        review.screenshots = screenshot(folder, out, config)
    (out / "report.md").write_text(review.markdown(base), encoding="utf-8")
    return review


def review_changes(config: Config, base: str | None, out: Path,
                   screenshots: bool = True) -> tuple[str, list[IssueReview]]:
    """Review every issue changed since base; out/report.md holds them all."""
    commit = resolve_base(config.root, base, config)
    reviews = []
    for folder in changed_issues(config, commit):
        folder_out = out / folder.name
        folder_out.mkdir(parents=True, exist_ok=True)
        reviews.append(review_issue(folder, config, commit, folder_out, screenshots))
    head = f"## Newsletter review against {commit[:12]}\n\n"
    body = "\n".join(r.markdown(commit) for r in reviews) or "No issue changed.\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(head + body, encoding="utf-8")
    return commit, reviews
