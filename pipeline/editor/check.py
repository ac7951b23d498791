"""newsletter check: lint an issue's content and its rendered output.

Every finding is a Problem (path, line, message, severity) that points at the source
line in the section file wherever the problem comes from the content. The default run
never touches the network; ``online`` checks every external link.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config import Config
from ..errors import IssueError, Problem, display_path
from ..issue import Issue, read_issue
from ..issue.version import issue_version
from ..render import FIELDS, PLACEHOLDER, RenderedEmail, SizeVerdict, render_issue, size_verdict
from ..render.assets import issue_assets
from ..render.columns import display_width
from ..render.mail import GMAIL_CLIP
from ..render.palette import low_contrast
from . import editorial
from .editions import check_editions
from .scaffold import SCAFFOLD_LINES

SUBJECT_COLUMNS = 60
PREHEADER_COLUMNS = 90
VAGUE_LINK_TEXT = {"click here", "here", "this link", "link", "read more", "more",
                   "点击这里", "点这里", "这里", "点击此处", "此处", "链接", "点击"}
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_LATIN = re.compile(rf"[{CJK}][A-Za-z0-9]|[A-Za-z0-9][{CJK}]")
_HALF_PUNCT = re.compile(rf"[{CJK}][,;:!?][{CJK}]|[{CJK}]\.[{CJK}]")
_FULL = {",": "，", ";": "；", ":": "：", "!": "！", "?": "？", ".": "。"}
_JS_LINK = re.compile(r"\]\(\s*(javascript|vbscript|data):", re.I)


def check_issue(folder: Path, config: Config, online: bool = False,
                fetch: Callable[[str], int | str] | None = None,
                head: Callable[[str], int | str] | None = None) -> list[Problem]:
    """Every finding for an issue folder: reading and rendering errors, or the lint."""
    try:
        issue = read_issue(folder, config)
        editions = [(edition, render_issue(edition, config)) for edition in issue.editions]
    except IssueError as exc:
        return list(exc.problems)
    # each edition linted in its own language; what they share is said once
    findings = list(dict.fromkeys(problem for edition, rendered in editions
                                  for problem in lint(edition, rendered, config)))
    findings += check_editions(issue)
    if online:
        findings += check_links_online(issue, fetch or head_status)
        findings += check_images_online(issue, config, head or head_only)
    return sort_findings(findings)


def sort_findings(findings: list[Problem]) -> list[Problem]:
    return sorted(findings, key=lambda p: (p.path, p.line or 0))  # stable: in text order


def count_findings(findings: list[Problem]) -> tuple[int, int]:
    """(errors, warnings): the one count `check`, `preview` and `review` all show."""
    errors = sum(finding.severity == "error" for finding in findings)
    return errors, len(findings) - errors


def summarise(findings: list[Problem]) -> str:
    return "{} errors, {} warnings".format(*count_findings(findings))


def lint(issue: Issue, rendered: RenderedEmail, config: Config) -> list[Problem]:
    out: list[Problem] = []
    out += _metadata(issue, config)
    out += _content(issue, config)
    out += _headings(issue)
    out += editorial.empty_parts(issue)
    out += editorial.tables(issue)
    out += editorial.item_numbers(issue)
    out += editorial.images(issue)
    out += editorial.link_texts(issue)
    out += editorial.repeated_links(issue, config)
    out += _scaffold_text(issue)
    out += _output(issue, rendered, config)
    out += _colors(config)
    return out


def send_blockers(folder: Path, config: Config,
                  head: Callable[[str], int | str] | None = None) -> list[Problem]:
    """What stops a send: the errors of `check` (never its warnings); with
    check.online_before_send, an image that is not at asset_url too."""
    findings = check_issue(folder, config)
    errors = [finding for finding in findings if finding.severity == "error"]
    if config.review.require_clean and folder.is_dir():
        errors += uncommitted(folder)
    if errors or not config.check.online_before_send:
        return errors
    issue = read_issue(folder, config)
    return [finding for finding in check_images_online(issue, config, head or head_only)
            if finding.severity == "error"]


def uncommitted(folder: Path) -> list[Problem]:
    """An issue folder in a git work tree with changes not committed: what would be sent
    is not what was reviewed. (A folder outside git is sent as it is.)"""
    changed = issue_version(folder).changed
    if not changed:
        return []
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return [Problem(display_path(folder), None, f"has changes that are not committed "
                    f"({shown}); commit them, so that what is sent is what was reviewed (or "
                    "set [review] require_clean = false)")]


def _scaffold_text(issue: Issue) -> Iterator[Problem]:
    """Lines that `newsletter new` wrote as guidance and nobody replaced."""
    for section in issue.sections:
        if section.file is None:
            continue
        for number, line in enumerate(section.file.read_text(encoding="utf-8").split("\n"), 1):
            if line.strip() in SCAFFOLD_LINES:
                yield Problem(section.path, number, "text from `newsletter new` is still here; "
                              "replace it with the issue's own words, or delete it")


def _metadata(issue: Issue, config: Config) -> Iterator[Problem]:
    meta = display_path(issue.folder / "issue.yaml")
    lines = issue.lines
    subject_line = lines.get("subject", lines.get("title"))
    if not issue.subject.strip():
        yield Problem(meta, subject_line, "the subject is empty; write a subject (or a title)")
    elif display_width(issue.subject) > SUBJECT_COLUMNS:
        yield Problem(meta, subject_line, f"the subject is {display_width(issue.subject)} "
                      f"columns; keep it under {SUBJECT_COLUMNS} (CJK characters count two) "
                      "or mail clients cut it", "warning")
    if not issue.preheader.strip():
        yield Problem(meta, lines.get("title"), "no preheader; add 'preheader: ...', the line "
                      "inboxes show after the subject", "warning")
    elif display_width(issue.preheader) > PREHEADER_COLUMNS:
        yield Problem(meta, lines.get("preheader"), f"the preheader is "
                      f"{display_width(issue.preheader)} columns; keep it under "
                      f"{PREHEADER_COLUMNS}", "warning")
    for key, text in (("title", issue.title), ("subject", issue.subject),
                      ("preheader", issue.preheader)):
        if key in lines:
            yield from _copy_editing(text, config, meta, lambda snippet, k=key: lines[k])
    if issue.kind == "welcome":
        for key in ("send_at", "publish"):
            if key in lines:
                yield Problem(meta, lines[key], f"'{key}' does nothing in a welcome issue: it "
                              "goes to each reader who confirms a signup, never on a "
                              "schedule or the archive; remove the line", "warning")


def _content(issue: Issue, config: Config) -> Iterator[Problem]:
    for section in issue.sections:
        source = section.file.read_text(encoding="utf-8").split("\n") if section.file else []
        for number, line in enumerate(source, 1):
            if _JS_LINK.search(line):
                yield Problem(section.path, number, "a link to a script URL (javascript:, "
                              "data:); link to an https:// page instead")
        for item_links in [section.links] + [item.links for item in section.items]:
            seen: dict[str, int] = {}
            for link in item_links:
                if not link.text.strip():
                    yield Problem(link.path, link.line, f"the link to {link.href} has no "
                                  "text; write what it leads to between the brackets")
                elif link.text.strip().lower() in VAGUE_LINK_TEXT:
                    yield Problem(link.path, link.line, f"link text '{link.text.strip()}' says "
                                  "nothing out of context; name where it leads", "warning")
                if link.href.lower().startswith("http://"):
                    yield Problem(link.path, link.line, f"{link.href} is not https; use the "
                                  "https:// address if the site has one", "warning")
                seen[link.href] = seen.get(link.href, 0) + 1
                if seen[link.href] == 2:  # said once, however often it repeats
                    yield Problem(link.path, link.line, f"{link.href} is linked twice in "
                                  "this item; keep one link", "warning")
        for body in [section.intro] + [item.body for item in section.items]:
            for block in body:
                if block.type != "inline" or not block.map:
                    continue
                for child in block.children or []:
                    if child.type == "text":
                        yield from _copy_editing(
                            child.content, config, section.path,
                            lambda snippet, span=block.map, lines=source: _line_in(snippet, span, lines))
    for image in issue.images:
        if image is not issue.header_image and not image.alt.strip():
            yield Problem(image.path, image.line, f"image '{image.src}' has no alt text; "
                          "describe it between the brackets: ![what it shows](...)")
    if not config.asset_url and any(image.asset for image in issue.images):
        yield Problem(config.path.name, None, "asset_url is not set, so the email's images "
                      "point at local files; set asset_url to where the images are hosted",
                      "warning")


def _headings(issue: Issue) -> Iterator[Problem]:
    """The email's headings are an outline that screen readers list: the issue's title
    is the one h1, item titles are h2, their own headings h3 and deeper, none skipping
    a level."""
    for section in issue.sections:
        for body, above in [(section.intro, 0)] + [(item.body, 2) for item in section.items]:
            for block in body:
                if block.type != "heading_open":
                    continue
                level, line = int(block.tag[1]), block.map[0] + 1 if block.map else None
                if not above:
                    yield Problem(section.path, line, "a heading before the section's first "
                                  "item ('## '), above every item title in the email's "
                                  "outline; make it an item or write the line in **bold**",
                                  "warning")
                elif level == 1:
                    yield Problem(section.path, line, "a '# ' heading would be a second h1 "
                                  "in the email, where the issue's title is the one; use "
                                  "'### ' for a heading inside an item", "warning")
                elif level > above + 1:
                    yield Problem(section.path, line, f"a level-{level} heading right under "
                                  f"a level-{above} one skips a level in the email's outline; "
                                  f"write '{'#' * (above + 1)} '", "warning")
                above = max(level, 2) if above else 0


def _copy_editing(text: str, config: Config, path: str,
                  line_of: Callable[[str], int | None]) -> Iterator[Problem]:
    """Chinese copy-editing: a space between CJK and Latin script or digits, and
    full-width punctuation inside Chinese sentences. The publication's name is exempt."""
    text = text.replace(config.name, " ")
    flagged: set[int] = set()  # offsets of half-width marks reported here
    for match in _CJK_LATIN.finditer(text):
        pair = match[0]
        yield Problem(path, line_of(pair), f"no space between Chinese and Latin script in "
                      f"'{_context(text, match)}'; write '{pair[0]} {pair[1]}'", "warning")
    for match in _HALF_PUNCT.finditer(text):
        mark = match[0][1]
        flagged.add(match.start() + 1)
        yield Problem(path, line_of(match[0]), f"half-width '{mark}' inside a Chinese "
                      f"sentence in '{_context(text, match)}'; use '{_FULL[mark]}'", "warning")
    yield from editorial.mixed_punctuation(text, path, line_of, flagged)


