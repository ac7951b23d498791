"""build_issue: read, render and write build/<folder>/. The one writer of build files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..errors import Problem, display_path
from ..issue import read_issue
from ..render import RenderedEmail, SizeVerdict, render_issue, size_verdict
from ..render.assets import Asset, Prepared, write_assets
from ..render.mail import GMAIL_CLIP


@dataclass(frozen=True)
class BuildResult:
    rendered: RenderedEmail
    out: Path
    images: tuple[tuple[Asset, Prepared], ...] = ()
    translations: tuple[tuple[str, RenderedEmail], ...] = ()  # other editions: <out>/<lang>/

    def summary(self) -> list[str]:
        rendered = self.rendered
        lines = [f"built {display_path(self.out)}/",
                 f"  email.html  {format_size(rendered.html_size)}",
                 f"  email.txt   {format_size(len(rendered.text.encode()))}",
                 f"  assets/     {len(rendered.assets)} files"]
        for asset, prepared in self.images:
            if prepared.changed:
                (w0, h0), (w1, h1) = prepared.before, prepared.size
                lines.append(f"    {asset.name}  {w0}×{h0} → {w1}×{h1}, "
                             f"{format_size(prepared.source_size)} → "
                             f"{format_size(len(prepared.data))}")
        for language, edition in self.translations:
            lines.append(f"  {language}/  email.html {format_size(edition.html_size)}, "
                         f"email.txt {format_size(len(edition.text.encode()))}")
        return lines

    def size_finding(self) -> Problem | None:
        """Gmail clips at 102 KB: an error there (the build is kept, to look at), a
        warning near it."""
        size, where = self.rendered.html_size, f"{display_path(self.out)}/email.html"
        verdict = size_verdict(size)
        if verdict == SizeVerdict.ERROR:
            return Problem(where, None, f"{format_size(size)} reaches Gmail's "
                           f"{GMAIL_CLIP // 1024} KB limit, where it clips the message; "
                           "shorten the issue or move items to the web version")
        if verdict == SizeVerdict.WARNING:
            return Problem(where, None, f"{format_size(size)} is close to Gmail's "
                           f"{GMAIL_CLIP // 1024} KB clipping limit", "warning")
        return None


def build_issue(folder: Path, config: Config, out_root: Path | None = None) -> BuildResult:
    """The default edition at build/<folder>/, each other one at build/<folder>/<lang>/."""
    issue = read_issue(folder, config)
    rendered = render_issue(issue, config)
    out = (out_root or config.build_dir) / issue.slug
    images = write_build(rendered, out)
    translations = []
    for language, edition in issue.translations.items():
        translations.append((language, render_issue(edition, config)))
        write_build(translations[-1][1], out / language)
    return BuildResult(rendered, out, tuple(images), tuple(translations))


def write_build(rendered: RenderedEmail, out: Path) -> list[tuple[Asset, Prepared]]:
    """The email's files, and its images prepared for email (scaled to twice their
    width in the email, converted, optimised: see render.assets)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "email.html").write_text(rendered.html, encoding="utf-8")
    (out / "email.txt").write_text(rendered.text, encoding="utf-8")
    (out / "email.mjml").write_text(rendered.mjml, encoding="utf-8")
    assets = out / "assets"
    if assets.exists():
        import shutil

        shutil.rmtree(assets)
    return write_assets(rendered.assets, assets)


def format_size(size: int) -> str:
    return f"{size / 1024:.1f} KB"
