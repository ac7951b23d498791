"""UTM tagging of an email's external links ([links] in newsletter.toml).

The tags go on at render time, on the links of the issue's Markdown, so the HTML and
the text part carry the same URLs; the templates' own links (%%web_url%%,
%%unsubscribe_url%%) never pass through here. A link keeps its query string and
fragment byte for byte: the tags are appended to the query, before the fragment.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..config import Config
from ..issue import Issue

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")


def tag_url(url: str, tags: dict[str, str]) -> str:
    """url with the tags appended to its query (before any #fragment); a tag the URL
    already carries is left as the editor wrote it."""
    base, hash_, fragment = url.partition("#")
    parts = urlsplit(base)
    query = parts.query
    present = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    added = urlencode([(name, value) for name, value in tags.items()
                       if value and name not in present])
    if not added:
        return url
    if not parts.path and "?" not in base:  # https://example.com -> https://example.com/
        base += "/"
    joiner = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{joiner}{added}{hash_}{fragment}"


def is_taggable(url: str, own: tuple[str, ...]) -> bool:
    """An absolute http(s) link to someone else's site: not mailto:, not relative, not a
    %%placeholder%%, not the publication's own archive, unsubscribe or asset URLs."""
    if "%%" in url:
        return False
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unbalanced [ in the host: leave it as written
        return False
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return False
    return not any(url.startswith(base) and url[len(base):len(base) + 1] in ("", "/", "?", "#")
                   for base in own)


def issue_tags(issue: Issue, config: Config, language: str | None = None) -> dict[str, str]:
    """The utm_* values for an issue (and edition): empty when tagging is off."""
    links = config.links
    if not links.tag or not issue.tag_links:
        return {}
    fields = {"id": issue.id, "number": issue.number, "lang": language or issue.language}
    tags = {"utm_source": links.utm_source.format(**fields),
            "utm_medium": links.utm_medium.format(**fields),
            "utm_campaign": links.utm_campaign.format(**fields)}
    return {name: value for name, value in tags.items() if value}


def link_tagger(issue: Issue, config: Config, language: str | None = None
                ) -> Callable[[str], str]:
    """href -> the href the email carries: tagged when it is an external link."""
    tags = issue_tags(issue, config, language)
    if not tags:
        return str
    own = tuple(base for base in (config.archive_url, config.unsubscribe_url,
                                  config.asset_url) if base)

    def link_url(href: str) -> str:
        return tag_url(href, tags) if is_taggable(href, own) else href

    return link_url
