"""Golden files for the sample issues: `make golden` rewrites them on purpose.

The tests compare a fresh render of each sample under tests/fixtures/publication/issues/
(frozen copies of the repository's samples, rendered with that publication's
newsletter.toml and the package's templates) with these files; a difference is either a
regression or an intended change to re-bless with `make golden`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_config
from pipeline.issue import read_issue
from pipeline.render import render_issue

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
PUBLICATION = Path(__file__).resolve().parent / "fixtures" / "publication"


def render_sample(folder: Path, root: Path = PUBLICATION):
    config = load_config(root / "newsletter.toml", env={})
    return render_issue(read_issue(folder, config), config)


def samples(root: Path = PUBLICATION) -> list[Path]:
    return sorted(p for p in (root / "issues").iterdir() if (p / "issue.yaml").is_file())


def main() -> None:
    for folder in samples():
        rendered = render_sample(folder)
        out = GOLDEN / folder.name
        out.mkdir(parents=True, exist_ok=True)
        (out / "email.html").write_text(rendered.html, encoding="utf-8")
        (out / "email.txt").write_text(rendered.text, encoding="utf-8")
        print(f"wrote {out.relative_to(ROOT)}/email.html, email.txt")


if __name__ == "__main__":
    main()
