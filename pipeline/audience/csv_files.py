"""The audience as CSV: import (every row checked, problems with their line) and export."""

from __future__ import annotations

import csv
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ..errors import PipelineError, Problem, display_path
from ..store import transaction
from .addresses import email_problem, name_problem
from .queries import subscribers, upsert


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_unsubscribed: int = 0
    skipped: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        return (f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
                f"kept unsubscribed {self.kept_unsubscribed}, skipped {len(self.skipped)}")


def import_csv(db: sqlite3.Connection, path: Path, now: datetime) -> ImportReport:
    """Rows with a valid address are all kept; invalid ones are reported with their line.

    Duplicates merge case-insensitively (the last row wins), a re-import changes
    nothing, and an address that unsubscribed stays unsubscribed.
    """
    shown = display_path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise PipelineError("file not found", path=shown) from None
    report = ImportReport()
    with handle, transaction(db):
        try:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
        except UnicodeDecodeError:
            raise PipelineError("not UTF-8; save the CSV as UTF-8", path=shown, line=1) from None
        if "email" not in header:
            raise PipelineError("the header has no 'email' column; the first line must name "
                                "the columns, like: email,name", path=shown, line=1)
        reader.fieldnames = header
        row_line = 1
        try:
            for row in reader:
                line, row_line = row_line + 1, reader.line_num
                _import_row(db, row, shown, line, now, report)
        except UnicodeDecodeError:
            raise PipelineError("not valid UTF-8 after this line; save the CSV as UTF-8",
                                path=shown, line=row_line) from None
        except csv.Error as exc:
            raise PipelineError(f"CSV syntax error: {exc}", path=shown,
                                line=reader.line_num) from None
    return report


def _import_row(db, row: dict, shown: str, line: int, now: datetime,
                report: ImportReport) -> None:
    email = (row.pop("email", "") or "").strip()
    name = restored((row.pop("name", "") or "").strip())
    row.pop(None, None)  # cells beyond the header
    row.pop("status", None)  # an export's own column: who left stays as the database says
    problem = email_problem(email) or name_problem(name)
    if problem:
        report.skipped.append(Problem(shown, line, f"{problem}; row skipped", "warning"))
        return
    fields = {k: restored(v.strip()) for k, v in row.items() if k and v and v.strip()}
    outcome = upsert(db, email, name, fields, now)
    setattr(report, outcome, getattr(report, outcome) + 1)


# A cell a spreadsheet would run as a formula (CSV injection): written with a leading
# apostrophe, which spreadsheets show as text; import takes it off again.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def restored(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def export_csv(db: sqlite3.Connection, handle: TextIO) -> int:
    """Every subscriber, with status and custom columns, as CSV on handle; how many."""
    keys: set[str] = set()
    for (fields,) in db.execute("SELECT fields FROM subscribers"):
        keys.update(json.loads(fields))
    extra = sorted(keys)
    written = 0
    out = csv.writer(handle)
    out.writerow(["email", "name", "status", *(neutralised(k) for k in extra)])
    for sub in subscribers(db, "all"):
        status = f"suppressed:{sub.suppressed}" if sub.suppressed else sub.status
        out.writerow([neutralised(cell) for cell in (sub.email, sub.name, status,
                                                      *(sub.fields.get(k, "") for k in extra))])
        written += 1
    return written
