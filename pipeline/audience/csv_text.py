"""Reading a CSV file strictly: its encoding found the same way every time, every row
with the line it starts on, and a file that is not what it seems (a stray quote that
swallows rows, a row with a cell too many, a cell of megabytes, a workbook or a binary
file) reported with the line to look at, never read half-right.

Encodings, in this order (the first that applies wins):

1. ``--encoding NAME``, when given;
2. a byte order mark: UTF-8, UTF-16 (LE or BE), UTF-32 (LE or BE);
3. no mark but NUL bytes every other byte: UTF-16 without a mark (LE or BE);
4. the whole file is valid UTF-8: UTF-8;
5. otherwise GB18030, the superset of GBK and GB2312 that Excel in Chinese writes.

A file that none of these decodes is refused with the line of its first byte that is not
UTF-8. Memory stays bounded: the file is read in chunks and line by line, a line is read
at most MAX_LINE characters at a time and a cell may hold at most MAX_CELL characters.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import PipelineError, Problem

MAX_CELL = 64 * 1024  # characters in one cell
MAX_LINE = 1024 * 1024  # characters in one line
MAX_ERRORS = 20  # a file this broken is reported in part: fix these and try again
_CHUNK = 1024 * 1024

_BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
_WORKBOOKS = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook"),
)
_SAVE_AS = 'save it as CSV (in Excel: File > Save As > "CSV UTF-8")'


@dataclass(frozen=True)
class Encoding:
    codec: str  # the name Python's codecs know it by
    label: str  # as the summary names it

    @property
    def is_utf8(self) -> bool:
        return self.codec == "utf-8"


def known_encoding(name: str) -> str:
    """The codec called ``name``; ValueError, saying what to give, when there is none."""
    try:
        "".encode(name)  # a LookupError too for a codec that is not text's (base64)
        return codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown encoding '{name}'; give one Python knows, like utf-8, "
                         "utf-16, gb18030, big5, shift_jis or cp1252") from None


def detect_encoding(path: Path, shown: str, forced: str | None = None) -> Encoding:
    """How the file is encoded (the rules at the top of this module), checked over the
    whole file; a byte that does not decode is reported with its line."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    for magic, what in _WORKBOOKS:
        if head.startswith(magic):
            raise PipelineError(f"this is {what}, not a CSV file; {_SAVE_AS}", path=shown)
    if forced:
        encoding = Encoding(known_encoding(forced), forced)
        return _accepted(shown, encoding, _scan(path, encoding.codec),
                         "; check --encoding, or leave it out to have the encoding detected")
    for bom, codec, label in _BOMS:
        if head.startswith(bom):
            return _accepted(shown, Encoding(codec, label), _scan(path, codec),
                             f", though the file starts like {label}; {_SAVE_AS}")
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        for codec, zeros, others in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
            if zeros.count(0) * 4 >= len(zeros) and not others.count(0):
                return _accepted(shown, Encoding(codec, "UTF-16"), _scan(path, codec),
                                 f"; {_SAVE_AS}")
    utf8 = _scan(path, "utf-8")
    if utf8 is None or utf8[0] == "nul":
        return _accepted(shown, Encoding("utf-8", "UTF-8"), utf8, "")
    if (gb := _scan(path, "gb18030")) is None or gb[0] == "nul":
        return _accepted(shown, Encoding("gb18030", "GB18030"), gb, "")
    raise PipelineError("this line is neither UTF-8 nor GB18030 (the encodings read without "
                        f"--encoding); {_SAVE_AS}, or name its encoding, like --encoding "
                        "cp1252", path=shown, line=utf8[1])


def _accepted(shown: str, encoding: Encoding, found: tuple[str, int] | None,
              advice: str) -> Encoding:
    """The encoding, if scanning the file with it ``found`` nothing wrong."""
    if found is None:
        return encoding
    kind, line = found
    if kind == "nul":
        raise PipelineError("this line has a NUL character, which text never has; is this "
                            f"a CSV file? If it is a spreadsheet, {_SAVE_AS}",
                            path=shown, line=line)
    raise PipelineError(f"this line is not valid {encoding.label}{advice}",
                        path=shown, line=line)


