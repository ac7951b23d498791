"""The audience as CSV: import (strict: a file is read whole or not at all, every
problem with its line) and export (cells a spreadsheet would run as formulas as text)."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TextIO

from ..errors import PipelineError, Problem, ProblemsError, display_path
from ..issue.segment import MAX_TAGS, split_tags, tag_problem
from ..store import Database, transaction
from .addresses import email_problem, name_problem, shown
from .csv_formats import LEFT, SKIPPED, SUPPRESSED, Columns, ColumnsError, columns_for
from .csv_text import Encoding, StrictReader, cell_limit, detect_encoding
from .queries import (
    CONSENT,
    PAGE,
    add_tags,
    begin_import,
    end_import,
    imported_row,
    language_problem,
    note_imported_row,
    set_language,
    subscribers,
    suppress,
    tags_by_reader,
    upsert,
)

MAX_WARNINGS = 100  # shown; the summary counts them all


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_unsubscribed: int = 0
    left: int = 0  # recorded unsubscribed or suppressed, as the file says
    left_reasons: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # rows, by reason
    warnings: list[Problem] = field(default_factory=list)
    unshown_warnings: int = 0
    read_as: str = ""  # the export, encoding and delimiter, when not a plain UTF-8 CSV

    def summary(self) -> str:
        parts = [f"added {self.added}", f"updated {self.updated}",
                 f"unchanged {self.unchanged}", f"kept unsubscribed {self.kept_unsubscribed}"]
        if self.left:
            parts.append(f"imported as unsubscribed {self.left} ({_counted(self.left_reasons)})")
        skipped = sum(self.skipped.values())
        parts.append(f"skipped {skipped}" + (f" ({_counted(self.skipped)})" if skipped else ""))
        return ", ".join(parts) + (f"; read as {self.read_as}" if self.read_as else "")

    def warn(self, path: str, line: int, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(Problem(path, line, message, "warning"))
        else:
            self.unshown_warnings += 1

    def count(self, outcome: str, why: str = "", change: int = 1) -> None:
        """One reader more (or fewer) in the outcome's count; ``why`` one who left."""
        setattr(self, outcome, getattr(self, outcome) + change)
        if outcome == "left" and change > 0:
            self.left_reasons[why] += 1


def _counted(reasons: Counter[str]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in reasons.items())


def import_csv(db: Database, path: Path, now: datetime, encoding: str | None = None,
               mapping: dict[str, str] | None = None) -> ImportReport:
    """Import a CSV of readers, or refuse it whole (ProblemsError with every problem of
    its shape: a stray quote, a row with a cell too many, a header naming a column
    twice...). Rows with an unusable address or name are skipped with a warning.

    The encoding is detected (csv_text) unless given; an export of Mailchimp, Substack,
    Buttondown or listmonk is recognised by its header (csv_formats), and its readers who
    left are imported unsubscribed (or suppressed), never active. ``mapping`` (--map)
    names the email and name columns. Duplicate addresses merge case-insensitively, the
    later row winning (its name, when it has one, and its cells); a re-import changes
    nothing; an address that unsubscribed stays unsubscribed."""
    shown_path = display_path(path)
    try:
        found = detect_encoding(path, shown_path, encoding)
        handle = path.open(encoding=found.codec, newline="")
    except FileNotFoundError:
        raise PipelineError("file not found", path=shown_path) from None
    except OSError as error:
        raise PipelineError(f"cannot be read: {error.strerror or error}",
                            path=shown_path) from None
    with handle, cell_limit(), transaction(db):
        reader = StrictReader(handle, shown_path)
        header = reader.header()
        if header is None:
            if reader.errors:
                raise ProblemsError(reader.errors)
            raise PipelineError("the file is empty; the first line must name the columns, "
                                "like: email,name", path=shown_path, line=1)
        try:
            columns = columns_for(header.cells, mapping)
        except ColumnsError as error:
            raise ProblemsError(Problem(shown_path, header.line, message)
                                for message in error.messages) from None
        report = ImportReport(read_as=_read_as(columns, found, reader.delimiter))
        begin_import(db)
        unnamed = set(columns.unnamed)  # fine while empty; said once when not
        for row in reader.rows(len(header.cells), columns.email):
            for at in [at for at in unnamed if row.cells[at].strip()]:
                unnamed.discard(at)
                reader.errors.append(Problem(shown_path, header.line, f"column {at + 1} has no "
                                             f"name, but line {row.line} has a value in it; "
                                             "name the column or remove the value"))
            if not reader.errors:  # a file with errors is only checked, never imported
                _import_row(db, columns, row.cells, shown_path, row.line, now, report)
        if reader.errors:
            raise ProblemsError(reader.errors)
        end_import(db)
    return report


