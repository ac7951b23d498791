"""build_issue: read, render and write build/<folder>/. The one writer of build files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..issue import read_issue
from ..render import RenderedEmail, render_issue, size_verdict
from ..render.assets import copy_assets


@dataclass(frozen=True)
class BuildResult:
    rendered: RenderedEmail
    out: Path

    @property
    def size_verdict(self) -> str:
        return size_verdict(self.rendered.html_size)


def build_issue(folder: Path, config: Config, out_root: Path | None = None) -> BuildResult:
    issue = read_issue(folder, config)
    rendered = render_issue(issue, config)
    out = (out_root or config.build_dir) / issue.slug
    write_build(rendered, out)
    return BuildResult(rendered, out)


def write_build(rendered: RenderedEmail, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "email.html").write_text(rendered.html, encoding="utf-8")
    (out / "email.txt").write_text(rendered.text, encoding="utf-8")
    (out / "email.mjml").write_text(rendered.mjml, encoding="utf-8")
    assets = out / "assets"
    if assets.exists():
        import shutil

        shutil.rmtree(assets)
    copy_assets(rendered.assets, assets)


def format_size(size: int) -> str:
    return f"{size / 1024:.1f} KB"