def _scan(path: Path, codec: str) -> tuple[str, int] | None:
    """The first line that does not decode ("undecodable", line) or has a NUL character
    ("nul", line), or None when the whole file is text in this encoding."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    counter = _LineCounter()
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                before = error.object[:error.start].decode(codec, "replace")
                return "undecodable", counter.line_of(before)
            if "\x00" in text:
                return "nul", counter.line_of(text[:text.index("\x00")])
            counter.add(text)
            if not chunk:
                return None


class _LineCounter:
    """Counts lines as the reader splits them: at \\n, \\r\\n and a lone \\r."""

    def __init__(self) -> None:
        self.ends = 0
        self.after_cr = False

    def add(self, text: str) -> None:
        self.ends += self._ends(text)
        if text:
            self.after_cr = text.endswith("\r")

    def line_of(self, text_before: str) -> int:
        return self.ends + self._ends(text_before) + 1

    def _ends(self, text: str) -> int:
        joined = 1 if self.after_cr and text.startswith("\n") else 0
        return text.count("\n") + text.count("\r") - text.count("\r\n") - joined


@contextmanager
def cell_limit():
    """csv's field limit, which is the whole process's, set to MAX_CELL for a while."""
    saved = csv.field_size_limit(MAX_CELL)
    try:
        yield
    finally:
        csv.field_size_limit(saved)


class _LineTooLong(Exception):
    pass


class _Lines:
    """The lines of a text stream, numbered, for csv.reader to pull one at a time. It
    keeps the lines of the row being read, and where the second of them starts, so that
    a row that swallowed others can be read again from its second line."""

    def __init__(self, stream: io.TextIOBase):
        self.stream = stream
        self.number = 0  # of the last line handed out
        self.row: list[tuple[int, str]] = []
        self.restart: tuple[int, int] | None = None  # (line, stream position)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if len(self.row) == 1:
            self.restart = (self.number + 1, self.stream.tell())
        line = self.stream.readline(MAX_LINE)
        if not line:
            raise StopIteration
        self.number += 1
        if self.number == 1:
            line = line.removeprefix("\ufeff")
        self.row.append((self.number, line))
        if len(line) >= MAX_LINE and not line.endswith(("\n", "\r")):
            while (more := self.stream.readline(MAX_LINE)) and not more.endswith(("\n", "\r")):
                pass  # the rest of the line, never held
            raise _LineTooLong(line)
        return line

    def start_row(self) -> None:
        self.row, self.restart = [], None

    def read_from(self, line: int, position: int) -> None:
        """Go back to ``line``, which starts at ``position`` in the stream."""
        self.stream.seek(position)
        self.number = line - 1

    def line_closing_quote(self) -> int:
        """Reads on, inside a quoted cell, to the line with its closing quote (or to the
        end): that line's number. Nothing is kept."""
        number, line = self.row[-1]
        complete = True
        while not _closes_quote(line):
            line = self.stream.readline(MAX_LINE)
            if not line:
                break
            number += complete
            complete = line.endswith(("\n", "\r"))
        return number


def _closes_quote(text: str) -> bool:
    """Whether text inside a quoted cell has the quote that ends it (a quote that is not
    one of a doubled pair)."""
    at = text.find('"')
    while at >= 0:
        if not text.startswith('""', at):
            return True
        at = text.find('"', at + 2)
    return False


@dataclass
class Row:
    line: int
    cells: list[str]


