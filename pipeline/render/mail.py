"""render_issue: an Issue becomes one RenderedEmail, once per issue.

Jinja2 composes MJML from templates/email/, mjml-python renders it, premailer inlines
the CSS (keeping @media rules), and the plain-text part is rendered from the same
model with templates/text/. Per-recipient values stay as %%placeholders%% that
personalisation fills at send time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape as html_escape
from html import unescape as html_unescape
from typing import Any

import jinja2
from markupsafe import Markup

from ..config import Config
from ..errors import IssueError, Problem, display_path
from ..issue import Image, Issue
from ..issue.model import text_direction
from .assets import BODY_WIDTH, CONTENT_WIDTH, Asset, asset_paths, issue_assets
from .blocks import html_blocks
from .links import link_tagger
from .plaintext import References, render_text
from .templates import TEXT_WIDTH, base_context, issue_label, template_env

GMAIL_CLIP = 102 * 1024  # Gmail clips a message whose HTML reaches this size
SIZE_WARNING = 90 * 1024

# Per-recipient fields: %%name%%, %%name|fallback%%. Filled by personalisation.
PLACEHOLDER = re.compile(r"%%([a-z_]+)(?:\|([^%]*))?%%")
FIELDS = ("name", "email", "unsubscribe_url", "preferences_url", "web_url")


class SizeVerdict:
    OK, WARNING, ERROR = "ok", "warning", "error"


def size_verdict(size: int) -> str:
    """Gmail clips a message whose HTML reaches 102 KB: an error there, a warning near."""
    if size >= GMAIL_CLIP:
        return SizeVerdict.ERROR
    return SizeVerdict.WARNING if size > SIZE_WARNING else SizeVerdict.OK


@dataclass(frozen=True)
class RenderedEmail:
    slug: str  # the issue's id: its URLs, Message-IDs and outbox folder
    subject: str
    preheader: str
    html: str
    text: str
    mjml: str
    assets: tuple[Asset, ...]
    source: str = "issue.yaml"  # the issue's issue.yaml, as shown in messages

    @property
    def html_size(self) -> int:
        return len(self.html.encode("utf-8"))


def image_url_for(issue: Issue, config: Config, relative_assets: bool = False
                  ) -> Callable[[str], str]:
    """Where an image of the issue is hosted: asset_url/<id>/<file>.

    Without asset_url (or for a local build), images point at the build's assets/.
    """
    base = config.asset_url
    local = asset_paths(issue)

    def image_url(src: str) -> str:
        if src not in local:
            return src
        if base and not relative_assets:
            return f"{base}/{issue.id}/{local[src]}"
        return f"assets/{local[src]}"

    return image_url


def web_url(issue: Issue, config: Config) -> str:
    """The issue's page in the web archive: archive_url/<id>/ (its folder may move), an
    edition's archive_url/<id>/<language>/ when the issue has several."""
    if not config.archive_url:
        return ""
    edition = f"{issue.language}/" if issue.languages else ""
    return f"{config.archive_url}/{issue.id}/{edition}"


def _image_view(image: Image | None, src: str, url: str, width: int, alt: str
                ) -> dict[str, Any]:
    natural_w = image.width if image else None
    natural_h = image.height if image else None
    shown = min(natural_w, width) if natural_w else width
    height = round(natural_h * shown / natural_w) if natural_w and natural_h else None
    return {"kind": "image", "url": url, "alt": alt, "width": shown,
            "height": height, "src": src}


def _shown_size(issue_images: dict[str, Image]):
    """src -> an inline image's width and height in the email: its natural size, scaled
    down to the column."""
    def size(src: str) -> tuple[int, int] | None:
        view = _image_view(issue_images.get(src), src, "", CONTENT_WIDTH, "")
        return (view["width"], view["height"]) if view["height"] else None
    return size


def _blocks(body, issue_images: dict[str, Image], image_url, link_url
            ) -> list[dict[str, Any]]:
    views = []
    for block in html_blocks(body, image_url, _shown_size(issue_images), link_url):
        if block.kind == "html":
            views.append({"kind": "html", "html": Markup(block.html)})
        else:
            views.append(_image_view(issue_images.get(block.src), block.src,
                                     image_url(block.src), CONTENT_WIDTH, block.alt))
    return views


