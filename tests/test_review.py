"""`newsletter review [BASE]`: a real git repository with two commits of an issue; the
report names the changed text, the findings and the audience, and Chromium writes the
four screenshots."""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image

ISSUE = "2023-12-07-ai-productivity-09"


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True,
                          text=True, timeout=30).stdout.strip()


def two_commits(project: Path) -> tuple[str, str]:
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.email", "editor@example.com")
    git(project, "config", "user.name", "Editor")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the publication")
    first = git(project, "rev-parse", "HEAD")
    section = project / "issues" / ISSUE / "03-insights.md"
    text = section.read_text()
    assert "## " in text
    section.write_text(text + "\n## 新加的一条\n\n[点击这里](https://example.com/new-insight)"
                              "讲的是模型评测的新方法。\n")
    git(project, "commit", "-q", "-am", "a new insight")
    return first, git(project, "rev-parse", "HEAD")


def test_review_between_two_commits(run, audience, project):
    first, _ = two_commits(project)
    result = run("review", first, "--out", "review")
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"reviewed 1 issues changed since {first[:12]}: review/report.md\n"
                             f"  issues/{ISSUE}\n")
    report = (project / "review" / "report.md").read_text()
    assert report.startswith(f"## Newsletter review against {first[:12]}\n")
    assert f"### issues/{ISSUE}\n" in report
    assert "- **Subject:** AI生产力快报｜09：Colab 直接调用 transformers" in report
    assert "- **Audience:** 12 readers (every active reader; outbox)" in report
    assert (f"  - `issues/{ISSUE}/03-insights.md:") in report
    assert "warning: link text '点击这里' says nothing out of context" in report
    diff = report.split("```diff\n", 1)[1].split("```", 1)[0]
    assert "+ 新加的一条" in diff or "{+新加的一条" in diff
    assert "讲的是模型评测的新方法" in diff
    assert all(line.startswith(("+ ", "- ")) for line in diff.splitlines())
    folder = project / "review" / ISSUE
    assert (folder / "report.md").is_file()
    for name, width in (("600-light", 600), ("600-dark", 600), ("375-light", 375),
                        ("375-dark", 375)):
        with Image.open(folder / f"{name}.png") as shot:
            assert shot.width == width and shot.height > 800
    with Image.open(folder / "600-light.png") as light, \
            Image.open(folder / "600-dark.png") as dark:
        corner = (5, 5)
        assert sum(light.convert("RGB").getpixel(corner)) > sum(dark.convert("RGB")
                                                                 .getpixel(corner))


def test_review_of_an_unchanged_tree_and_the_default_base(run, project):
    two_commits(project)
    git(project, "checkout", "-q", "-b", "edit")
    result = run("review", "--no-screenshots")  # the merge base with main: HEAD itself
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("reviewed 0 issues changed since ")
    assert (project / "review" / "report.md").read_text().endswith("No issue changed.\n")


def test_review_outside_git_or_with_an_unknown_base_is_a_usage_error(run, project):
    outside = run("review")
    assert outside.exit_code == 2
    assert outside.stderr.endswith("is not in a git repository; review compares the issues "
                                   "with a commit: run it in the publication's git work "
                                   "tree\n")
    two_commits(project)
    for base in ("no-such-branch", "--output=/tmp/x"):
        unknown = run("review", "--", base)  # after --, an option-like BASE is a name
        assert unknown.exit_code == 2, unknown.output
        assert f"unknown BASE '{base}'; give a branch, tag or commit" in unknown.stderr


def audience_lines(project: Path) -> list[str]:
    report = (project / "review" / "report.md").read_text()
    return [line for line in report.splitlines() if line.startswith("- **Audience:**")]


def test_the_audience_line_counts_and_names_the_issues_segment(run, project):
    """The segment of issue.yaml, counted as `send --dry-run` counts it."""
    from tests.test_segments import segment, tagged_audience

    tagged_audience(run, project)
    first, _ = two_commits(project)
    segment(project, "audience: {tags: [ai, design], exclude: [paused]}\n")
    dry = run("send", ISSUE, "--dry-run")
    assert dry.stdout.splitlines()[1] == "recipients: 3 (audience: tags ai, design; not paused)"
    result = run("review", first, "--no-screenshots")
    assert result.exit_code == 0, result.output
    assert audience_lines(project) == [
        "- **Audience:** 3 readers (the segment tags ai, design; not paused; outbox)"]
    git(project, "commit", "-q", "-am", "for the ai and design readers")
    sent = run("send", ISSUE, "--yes")
    assert sent.exit_code == 0, sent.output
    tagged = project / "more.csv"
    tagged.write_text("email,name,tags\nnew.reader@example.com,新读者,ai\n")
    assert run("audience", "import", "more.csv").exit_code == 0
    assert run("review", first, "--no-screenshots").exit_code == 0
    # a sent issue's audience is its ledger's (as a resumed send has it): a reader who
    # joined since is not in it
    assert audience_lines(project) == [
        "- **Audience:** 0 readers still to send; 3 already sent (the segment tags ai, "
        "design; not paused; outbox)"]