def _context(text: str, match: re.Match) -> str:
    return text[max(0, match.start() - 4):match.end() + 4].strip()


def _line_in(snippet: str, span: list[int], source: list[str]) -> int:
    for number in range(span[0], min(span[1], len(source))):
        if snippet in source[number]:
            return number + 1
    return span[0] + 1


def _output(issue: Issue, rendered: RenderedEmail, config: Config) -> Iterator[Problem]:
    folder = display_path(issue.folder)
    size = rendered.html_size
    verdict = size_verdict(size)
    if verdict == SizeVerdict.ERROR:
        yield Problem(folder, None, f"the HTML is {size / 1024:.1f} KB; Gmail clips messages "
                      f"at {GMAIL_CLIP // 1024} KB: shorten the issue")
    elif verdict == SizeVerdict.WARNING:
        yield Problem(folder, None, f"the HTML is {size / 1024:.1f} KB, close to Gmail's "
                      f"{GMAIL_CLIP // 1024} KB clipping limit", "warning")
    for part, template in ((rendered.html, "templates/email/issue.mjml.j2"),
                           (rendered.text, "templates/text/issue.txt.j2")):
        if "%%unsubscribe_url%%" not in part:
            yield Problem(template, None, "no %%unsubscribe_url%% in the rendered email; every "
                          "issue must let readers leave: add a link to it")
        for name in sorted({m[1] for m in PLACEHOLDER.finditer(part)} - set(FIELDS)):
            yield Problem(template, None, f"placeholder %%{name}%% is not a standard field "
                          f"({', '.join(FIELDS)}); subscribers need a CSV column '{name}'",
                          "warning")