def email_context(issue: Issue, config: Config, relative_assets: bool = False
                  ) -> dict[str, Any]:
    image_url = image_url_for(issue, config, relative_assets)
    link_url = link_tagger(issue, config)
    images = {image.src: image for image in issue.images}
    refs = References()

    def text_of(body) -> str:
        return render_text(body, refs, TEXT_WIDTH, image_url, link_url)

    sections = []
    for section in issue.sections:
        sections.append({
            "kind": section.kind,
            "template": section.template,
            "title": section.title,
            "intro": _blocks(section.intro, images, image_url, link_url),
            "intro_text": text_of(section.intro),
            "items": [
                {"title": item.title,
                 "blocks": _blocks(item.body, images, image_url, link_url),
                 "text": text_of(item.body)}
                for item in section.items
            ],
        })
    header = None
    if issue.header_image:
        src = issue.header_image.src
        header = _image_view(issue.header_image, src, image_url(src), BODY_WIDTH,
                             issue.header_image.alt)
    labels = config.labels_for(issue.language)
    direction = issue.direction
    return {
        **base_context(config, issue.language),
        "issue": issue,
        # the issue's language and direction: <html lang dir>, and which side text
        # starts on (align="{{ start }}", padding-{{ start }})
        "lang": issue.language,
        "dir": direction,
        "start": "right" if direction == "rtl" else "left",
        "end": "left" if direction == "rtl" else "right",
        "issue_label": issue_label(issue, config),
        "date": issue.date.isoformat(),
        "header": header,
        "sections": sections,
        "references": refs.urls,
        "why": labels.why.format(name=config.name),
    }


def compose_mjml(context: dict[str, Any], env: jinja2.Environment) -> str:
    return _render_template(env, "email/issue.mjml.j2", context)


def compose_text(context: dict[str, Any], env: jinja2.Environment) -> str:
    text = _render_template(env, "text/issue.txt.j2", context)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


# mjml-python reads a unitless 0 in a padding as no padding at all when it computes
# Outlook's conditional widths (a divider 600 px wide instead of 550); the reference
# compiler reads it as 0px. Our own templates write 0px; a project's may not.
_PADDING = re.compile(r'(\spadding(?:-(?:top|right|bottom|left))?=")([^"]*)"')


def with_units(mjml_source: str) -> str:
    return _PADDING.sub(lambda m: m[1] + re.sub(r"(?<![\w.])0(?![\w.%])", "0px", m[2]) + '"',
                        mjml_source)


def mjml_to_html(mjml_source: str) -> str:
    import mjml

    try:
        return mjml.mjml2html(with_units(mjml_source))
    except Exception as exc:  # mrml reports template mistakes as plain exceptions
        raise IssueError.one("templates/email/issue.mjml.j2",
                             f"the composed MJML is not valid: {exc}; fix the template "
                             "(see build/<folder>/email.mjml)") from None


# MJML's reset (#outlook a, body, table, td, img, p) stays in <head>: inlined, it is
# repeated on every table, cell and image, 13% of the email's bytes. Its @media blocks
# are left as MJML wrote them too (premailer would keep them, indented anew), and every
# style in <head> loses its indentation: bytes of every email.
_MJML_HEAD_STYLE = re.compile(r'<style type="text/css">(\s*(?:#outlook a\b|@media))')
_HEAD_STYLE = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.S)


def inline_css(html: str) -> str:
    from premailer import Premailer

    logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
    html = _MJML_HEAD_STYLE.sub(r'<style type="text/css" data-premailer="ignore">\1', html)
    inlined = Premailer(
        html,
        keep_style_tags=False,  # rules that cannot be inlined (@media) are kept
        remove_classes=False,  # the @media rules select by class
        strip_important=False,
        disable_validation=True,
        allow_network=False,
        cssutils_logging_level=logging.CRITICAL,
        disable_basic_attributes=["width", "height"],  # MJML's own attributes stay
    ).transform()
    head, end, body = inlined.partition("</head>")
    head = _HEAD_STYLE.sub(lambda m: m[1] + re.sub(r"\s*\n\s*", "\n", m[2]).strip() + m[3],
                           head)
    meta = ('<meta name="color-scheme" content="light dark">'
            '<meta name="supported-color-schemes" content="light dark">')
    inlined = head.replace("<head>", "<head>" + meta, 1) + end + body
    return inlined if inlined.lstrip().lower().startswith("<!doctype") else \
        "<!doctype html>\n" + inlined


# mjml-python names the email's article after <mj-title> (the subject); a screen
# reader announces it as it does the h1: by the issue's title.
_ARTICLE = re.compile(r'<div aria-label="[^"]*"(?= aria-roledescription="email")')