class StrictReader:
    """Rows of a CSV text stream, and the problems of its shape: errors that refuse the
    whole file, collected (up to MAX_ERRORS) so that they are all said at once. A row
    with such a problem is reported, never returned."""

    def __init__(self, stream: io.TextIOBase, shown: str):
        self.shown = shown
        self.errors: list[Problem] = []
        self.delimiter = ","
        self.lines = _Lines(stream)
        self.reader: Iterator[list[str]] = iter(())

    def header(self) -> Row | None:
        """The first row that is not blank (after an Excel ``sep=;`` line, if any). The
        delimiter is a comma, unless that line says otherwise or the header has no comma
        but semicolons or tabs."""
        first = self._first_line()
        if first is None:
            return None
        text = first[1].rstrip("\r\n")
        if len(text) == 5 and text.lower().startswith("sep="):
            self.delimiter = text[4]
        else:
            if "," not in text:
                counts = {d: text.count(d) for d in ";\t"}
                best = max(counts, key=lambda d: counts[d])
                self.delimiter = best if counts[best] else ","
            self.lines.read_from(*first[0])
        self.reader = csv.reader(self.lines, delimiter=self.delimiter, strict=True)
        for row in self._rows(columns=0, email=0):
            return None if self.errors else row
        return None

    def _first_line(self) -> tuple[tuple[int, int], str] | None:
        while True:
            position = self.lines.stream.tell()
            try:
                line = next(self.lines)
            except StopIteration:
                return None
            except _LineTooLong:
                self._error(self.lines.number, f"a line longer than {MAX_LINE // 1024} KB "
                            "at the start of the file; is this a CSV file?")
                return None
            if line.strip():
                return (self.lines.number, position), line

    def rows(self, columns: int, email: int) -> Iterator[Row]:
        """The rows after the header, each with ``columns`` cells; ``email`` is where the
        address is (a line with an address inside a quoted cell is a swallowed row)."""
        yield from self._rows(columns, email)

    def _rows(self, columns: int, email: int) -> Iterator[Row]:
        while True:
            if len(self.errors) >= MAX_ERRORS:
                self._error(self.lines.number, f"stopped after {MAX_ERRORS} problems; fix "
                            "these and import again")
                return
            self.lines.start_row()
            try:
                cells = next(self.reader)
            except StopIteration:
                return
            except _LineTooLong as error:
                self._too_long(str(error))
                continue
            except csv.Error as error:
                self._csv_error(str(error), columns, email)
                continue
            start, end = self.lines.row[0][0], self.lines.row[-1][0]
            if end > start and self._swallowed(cells, columns, email):
                self._unclosed_quote(start, end - start)
            elif not any(cell.strip() for cell in cells):
                continue  # a blank line, or only delimiters
            elif columns and len(cells) != columns:
                self._error(start, self._cell_count(len(cells), columns))
            else:
                yield Row(start, cells)

    def _swallowed(self, cells: list[str], columns: int, email: int) -> bool:
        """Whether a row over several lines is a stray quote's doing: a line in the middle
        of its quoted cell is itself a whole row (as many cells, an address where the
        address goes), or the last line is and the row has the wrong number of cells.
        A column name never spans lines."""
        if not columns:
            return True
        inner = [text for _, text in self.lines.row[1:]]
        if any(self._is_row(text, columns, email) for text in inner[:-1]):
            return True
        return len(cells) != columns and self._is_row(inner[-1], columns, email)

    def _is_row(self, text: str, columns: int, email: int) -> bool:
        try:
            cells = next(csv.reader([text.rstrip("\r\n")], delimiter=self.delimiter))
        except (csv.Error, StopIteration):
            return False
        return len(cells) == columns and "@" in cells[email]

    def _csv_error(self, message: str, columns: int, email: int) -> None:
        start = self.lines.row[0][0] if self.lines.row else self.lines.number
        here = self.lines.number
        if message == "unexpected end of data":
            self._unclosed_quote(start, here - start)
        elif message.startswith("field larger than field limit"):
            inner = [text for _, text in self.lines.row[1:]]
            if inner and (not columns or any(self._is_row(t, columns, email) for t in inner)):
                self._unclosed_quote(start, self.lines.line_closing_quote() - start)
            else:
                self._error(here, f"a cell longer than {MAX_CELL // 1024} KB; is this a "
                            "CSV file?")
        elif "expected after" in message and here > start:
            self._unclosed_quote(start, here - start)
        elif "expected after" in message:
            self._error(start, "a quote (\") ends a quoted cell but more text follows it; "
                        "put the whole cell in quotes and double each quote inside it, "
                        'like "Ada ""the Countess"" Lovelace"')
        else:
            self._error(start, f"CSV syntax error: {message}")

    def _unclosed_quote(self, start: int, swallowed: int) -> None:
        if swallowed:
            lines = "line" if swallowed == 1 else f"{swallowed} lines"
            self._error(start, f"an unclosed quote (\") starts here and swallows the next "
                        f"{lines}; close it or remove it")
        else:
            self._error(start, "an unclosed quote (\") starts here and runs to the end of "
                        "the file; close it or remove it")
        if self.lines.restart:  # read the swallowed lines again, as the rows they are
            self.lines.read_from(*self.lines.restart)

    def _too_long(self, line: str) -> None:
        longest = max(len(cell) for cell in line.split(self.delimiter))
        what = (f"a cell longer than {MAX_CELL // 1024} KB" if longest > MAX_CELL
                else f"a line longer than {MAX_LINE // 1024} KB")
        self._error(self.lines.number, f"{what}; is this a CSV file?")

    def _cell_count(self, cells: int, columns: int) -> str:
        said = f"{cells} cells, but the header names {columns} columns"
        d = self.delimiter
        if cells > columns:
            name = {",": "comma", ";": "semicolon", "\t": "tab"}.get(d, repr(d))
            return f'{said}; a cell with a {name} in it needs quotes, like "Zhang{d} Ada"'
        return f"{said}; add the missing cells (empty ones are fine, like a{d}{d}c)"

    def _error(self, line: int, message: str) -> None:
        self.errors.append(Problem(self.shown, line, message))