def _colors(config: Config) -> Iterator[Problem]:
    """A publication's own colours that readers cannot read: each pair of [colors] or
    [colors.dark] below WCAG AA where the templates put one on the other, at the line of
    the text colour (else the background's, else the table's)."""
    for pair in low_contrast(config.colors):
        table = tuple(pair.table.split("."))
        lines = config.key_lines
        line = lines.get((*table, pair.text)) or lines.get((*table, pair.background)) \
            or lines.get(table)
        yield Problem(config.path.name, line, str(pair), "warning")


# --- --online ------------------------------------------------------------------------


def head_status(url: str, timeout: float = 10) -> int | str:
    """HTTP status of a HEAD (falling back to GET), or why the host cannot be reached."""
    import urllib.error
    import urllib.request

    headers = {"User-Agent": "newsletter-link-check/1 (+https://github.com)"}
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            if method == "HEAD" and exc.code in (403, 404, 405, 501):
                continue  # some servers answer HEAD wrongly: ask with GET
            return exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return str(getattr(exc, "reason", exc))
    return "no answer"


def check_links_online(issue: Issue, fetch: Callable[[str], int | str]) -> list[Problem]:
    links = [link for link in issue.links if link.href.lower().startswith(("http://", "https://"))]
    urls = sorted({link.href for link in links})
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(zip(urls, pool.map(fetch, urls), strict=True))
    findings = []
    for link in links:
        status = results[link.href]
        if isinstance(status, int) and 400 <= status < 500:
            findings.append(Problem(link.path, link.line, f"{link.href} answers {status}; fix "
                                    "or remove the link"))
        elif isinstance(status, int) and status >= 500:
            findings.append(Problem(link.path, link.line, f"{link.href} answers {status} (a "
                                    "server error; it may pass later)", "warning"))
        elif isinstance(status, str):
            findings.append(Problem(link.path, link.line, f"{link.href} cannot be reached: "
                                    f"{status}", "warning"))
    return findings


