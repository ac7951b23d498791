"""Smoke test of the repository's real publication: every folder under issues/ builds
with the root newsletter.toml and templates/.

The rest of the suite uses its own frozen copy (tests/fixtures/publication/), so an
editor's work under issues/ can only fail this test, and an empty issues/ skips it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import App, cli
from tests.conftest import ROOT

ISSUES = ROOT / "issues"


def issue_folders() -> list[Path]:
    if not ISSUES.is_dir():
        return []
    return sorted(p for p in ISSUES.iterdir() if p.is_dir() and not p.name.startswith("."))


def cases() -> list:
    folders = issue_folders()
    if not folders:
        return [pytest.param(None, id="no-issues", marks=pytest.mark.skip(
            reason=f"{ISSUES} has no issue folders: nothing to smoke-test"))]
    return [pytest.param(folder, id=folder.name) for folder in folders]


@pytest.mark.parametrize("folder", cases())
def test_every_issue_in_the_repository_builds(folder: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    args = ["--config", str(ROOT / "newsletter.toml"), "build", str(folder),
            "--out", str(tmp_path / "out")]
    # env={}: the build reads newsletter.toml alone, not the caller's NEWSLETTER_* overrides
    result = CliRunner().invoke(cli, args, obj=App(env={}), catch_exceptions=False)
    assert result.exit_code == 0, f"newsletter build issues/{folder.name}:\n{result.output}"
    out = tmp_path / "out" / folder.name
    assert (out / "email.html").stat().st_size > 0
    assert (out / "email.txt").stat().st_size > 0
