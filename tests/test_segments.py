"""Segments: readers' tags (CSV column, `audience tag`) and issue.yaml's `audience`,
counted the same way by `send --dry-run`, `status` and the send itself."""

from __future__ import annotations

import json

ISSUE = "2023-12-07-ai-productivity-09"
TAGGED = """email,name,tags
lin.xiaoyu@example.com,林晓雨,ai;research
chen.mo@example.com,陈默,AI paused
zhou.an@example.org,周安,design
wang.shu@example.net,王舒,"ai, design"
li.heng@example.com,李恒,
sun.qing@example.org,孙晴,no/such tag
"""


def tagged_audience(run, project):
    (project / "tagged.csv").write_text(TAGGED, encoding="utf-8")
    result = run("audience", "import", "tagged.csv")
    assert result.exit_code == 0, result.output
    return result


def segment(project, text: str) -> None:
    meta = project / "issues" / ISSUE / "issue.yaml"
    meta.write_text(meta.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_csv_tags_are_imported_and_a_bad_one_is_left_out_with_a_warning(run, project):
    result = tagged_audience(run, project)
    assert result.stderr == ("tagged.csv:7: warning: 'no/such' is not a tag; a tag is 1 to 32 "
                             "letters, digits, '-' or '_', starting with a letter or digit, "
                             "like ai or deep-learning; tag left out\n")
    listed = run("audience", "list", "--tag", "ai").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == [
        "lin.xiaoyu@example.com", "chen.mo@example.com", "wang.shu@example.net"]
    assert run("audience", "list", "--tag", "tag").stdout.splitlines()[0].startswith(
        "sun.qing@example.org")


def test_an_issue_for_one_tag_reaches_exactly_that_segment(run, engine, project):
    tagged_audience(run, project)
    segment(project, "audience: {tags: [ai, design], exclude: [paused]}\n")
    dry = run("send", ISSUE, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[1] == "recipients: 3 (audience: tags ai, design; not paused)"
    assert "To: =?utf-8?b?5p6X5pmT6Zuo?= <lin.xiaoyu@example.com>" in dry.stdout
    status = json.loads(run("status", ISSUE, "--json").stdout)[0]
    assert (status["readers"], status["audience"]) == (
        3, {"tags": ["ai", "design"], "exclude": ["paused"]})
    sent = run("send", ISSUE, "--yes")
    assert sent.exit_code == 0, sent.output
    assert sorted(engine.query("SELECT email FROM deliveries WHERE status = 'sent'")) == [
        ("lin.xiaoyu@example.com",), ("wang.shu@example.net",), ("zhou.an@example.org",)]
    assert len(list((project / "outbox").rglob("*.eml"))) == 3


def test_exclude_alone_takes_everyone_else(run, project):
    tagged_audience(run, project)
    segment(project, "audience:\n  exclude: [paused, research]\n")
    assert run("status", ISSUE).stdout.startswith(
        f"{ISSUE}  draft      send_at -  audience not paused, research: 4 readers")


def test_a_segment_nobody_is_in_sends_nothing_and_says_why(run, project):
    tagged_audience(run, project)
    segment(project, "audience: {tags: [sports]}\n")
    result = run("send", ISSUE, "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{ISSUE}: nobody to send to: no active reader is in its audience (tags "
        "sports); tag some (newsletter audience tag EMAIL TAG) or change `audience` in "
        "issue.yaml\n")


def test_bad_segments_are_all_reported_with_their_line(run, project):
    segment(project, "audience: {tags: [ai, 'x y'], exclude: [ai], only: 1}\n")
    result = run("check", ISSUE)
    assert result.exit_code == 1
    path = f"issues/{ISSUE}/issue.yaml:11"
    assert f"{path}: error: 'audience' has an unknown key 'only'; it takes tags and exclude" in \
        result.output
    assert f"{path}: error: audience.tags: 'x y' is not a tag;" in result.output
    assert f"{path}: error: 'audience' both wants and excludes ai;" in result.output


def test_audience_tag_adds_and_removes(run, project):
    tagged_audience(run, project)
    assert run("audience", "tag", "zhou.an@example.org", "AI", "ml").stdout == \
        "zhou.an@example.org: tags ai, design, ml\n"
    assert run("audience", "tag", "zhou.an@example.org", "--remove", "design").stdout == \
        "zhou.an@example.org: tags ai, ml\n"
    bad = run("audience", "tag", "zhou.an@example.org", "a" * 40, "ok")
    assert bad.exit_code == 1
    assert bad.stderr == (f"'{'a' * 40}' is not a tag; a tag is 1 to 32 letters, digits, '-' "
                          "or '_', starting with a letter or digit, like ai or deep-learning\n")
    missing = run("audience", "tag", "nobody@example.com", "ai")
    assert missing.exit_code == 1
    assert "'nobody@example.com' is not in the audience" in missing.stderr
    assert run("audience", "tag", "zhou.an@example.org").exit_code == 2