def head_only(url: str, timeout: float = 5) -> int | str:
    """HTTP status of a HEAD request with a short timeout, or why there is no answer."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method="HEAD",
                                     headers={"User-Agent": "newsletter-asset-check/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def check_images_online(issue: Issue, config: Config,
                        head: Callable[[str], int | str]) -> list[Problem]:
    """Every image of the build is where the email points: asset_url/<id>/<name>. HEAD
    requests to asset_url only, never to a page the issue links."""
    assets = issue_assets(issue)
    if not config.asset_url or not assets:
        return []
    urls = [f"{config.asset_url}/{issue.id}/{asset.name}" for asset in assets]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(head, urls))
    where = {issue.folder / image.asset: (image.path, image.line)
             for image in reversed(issue.images) if image.asset}
    upload = (f"upload build/{issue.slug}/assets/ to {config.asset_url}/{issue.id}/ "
              f"(newsletter build {issue.slug} writes it)")
    findings = []
    for asset, url, status in zip(assets, urls, statuses, strict=True):
        if status == 200:
            continue
        answer = f"answers {status}" if isinstance(status, int) else f"cannot be reached: {status}"
        findings.append(Problem(*where[asset.source], f"image '{asset.name}' is not at {url} "
                                f"({answer}); {upload}"))
    return findings
