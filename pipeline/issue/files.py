"""Reading an issue folder's files, bounded: what a contributor or a careless editor puts
in a folder is read only as far as it is safe.

- Only regular files inside the issue folder are read (a symlink's target included): a
  pipe would hang the read, a link could copy any file of the machine into the build,
  the site and every reader's email.
- Each kind of file has a size limit, checked before reading and enforced while
  reading (a file that grows meanwhile is cut off, not read whole).
- YAML is loaded safely without anchors and aliases (an alias "bomb" expands to
  gigabytes from a few hundred bytes) and with a nesting limit.
- File and folder names with control characters (a CR/LF would end up in a header, a
  terminal escape in the output) or bytes that are not UTF-8 are refused.

Each refusal is one ``path:line: what is wrong and how to fix it``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import Problems, display_path, escaped, printable

KB, MB = 1024, 1024 * 1024
LIMITS = {  # bytes; a real issue.yaml is under 2 KB, a long section under 30 KB
    "issue.yaml": 64 * KB,
    "section": 128 * KB,  # Gmail clips a whole email at 102 KB of HTML
    "sections": 512 * KB,  # all of an issue's sections together
    "image": 10 * MB,
}
MAX_SECTIONS = 100  # Markdown files in one issue folder
MAX_IMAGE_PIXELS = 50_000_000  # a 50-megapixel image is far beyond what an email shows
MAX_YAML_DEPTH = 20


def size_text(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB else f"{max(1, round(size / KB))} KB"


def too_large(size: int, kind: str) -> str | None:
    limit = LIMITS[kind]
    if size <= limit:
        return None
    return f"too large ({size_text(size)}, limit {size_text(limit)})"


# --- names --------------------------------------------------------------------------

_NAME_RULE = "rename it with letters, digits and hyphens"


def name_problem(name: str) -> str | None:
    """Why a file or folder name cannot be used safely (in headers, URLs, file names and
    terminal output), or None. Any printable Unicode is fine: 第9期 is a good name."""
    if printable(name) == name:
        return None
    bad = next(c for c in name if printable(c) != c)
    if 0xD800 <= ord(bad) <= 0xDFFF:  # a byte that is not UTF-8, kept by surrogateescape
        return f"has a name that is not valid UTF-8 ({escaped(bad)}); {_NAME_RULE}"
    return f"has a control character ({escaped(bad)}) in its name; {_NAME_RULE}"


# --- files --------------------------------------------------------------------------


def unsafe_file(folder: Path, file: Path) -> str | None:
    """Why a file of the issue may not be read, or None: only regular files inside the
    issue folder, a symlink's target included, with a usable name."""
    problem = name_problem(file.name)
    if problem:
        return problem
    try:
        inside = file.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return "is a link that goes round in a loop; replace it with the file itself"
    if not inside:
        return ("leads outside the issue folder (a symlink); copy the file into the folder "
                "instead")
    if not file.is_file():
        return "is not a regular file (a folder, a pipe or a device); only files are read"
    return None


def read_bytes(path: Path, kind: str, problems: Problems) -> bytes | None:
    """A regular file's bytes, or a problem: too large, unreadable. Never more than the
    kind's limit is read, whatever the file does meanwhile."""
    shown = display_path(path)
    limit = LIMITS[kind]
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except PermissionError:
        problems.add(shown, None, "cannot be read (permission denied); make it readable "
                                  "(chmod a+r)")
        return None
    except OSError as exc:
        problems.add(shown, None, f"cannot be read ({exc.strerror or exc}); check the file")
        return None
    if len(data) > limit:
        size = max(len(data), _size(path))
        problems.add(shown, None, f"{too_large(size, kind)}; "
                                  + ("split it into smaller sections" if kind == "section"
                                     else "keep it to what an issue needs"))
        return None
    return data


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_text(path: Path, kind: str, problems: Problems) -> str | None:
    """A file's text, or a problem if it cannot be read, is too large or is not UTF-8."""
    data = read_bytes(path, kind, problems)
    if data is None:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.add(display_path(path), line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
                                               "save the file as UTF-8")
        return None