def _read_as(columns: Columns, encoding: Encoding, delimiter: str) -> str:
    said = [columns.format.label] if columns.format.label else []
    if not encoding.is_utf8:
        said.append(encoding.label)
    if delimiter != ",":
        said.append({";": "semicolon-separated", "\t": "tab-separated"}.get(
            delimiter, f"separated by '{delimiter}'"))
    return ", ".join(said)


def _import_row(db: Database, columns: Columns, cells: list[str], path: str,
                line: int, now: datetime, report: ImportReport) -> None:
    reader = columns.read(cells)
    email, name = reader.email, restored(reader.name)
    problem = email_problem(email) or name_problem(name)
    if problem:
        reason = ("no address" if not email else "invalid address" if email_problem(email)
                  else "invalid name")
        report.skipped[reason] += 1
        report.warn(path, line, f"{problem}; row skipped")
        return
    state = reader.state
    if state and state.kind == SKIPPED:
        report.skipped[state.reason] += 1
        report.warn(path, line, f"{state.detail}; row skipped")
        return
    fields = {key: restored(value) for key, value in reader.fields.items()}
    tags = _tags(fields.pop("tags", ""), path, line, report)
    language = fields.pop("language", "").strip()
    if language and language_problem(language):
        report.warn(path, line, f"{language_problem(language)}; the reader is kept without one")
        language = ""
    outcome = upsert(db, email, name, fields, now, left=bool(state and state.kind == LEFT))
    if language and set_language(db, email, language, now) and outcome == "unchanged":
        outcome = "updated"
    if tags:
        reader_id = db.execute("SELECT id FROM subscribers WHERE email_key = ?",
                               (email.lower(),)).fetchone()[0]
        add_tags(db, reader_id, tags)
    if state and state.kind == SUPPRESSED and suppress(db, email, state.suppression,
                                                       "import", now):
        outcome = "left"
    why = state.reason if state else ""
    earlier = imported_row(db, email)
    if earlier is None:
        note_imported_row(db, email, line, outcome)
        report.count(outcome, why)
        return
    first_line, first_outcome = earlier
    report.skipped["duplicate row merged"] += 1
    report.warn(path, line, f"{shown(email)} already appears on line {first_line}; the later "
                "row wins")
    merged = _merged(first_outcome, outcome)
    if merged != first_outcome:
        report.count(first_outcome, change=-1)
        report.count(merged, why)
        note_imported_row(db, email, first_line, merged)


def _tags(cell: str, path: str, line: int, report: ImportReport) -> list[str]:
    """The tags of the ``tags`` column (comma, semicolon or space separated); one that is
    not a tag is left out, with a warning."""
    tags = []
    for tag in dict.fromkeys(split_tags(cell)):
        problem = tag_problem(tag)
        if problem:
            report.warn(path, line, f"{problem}; tag left out")
        elif len(tags) < MAX_TAGS:
            tags.append(tag)
    return tags


def _merged(first: str, later: str) -> str:
    """The outcome of an address given twice: what the first row did, unless the later
    one made the reader leave, or changed a reader the first left unchanged."""
    if later == "left" or (first == "unchanged" and later == "updated"):
        return later
    return first


# A cell a spreadsheet would run as a formula (CSV injection): written with a leading
# apostrophe, which spreadsheets show as text; import takes it off again.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def restored(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def export_csv(db: Database, handle: TextIO) -> int:
    """Every subscriber, with status, tags (space-separated, as import reads them),
    consent record (empty for a reader who did not sign up through `serve`) and custom
    columns, as CSV on handle; how many."""
    keys: set[str] = set()
    languages = False  # a language column only when a reader has a language
    for sub in subscribers(db, "all"):  # a page at a time, on either database
        keys.update(sub.fields)
        languages = languages or bool(sub.language)
    extra = [k for k in sorted(keys) if k not in CONSENT and k not in ("tags", "language")]
    written = 0
    out = csv.writer(handle)
    own = ["language"] if languages else []
    out.writerow(["email", "name", "status", *own, "tags", *CONSENT,
                  *(neutralised(k) for k in extra)])
    readers = subscribers(db, "all")
    while page := list(islice(readers, PAGE)):
        tags = tags_by_reader(db, [sub.id for sub in page])
        for sub in page:
            status = f"suppressed:{sub.suppressed}" if sub.suppressed else sub.status
            language = [sub.language] if languages else []
            out.writerow([neutralised(cell) for cell in (
                sub.email, sub.name, status, *language, " ".join(tags.get(sub.id, ())),
                *(sub.consent.get(k) or "" for k in CONSENT),
                *(sub.fields.get(k, "") for k in extra))])
            written += 1
    return written
