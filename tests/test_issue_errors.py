"""Every class of bad issue folder: exact `path:line: message`, exit 1, no traceback."""

from __future__ import annotations

import pytest

from tests.conftest import MINIMAL_SECTION, MINIMAL_YAML, write_issue


def check_fails(run, folder: str, expected: str) -> None:
    result = run("build", folder)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr == expected + "\n"


def test_yaml_syntax_error(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML + "tags: [a, b\n",
                                  "01-news.md": MINIMAL_SECTION})
    check_fails(run, "bad", "bad/issue.yaml:5: YAML syntax error: expected ',' or ']', but "
                "got '<stream end>'; check the indentation, the colons and the quotes on "
                "this line")


def test_unknown_key_suggests_the_right_one(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML + "preheadr: Hello\n",
                                  "01-news.md": MINIMAL_SECTION})
    check_fails(run, "bad", "bad/issue.yaml:4: unknown key 'preheadr'; did you mean "
                "'preheader'?")


def test_missing_required_key(run, project):
    write_issue(project / "bad", {"issue.yaml": 'number: 3\ndate: 2024-01-31\n',
                                  "01-news.md": MINIMAL_SECTION})
    check_fails(run, "bad", "bad/issue.yaml:1: missing required key 'title'; add a line "
                "'title: \"My newsletter 01\"'")


def test_wrong_type(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML.replace("number: 3", "number: nine"),
                                  "01-news.md": MINIMAL_SECTION})
    check_fails(run, "bad", "bad/issue.yaml:1: 'number' must be a whole number like 9, "
                "not 'nine'")


def test_impossible_date(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML.replace("2024-01-31", "2023-02-30"),
                                  "01-news.md": MINIMAL_SECTION})
    check_fails(run, "bad", "bad/issue.yaml:3: 'date' is '2023-02-30', not a real date; "
                "write it as YYYY-MM-DD, like 2024-01-31")


def test_language_that_is_not_a_language_tag(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML + "language: Chinese (simplified)\n",
                                  "01-news.md": MINIMAL_SECTION})
    check_fails(run, "bad", "bad/issue.yaml:4: 'language' is 'Chinese (simplified)', not a "
                "language tag; write it like 'en', 'zh-CN' or 'ar'")
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML + "language: [en]\n"})
    check_fails(run, "bad", "bad/issue.yaml:4: 'language' must be a language tag like zh-CN, "
                "not ['en']")


def test_send_at_without_zone_when_no_default_zone(run, project):
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text().replace('timezone = "Asia/Shanghai"', ""))
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML + "send_at: 2024-01-31T09:00:00\n",
                                  "01-news.md": MINIMAL_SECTION})
    check_fails(run, "bad", "bad/issue.yaml:4: 'send_at' has no time zone and "
                "newsletter.toml sets no timezone; write it like 2024-01-31T09:00:00+08:00 or "
                "set timezone = \"Asia/Shanghai\"")


def test_send_at_without_zone_takes_the_configured_zone(project):
    from pipeline.config import load_config
    from pipeline.issue import read_issue

    folder = write_issue(project / "ok", {
        "issue.yaml": MINIMAL_YAML + "send_at: 2024-01-31T09:00:00\n",
        "01-news.md": MINIMAL_SECTION})
    issue = read_issue(folder, load_config(project / "newsletter.toml", env={}))
    assert issue.send_at.isoformat() == "2024-01-31T09:00:00+08:00"


def test_unknown_section_kind_lists_the_known_ones(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML,
                                  "01-news.md": MINIMAL_SECTION.replace("news", "nwes")})
    check_fails(run, "bad", "bad/01-news.md:2: unknown section kind 'nwes'; did you mean "
                "'news'?; known kinds: about, day, insights, news, tips (add [sections.nwes] "
                "to newsletter.toml for a new one)")


def test_section_without_front_matter(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML,
                                  "01-news.md": "## An item\n\nText.\n"})
    check_fails(run, "bad", "bad/01-news.md:1: no front matter; start the file with a line "
                "'---', then 'kind: <kind>', then '---'")


def test_missing_image(run, project):
    section = MINIMAL_SECTION + "\nMore text.\n\n![A chart](images/chart.png)\n"
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML, "01-news.md": section})
    check_fails(run, "bad", "bad/01-news.md:11: image 'images/chart.png' not found in bad; "
                "add the file or fix the path")


def test_missing_header_image(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML + "header_image: images/top.gif\n",
                                  "01-news.md": MINIMAL_SECTION})
    check_fails(run, "bad", "bad/issue.yaml:4: header_image 'images/top.gif' not found in "
                "bad; add the file or fix the path")


def test_folder_without_sections(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML})
    check_fails(run, "bad", "bad: no section files; add Markdown files such as 01-news.md, "
                "one per section, in reading order")


def test_non_utf8_file(run, project):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML,
                                  "01-news.md": MINIMAL_SECTION.encode() + "\n中文\n".encode("gbk")})
    check_fails(run, "bad", "bad/01-news.md:9: not valid UTF-8 (byte 0xd6); save the file "
                "as UTF-8")


def test_folder_that_does_not_exist(run, project):
    check_fails(run, "no-such-issue", "no-such-issue: no such issue folder; give a folder "
                "path or the name of a folder under issues/")


def test_every_problem_of_a_folder_in_one_run(run, project):
    write_issue(project / "bad", {
        "issue.yaml": 'number: x\ntitle: "T"\ndate: 2024-13-01\nheader_image: images/no.gif\n',
        "01-news.md": "no front matter\n",
        "02-tips.md": "---\nkind: tipz\n---\n\n## A\n\n![x](images/missing.png)\n",
    })
    result = run("build", "bad")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "bad/01-news.md:1: no front matter; start the file with a line '---', then "
        "'kind: <kind>', then '---'",
        "bad/02-tips.md:2: unknown section kind 'tipz'; did you mean 'tips'?; known kinds: "
        "about, day, insights, news, tips (add [sections.tipz] to newsletter.toml for a new one)",
        "bad/02-tips.md:7: image 'images/missing.png' not found in bad; add the file or fix "
        "the path",
        "bad/issue.yaml:1: 'number' must be a whole number like 9, not 'x'",
        "bad/issue.yaml:3: 'date' is '2024-13-01', not a real date; write it as YYYY-MM-DD, "
        "like 2024-01-31",
        "bad/issue.yaml:4: header_image 'images/no.gif' not found in bad; add the file or fix "
        "the path",
    ]


@pytest.mark.parametrize("front, expected", [
    ("---\nkind: news\ntitel: X\n---\n", "bad/01-news.md:3: unknown key 'titel'; did you "
                                         "mean 'title'?"),
    ("---\ntitle: X\n---\n", "bad/01-news.md:2: missing required key 'kind'; add a line "
                             "'kind: news'"),
    ("---\nkind: news\n", "bad/01-news.md:1: front matter is not closed; add a line '---' "
                          "after it"),
])
def test_section_front_matter_problems(run, project, front, expected):
    write_issue(project / "bad", {"issue.yaml": MINIMAL_YAML, "01-news.md": front + "\nText\n"})
    check_fails(run, "bad", expected)
