"""Display width and line wrapping for text that mixes CJK and Latin script.

Widths are wcwidth's (CJK and emoji take two columns, combining marks none); a line
may break before any CJK character or at a space, but not before closing punctuation
(，。、) nor after opening punctuation.
"""

from __future__ import annotations

import re
import unicodedata

from wcwidth import wcwidth

TEXT_WIDTH = 72  # display columns of the plain-text part (RFC 3676 suggests under 78)
_NO_LINE_START = set("，。、；：！？）」』》〉】”’,.;:!?)]}…%")
_NO_LINE_END = set("（「『《〈【“‘([{")
_CJK = r"\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_UNITS = re.compile(rf"\s+|[{_CJK}]|[^\s{_CJK}]+")


def display_width(text: str) -> int:
    """Columns a terminal or a monospaced font gives the text."""
    if text.isascii():
        return len(text)
    return sum(max(wcwidth(char), 0) for char in text)
def joins_without_space(before: str, after: str) -> bool:
    """A soft line break between these two characters is no space: both are East Asian
    wide (Chinese, Japanese, full-width punctuation), neither Hangul (Korean puts spaces
    between words). The rule of CSS Text 3 for segment breaks, which mail clients don't
    apply themselves."""
    return bool(before and after) and _wide(before) and _wide(after)


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F") and not (
        "\uac00" <= char <= "\ud7af" or "\u1100" <= char <= "\u11ff"
        or "\u3130" <= char <= "\u318f")


def wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap each line of ``text`` at ``width`` display columns."""
    return "\n".join(_wrap_line(line, width) for line in text.split("\n"))


def _units(line: str) -> list[str]:
    """Unbreakable pieces: a word, a CJK character, a run of spaces; punctuation kept
    with its neighbour so that no line starts with a closing mark."""
    units: list[str] = []
    for piece in _UNITS.findall(line):
        if units and not piece.isspace() and (
            piece[0] in _NO_LINE_START or units[-1][-1] in _NO_LINE_END
        ) and not units[-1].isspace():
            units[-1] += piece
        else:
            units.append(piece)
    return units


def _wrap_line(line: str, width: int) -> str:
    if display_width(line) <= width:
        return line
    lines: list[str] = []
    current, used = "", 0
    for unit in _units(line):
        size = display_width(unit)
        if unit.isspace():
            if current and used + size <= width:
                current, used = current + unit, used + size
            elif current:
                lines.append(current.rstrip())
                current, used = "", 0
            continue
        if used + size > width and current.strip():
            lines.append(current.rstrip())
            current, used = "", 0
        current, used = current + unit, used + size
    if current.strip():
        lines.append(current.rstrip())
    return "\n".join(lines)
