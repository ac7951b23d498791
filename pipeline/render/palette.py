"""The colours of the email, as readers see them: the WCAG 2 contrast ratio of each pair
of [colors] (and [colors.dark]) that the package's templates put text on.

A text of 4.5:1 against its background is WCAG AA; large text (24 px, or 18.66 px bold)
would pass at 3:1, but every colour here is also used for normal text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import Colors, DarkColors

AA = 4.5

# (text, background): each colour the templates write text in, on each colour it is
# written on. muted on background: "view in browser" above the card; card on accent:
# the tips label (the same ratio as accent on card); code: a link or a quote's text on
# a code span.
READ_ON = (("text", "card"), ("text", "code"), ("muted", "card"), ("muted", "background"),
           ("muted", "code"), ("accent", "card"), ("accent", "code"))


@dataclass(frozen=True)
class LowContrast:
    table: str  # "colors" or "colors.dark"
    text: str  # the key of the text's colour
    background: str
    text_color: str
    background_color: str
    ratio: float

    def __str__(self) -> str:
        """"colors.muted: #6e7781 on colors.background #f2f3f5 is 4.10:1; …" """
        fore, back = f"{self.table}.{self.text}", f"{self.table}.{self.background}"
        darker = luminance(self.text_color) < luminance(self.background_color)
        verbs = ("darken", "lighten") if darker else ("lighten", "darken")
        shown = math.floor(self.ratio * 100) / 100  # 4.499 is not 4.50
        return (f"{fore}: {self.text_color} on {back} {self.background_color} is "
                f"{shown:.2f}:1; text needs {AA}:1 (WCAG AA): {verbs[0]} {fore} or "
                f"{verbs[1]} {back}")


def luminance(color: str) -> float:
    """WCAG 2 relative luminance of #rgb or #rrggbb."""
    digits = color.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)

    def linear(channel: str) -> float:
        value = int(channel, 16) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(digits[i:i + 2]) for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    """The WCAG 2 contrast ratio of two colours, from 1 to 21."""
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def low_contrast(colors: Colors) -> list[LowContrast]:
    """The pairs below AA, light scheme first, then dark."""
    found = []
    palettes: tuple[tuple[str, Colors | DarkColors], ...] = (("colors", colors),
                                                             ("colors.dark", colors.dark))
    for table, palette in palettes:
        for text, background in READ_ON:
            fore, back = getattr(palette, text), getattr(palette, background)
            ratio = contrast(fore, back)
            if ratio < AA:
                found.append(LowContrast(table, text, background, fore, back, ratio))
    return found
