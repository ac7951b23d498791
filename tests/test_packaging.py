"""pyproject.toml lists every package folder; the templates are found in a checkout.
(tests/test_wheel.py builds and installs the wheel itself.)"""

from __future__ import annotations

import tomllib

from pipeline.render.templates import package_templates
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def folders(top: str, package: str) -> set[str]:
    """top and every folder under it, as dotted package names."""
    base = ROOT / top
    return {package} | {".".join((package, *path.relative_to(base).parts))
                        for path in base.rglob("*")
                        if path.is_dir() and "__pycache__" not in path.parts}


def test_every_folder_is_a_listed_package():
    """A folder missing from `packages` would be missing from the wheel: the listing is
    by hand because pipeline.templates lives in the top-level templates/."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert listed == folders("pipeline", "pipeline") | folders("templates", "pipeline.templates")
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"pipeline.templates": "templates"}


def test_distribution_name_and_license():
    project = PYPROJECT["project"]
    assert project["name"] == "newsletter-as-code"
    assert project["scripts"] == {"newsletter": "pipeline.cli:main"}
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert "Copyright (c) 2026 the newsletter authors" in (ROOT / "LICENSE").read_text()


def test_templates_of_a_checkout():
    # an editable install (or no install) uses the checkout's templates/
    assert package_templates() == ROOT / "templates"
    assert (package_templates() / "email" / "issue.mjml.j2").is_file()