# --- images -----------------------------------------------------------------------


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says: enough to size it in the email and to know whether
    mail clients can show it, without decoding its pixels."""

    width: int
    height: int
    format: str = ""  # Pillow's name: PNG, JPEG, GIF, WEBP, AVIF; SVG for a vector image
    alpha: bool = False  # has transparency (decides PNG over JPEG when converting)


def image_header(file: Path) -> ImageHeader:
    from PIL import Image as PILImage

    with warnings.catch_warnings():  # the size is judged below, not warned about
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        with PILImage.open(file) as im:  # reads the header only
            alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            return ImageHeader(*oriented_size(im), str(im.format or ""), alpha)


def oriented_size(image) -> tuple[int, int]:
    """A Pillow image's width and height as shown: EXIF orientations 5 to 8 turn it."""
    turned = image.getexif().get(0x0112) in (5, 6, 7, 8)
    return (image.height, image.width) if turned else image.size


def _is_svg(file: Path) -> bool:
    with file.open("rb") as handle:
        start = handle.read(4096).lower()
    return file.suffix.lower() == ".svg" and b"<svg" in start


def image_problem(file: Path, size: int) -> tuple[str | None, ImageHeader]:
    """Why an image (of size bytes) cannot go into an email, or None; and what its
    header says (read once). An SVG passes with no size: `check` warns about it."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    none = ImageHeader(0, 0)
    pixels = (f"has more than {MAX_IMAGE_PIXELS // 1_000_000} megapixels; export it smaller, "
              "1200 px wide is plenty for email")
    if too_large(size, "image"):
        return f"is {too_large(size, 'image')}; export it smaller", none
    try:
        header = image_header(file)
    except PILImage.DecompressionBombError:
        return pixels, none
    except PermissionError:
        return "cannot be read (permission denied); make it readable (chmod a+r)", none
    except (UnidentifiedImageError, OSError, ValueError):
        if _is_svg(file):
            return None, ImageHeader(0, 0, "SVG")
        return ("is not a PNG, JPEG, GIF or WebP image that can be read; export it again",
                none)
    return (pixels if header.width * header.height > MAX_IMAGE_PIXELS else None), header


# --- YAML ---------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML that leaves dates as strings (so that we can say what is wrong), with
    no anchors or aliases and at most MAX_YAML_DEPTH levels of nesting."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (& and *) are not used here; write the "
                            "value out in full", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_YAML_DEPTH} levels deep; an issue's "
                                "values are text, dates and short lists",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}

_OWN_MESSAGE = re.compile(r"^(anchors and aliases|nested more than)")


def parse_yaml_mapping(text: str, path: Path, problems: Problems, first_line: int = 1
                       ) -> tuple[dict[str, Any], dict[str, int]] | None:
    """A YAML mapping and the line of each key; problems for syntax and duplicates."""
    shown = display_path(path)
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = first_line + text.count("\n", 0, exc.position)
        problems.add(shown, line, f"a control character ({escaped(chr(exc.character))}) that "
                                  "YAML does not allow; save the file as plain text")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + mark.line if mark else first_line
        what = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.constructor.ConstructorError):
            what = ("a YAML tag (!!…) that is not plain data; write the value as text, a "
                    "number, a date or a list")
        elif not _OWN_MESSAGE.match(what):
            what = (f"YAML syntax error: {what}; check the indentation, the colons and the "
                    "quotes on this line")
        problems.add(shown, line, what)
        return None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        problems.add(shown, first_line, "must be a list of 'key: value' lines")
        return None
    lines: dict[str, int] = {}
    for key_node, _ in node.value:
        key = str(key_node.value)
        line = first_line + key_node.start_mark.line
        if key in lines:
            problems.add(shown, line, f"duplicate key '{key}' (first on line {lines[key]}); "
                                      "keep one")
        lines.setdefault(key, line)
    return {str(k): v for k, v in data.items()}, lines
