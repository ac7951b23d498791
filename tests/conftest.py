"""Shared fixtures: a copy of the publication in a temporary folder, and a CLI runner
with an injected environment and clock (nothing is patched)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import App, cli

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOW = datetime(2023, 12, 6, 8, 0, tzinfo=UTC)
SECRET = "test-secret-4f1c2a"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """newsletter.toml, templates/ and issues/ copied into a fresh folder (the cwd)."""
    shutil.copy(ROOT / "newsletter.toml", tmp_path / "newsletter.toml")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Runner:
    def __init__(self, project: Path):
        self.project = project
        self.env: dict[str, str] = {"NEWSLETTER_SECRET": SECRET}
        self.now = NOW

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None):
        app = App(self.project / "newsletter.toml", env={**self.env, **(env or {})},
                  clock=lambda: self.now)
        return CliRunner().invoke(cli, list(args), obj=app, input=input,
                                  catch_exceptions=False)


@pytest.fixture
def run(project: Path) -> Runner:
    return Runner(project)


def write_issue(folder: Path, files: dict[str, str | bytes]) -> Path:
    """An issue folder with exactly these files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


MINIMAL_YAML = 'number: 3\ntitle: "Test issue"\ndate: 2024-01-31\n'
MINIMAL_SECTION = "---\nkind: news\n---\n\n## An item\n\nSome text.\n"