def label_article(html: str, title: str) -> str:
    """The wrapper <div role="article" aria-roledescription="email"> labelled with the
    issue's title."""
    labelled, found = _ARTICLE.subn(f'<div aria-label="{html_escape(title)}"', html, count=1)
    if not found:  # a new mjml-python writes it otherwise: say so, do not ship it unlabelled
        raise AssertionError("the email's role=\"article\" wrapper was not found")
    return labelled


def size_images(html: str, context: dict[str, Any]) -> str:
    """Give each image its pixel height as an attribute (Outlook needs it) while its
    style keeps height:auto, so that it scales with the column on phones."""
    heights = {image["url"]: image["height"] for image in _image_views(context)
               if image["height"]}

    def sized(match: re.Match) -> str:
        tag = match[0]
        src = re.search(r'src="([^"]*)"', tag)
        height = heights.get(html_unescape(src[1])) if src else None
        return tag.replace('height="auto"', f'height="{height}"', 1) if height else tag

    return re.sub(r"<img\b[^>]*>", sized, html)


def _image_views(context: dict[str, Any]):
    if context["header"]:
        yield context["header"]
    for section in context["sections"]:
        blocks = list(section["intro"])
        for item in section["items"]:
            blocks += item["blocks"]
        yield from (block for block in blocks if block["kind"] == "image")


def render_issue(issue: Issue, config: Config, env: jinja2.Environment | None = None,
                 relative_assets: bool = False) -> RenderedEmail:
    env = env or template_env(config)
    context = email_context(issue, config, relative_assets)
    mjml_source = compose_mjml(context, env)
    html = size_images(inline_css(mjml_to_html(mjml_source)), context)
    html = label_article(html, issue.title)
    text = compose_text(context, env)
    assets = issue_assets(issue)
    return RenderedEmail(issue.id, issue.subject, issue.preheader, html, text, mjml_source,
                         assets, display_path(issue.folder / "issue.yaml"))


CONFIRMATION = "confirm"  # the confirmation email's slug: its outbox folder and Message-IDs


def render_confirmation(config: Config, env: jinja2.Environment | None = None
                        ) -> RenderedEmail:
    """The confirmation email of a signup, from templates/email/confirm.mjml.j2 and
    templates/text/confirm.txt.j2: rendered once, %%email%% and %%confirm_url%% filled
    per signup."""
    env = env or template_env(config)
    direction = text_direction(config.language)
    subject = config.labels.confirm_subject.format(name=config.name)
    context = {**base_context(config), "lang": config.language, "dir": direction,
               "start": "right" if direction == "rtl" else "left", "subject": subject,
               "days": config.signup.expiry.days}
    mjml_source = _render_template(env, "email/confirm.mjml.j2", context)
    html = inline_css(mjml_to_html(mjml_source))
    text = re.sub(r"\n{3,}", "\n\n", _render_template(env, "text/confirm.txt.j2", context))
    return RenderedEmail(CONFIRMATION, subject, "", html, text, mjml_source, (),
                         "templates/email/confirm.mjml.j2")


def _render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        path = display_path(exc.filename) if exc.filename else f"templates/{name}"
        raise IssueError([Problem(path, exc.lineno, f"template syntax error: {exc.message}")]
                         ) from None
    except jinja2.UndefinedError as exc:
        frames = _template_frames(exc) or [(f"templates/{name}", None)]
        path, line = frames[-1]
        via = ", ".join(f"{p}:{n}" for p, n in reversed(frames[:-1]))
        raise IssueError([Problem(path, line, f"unfilled template variable: {exc.message}; "
                                              "fix the name or provide the value"
                                              + (f" (used from {via})" if via else ""))]
                         ) from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError,
            ZeroDivisionError) as exc:  # a template's own expression fails
        frames = _template_frames(exc) or [(f"templates/{name}", None)]
        path, line = frames[-1]
        raise IssueError([Problem(path, line, f"template error: {exc}; fix the expression "
                                              "on this line")]) from None
    except jinja2.TemplateNotFound as exc:
        raise IssueError.one(f"templates/{name}", f"template '{exc.name}' not found; add it "
                                                  "under templates/") from None


def _template_frames(exc: BaseException) -> list[tuple[str, int]]:
    """The template files and lines of a rendering error, outermost first."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            frames.append((display_path(filename), tb.tb_lineno))
        tb = tb.tb_next
    return frames
