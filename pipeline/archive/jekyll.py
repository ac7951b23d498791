"""export --format jekyll: an issue as a post for a team's existing Jekyll blog.

The post is HTML (``_posts/DATE-slug.html``, front matter and a body), and its body is
the archive page's HTML: the same one Markdown → HTML path (``render.pages``, with
raw HTML off and the URL allow-list), never the contributors' Markdown, so neither a
``<script>`` nor kramdown's reading of the text reaches the blog.

Jekyll runs Liquid over every post. So that nothing in the content can form a Liquid
tag (``{{ site.time }}``, ``{% include x %}``, ``{% endraw %}``), every brace of the
body is written as an HTML entity (``&#123;``, ``&#125;``), which a browser shows as
the brace. The only Liquid in the file is the export's own: each local image's URL
through Jekyll's ``relative_url`` filter, so that it resolves under the blog's
``baseurl``. The front matter is YAML with every string double-quoted, which Jekyll
reads back exactly; Jekyll renders no Liquid in it.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from ..config import Config
from ..errors import PipelineError, display_path
from ..issue import Issue
from ..render import template_env
from ..render.assets import asset_paths, issue_assets, write_assets
from ..render.pages import page_context
from ..render.templates import base_context


@dataclass(frozen=True)
class JekyllPost:
    path: Path  # _posts/DATE-slug.html
    replaced: Path | None = None  # the .md post an earlier version of export wrote


def export_jekyll(issue: Issue, config: Config, out: Path) -> JekyllPost:
    """_posts/YYYY-MM-DD-<slug>.html with front matter, images under assets/<id>/ (the
    issue's id, not its folder: a renamed folder exports to the same post). Exporting
    again replaces the post, and the .md post of earlier versions of this export."""
    slug = re.sub(r"^\d{4}-\d{2}-\d{2}-", "", issue.id)
    post = out / "_posts" / f"{issue.date.isoformat()}-{slug}.html"
    earlier = post.with_suffix(".md")
    text = f"---\n{post_front_matter(issue, config)}---\n\n{post_body(issue, config)}"
    try:
        write_assets(issue_assets(issue), out / "assets" / issue.id)
        post.parent.mkdir(parents=True, exist_ok=True)
        post.write_text(text, encoding="utf-8")
        replaced = earlier if earlier.is_file() else None
        if replaced:  # two posts at one URL: Jekyll would keep either
            replaced.unlink()
    except OSError as exc:
        raise PipelineError(f"cannot write the post: {exc.strerror or exc}",
                            path=display_path(Path(exc.filename or out))) from None
    return JekyllPost(post, replaced)


def post_front_matter(issue: Issue, config: Config) -> str:
    """The YAML between the --- lines: layout, title, date, tags, the preheader as the
    excerpt, then [jekyll] front_matter (which may not set those: config refuses it)."""
    front: dict[str, Any] = {"layout": config.jekyll.layout, "title": issue.title,
                             "date": issue.date, "tags": list(issue.tags)}
    if issue.preheader:  # Jekyll's excerpts are HTML, and themes print them as such
        front["excerpt"] = html.escape(issue.preheader, quote=False)
    front.update(config.jekyll.front_matter)
    return yaml.dump(_quoted(front), Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                     width=1 << 30)


def post_body(issue: Issue, config: Config) -> str:
    """The archive page's content (header image, credits, sections) with its braces
    as entities and local images at {{ '/assets/<id>/<path>' | relative_url }}."""
    local = asset_paths(issue)
    marker = f"jekyll-image-{secrets.token_hex(8)}-"  # no content can guess it
    paths: list[str] = []

    def image_url(src: str) -> str:
        if src not in local:
            return src
        paths.append(f"/assets/{issue.id}/{local[src]}")
        return f"{marker}{len(paths) - 1}-"

    page = template_env(config).get_template("web/_content.html.j2").render(
        **base_context(config), **page_context(issue, image_url))
    page = page.strip().replace("{", "&#123;").replace("}", "&#125;") + "\n"
    return re.sub(rf"{marker}(\d+)-", lambda m: relative_url(paths[int(m[1])]), page)


def relative_url(path: str) -> str:
    """Liquid that prints path under the site's baseurl. The path is percent-encoded,
    so it holds no quote or brace to end the string or the tag early."""
    return "{{ '" + quote(path, safe="/") + "' | relative_url }}"


# --- YAML that Jekyll (Ruby's Psych) reads back exactly --------------------------------


class _Quoted(str):
    """A string written double-quoted: PyYAML leaves some plain that Psych reads
    otherwise (1,000 is a number to Psych), and writes U+0085 raw in single quotes,
    where Psych folds it to a space. In double quotes every string is escaped."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Quoted, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style='"'))
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # PyYAML quotes yes/null/... itself


def _quoted(value: Any) -> Any:
    if isinstance(value, dict):
        return {(k if isinstance(k, str) and _PLAIN_KEY.fullmatch(k) else _quoted(k)):
                _quoted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_quoted(v) for v in value]
    if isinstance(value, str):
        return _Quoted(value)
    return value
