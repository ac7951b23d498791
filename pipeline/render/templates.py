"""The Jinja2 templates: the project's own templates/ first, then the package's.

A publication made by `newsletter init` has no templates/ and uses the package's; a
project's templates/ overrides any file of them (`newsletter templates copy` puts the
package's there to customise).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import jinja2

from ..config import Config
from .columns import TEXT_WIDTH, display_width, joins_without_space, wrap


def package_templates() -> Path:
    """The templates shipped with the package (the repository's templates/ in a
    source checkout or an editable install)."""
    spec = importlib.util.find_spec("pipeline.templates")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():  # an installed wheel: site-packages/pipeline/templates
            return Path(location)
    # setuptools' editable finder cannot find a namespace package mapped under a regular
    # package (pipeline.templates -> templates/), so in a checkout: its templates/
    return Path(__file__).resolve().parents[2] / "templates"


def template_folders(config: Config) -> list[Path]:
    own = config.root / "templates"
    return [own, package_templates()] if own.is_dir() else [package_templates()]


def template_env(config: Config) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_folders(config)),
        autoescape=lambda name: name is not None and not name.startswith("text/"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = lambda text, width=TEXT_WIDTH: wrap(str(text), width)
    env.filters["width"] = lambda text: display_width(str(text))
    env.filters["rule"] = rule
    env.filters["colon"] = colon
    return env


def rule(text: str, char: str = "-") -> str:
    """A line under text, as wide as it is shown (CJK counts two), at most TEXT_WIDTH."""
    return char * min(display_width(str(text)), TEXT_WIDTH)


def colon(label: str) -> str:
    """A label and its colon: full-width after Chinese or Japanese, ': ' otherwise."""
    label = str(label)
    return f"{label}：" if label and joins_without_space(label[-1], "中") else f"{label}: "


def issue_label(issue, config: Config) -> str:
    """"Issue 9", in the publication's words ([labels] issue)."""
    return config.labels_for(issue.language).issue.format(number=issue.number)


def base_context(config: Config, language: str | None = None) -> dict[str, Any]:
    """What every template sees: the publication's settings, words (in an edition's
    language: [labels.<language>]) and colours."""
    labels = config.labels_for(language) if language else config.labels
    return {"config": config, "labels": labels, "colors": config.colors,
            "sender": config.sender}
