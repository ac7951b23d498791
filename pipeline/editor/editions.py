"""What `check` says of an issue in several languages: a section written in one
language and not another, editions whose sections hold different numbers of items, and
an edition without a subject of its own. Warnings: an edition may differ on purpose."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import Problem, display_path
from ..issue import Issue


def check_editions(issue: Issue) -> Iterator[Problem]:
    default = issue.language
    meta = display_path(issue.folder / "issue.yaml")
    originals = {section.name: section for section in issue.sections}
    for language, edition in issue.translations.items():
        # its subject is the default's, or its title where the default has a subject
        if edition.subject == issue.subject or ("subject" in issue.lines and
                                                edition.subject == edition.title != issue.title
                                                and issue.subject != issue.title):
            yield Problem(meta, issue.lines.get("subject", issue.lines.get("title")),
                          f"no subject in {language}: its readers get '{edition.subject}'; "
                          f"write subject: {{{default}: \"…\", {language}: \"…\"}}", "warning")
        translated = {section.name: section for section in edition.sections}
        for name, section in originals.items():
            other = translated.get(name)
            if other is None:
                yield Problem(section.path, None, f"no {language} translation ({name}."
                              f"{language}.md): readers of {language} get the issue without "
                              "this section", "warning")
            elif len(other.items) != len(section.items):
                yield Problem(other.path, None, f"{len(other.items)} items, and its {default} "
                              f"original {section.path.rsplit('/', 1)[-1]} has "
                              f"{len(section.items)}; translate every item, or make both "
                              "say the same", "warning")
        for name, section in translated.items():
            if name not in originals:
                yield Problem(section.path, None, f"no {default} section {name}.md beside "
                              f"it: only readers of {language} get this section", "warning")
