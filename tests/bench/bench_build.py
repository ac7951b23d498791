"""Build benchmark: median time of each stage for the sample issue of the tests' fixture
publication (tests/fixtures/publication/), in process, the whole-process time of
`newsletter build` (Python start-up and imports included), and each sample's HTML size
against the size at which Gmail clips a message."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLICATION = ROOT / "tests" / "fixtures" / "publication"
SAMPLE = "2023-12-07-ai-productivity-09"


def median_ms(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def main(runs: int = 20) -> None:
    from pipeline.config import load_config
    from pipeline.issue import read_issue
    from pipeline.render import template_env
    from pipeline.render.mail import (
        compose_mjml,
        compose_text,
        email_context,
        inline_css,
        mjml_to_html,
    )

    config = load_config(PUBLICATION / "newsletter.toml", env={})
    folder = PUBLICATION / "issues" / SAMPLE
    env = template_env(config)
    stages = {}
    stages["read"], issue = median_ms(lambda: read_issue(folder, config), runs)
    stages["context (Markdown)"], context = median_ms(lambda: email_context(issue, config), runs)
    stages["Jinja2 → MJML"], mjml_source = median_ms(lambda: compose_mjml(context, env), runs)
    stages["MJML → HTML"], html = median_ms(lambda: mjml_to_html(mjml_source), runs)
    stages["premailer"], _ = median_ms(lambda: inline_css(html), runs)
    stages["text"], _ = median_ms(lambda: compose_text(context, env), runs)
    print(f"build stages, {SAMPLE}, median of {runs} runs:")
    for name, ms in stages.items():
        print(f"  {name:<20} {ms:8.2f} ms")
    print(f"  {'total':<20} {sum(stages.values()):8.2f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(PUBLICATION, tmp, dirs_exist_ok=True)
        exe = Path(sys.executable).with_name("newsletter")
        walls = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([str(exe), "build", SAMPLE], cwd=tmp, check=True,
                           capture_output=True)
            walls.append((time.perf_counter() - start) * 1000)
        print(f"  `newsletter build` whole process, median of 5: "
              f"{statistics.median(walls):.0f} ms")
    print_sizes(config)


def print_sizes(config) -> None:
    """Each sample's email.html against Gmail's 102 KB: beyond it Gmail shows "[Message
    clipped]" and hides the rest, the unsubscribe link with it."""
    from pipeline.issue import read_issue
    from pipeline.render import render_issue
    from pipeline.render.mail import GMAIL_CLIP

    print("HTML size, each sample:")
    for folder in sorted(p for p in (PUBLICATION / "issues").iterdir()
                         if (p / "issue.yaml").is_file()):
        size = render_issue(read_issue(folder, config), config).html_size
        print(f"  {folder.name:<32} email.html {size / 1024:.1f} KB of Gmail's "
              f"{GMAIL_CLIP // 1024} KB ({size / GMAIL_CLIP:.0%})")


if __name__ == "__main__":
    main()
