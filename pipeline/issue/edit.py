"""set_key: one top-level key of issue.yaml written, changed or removed, every other
line and comment kept as the editor wrote it.

`schedule` writes send_at with it; `send` and `schedule` record an issue's id with it.
The result is parsed before it replaces the file: an edit that would change anything
but that key (a file in flow style, say) is refused rather than written.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml

from ..errors import PipelineError, display_path


def set_key(path: Path, key: str, value: str | None, after: str | None = None,
            comment: str = "") -> None:
    """``key: value`` in the YAML file at path (value: YAML as written, quoted by the
    caller where it must be): the key's line replaced (its comment kept), or inserted
    after the line of ``after`` (else at the end) with ``comment``; with None, the key's
    lines removed."""
    shown = display_path(path)
    if not path.is_file():
        raise PipelineError("missing; is this an issue folder?", path=shown)
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise PipelineError("not valid UTF-8; save the file as UTF-8", path=shown) from None
    bom = "\ufeff" if raw.startswith("\ufeff") else ""
    text = raw[len(bom):]
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    pattern = re.compile(rf"^{re.escape(key)}\s*:(?P<value>[^#\r\n]*)(?P<rest>#.*)?$")
    found = [n for n, line in enumerate(lines) if pattern.match(line.rstrip("\r\n"))]
    if value is None:
        for n in reversed(found):
            del lines[n]
    else:
        written = f"{key}: {value}"
        if found:
            match = pattern.match(lines[found[0]].rstrip("\r\n"))
            kept = f"  {match['rest']}" if match and match["rest"] else ""
            lines[found[0]] = f"{written}{kept}{newline}"
        else:
            at = next((n + 1 for n, line in enumerate(lines)
                       if after and re.match(rf"{re.escape(after)}\s*:", line)), len(lines))
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += newline
            lines.insert(at, f"{written}{f'  # {comment}' if comment else ''}{newline}")
    edited = "".join(lines)
    before = _mapping(text)
    if before is None or _mapping(edited) != _expected(before, key, value):
        raise PipelineError(f"cannot write '{key}' without changing other lines (is the file "
                            "in flow style?); "
                            + (f"add the line '{key}: {value}' yourself" if value is not None
                               else f"remove the '{key}' line yourself"), path=shown)
    _replace(path, bom + edited)


def quoted_if_needed(text: str) -> str:
    """Text as a YAML scalar that reads back as this text: quoted when it would read as
    a number, a date, a boolean or null."""
    return text if _load(f"v: {text}") == {"v": text} else f'"{text}"'


_INVALID = object()


def _load(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return _INVALID


def _mapping(text: str) -> dict | None:
    """The file's mapping; None when it is not one (nothing may be edited then)."""
    data = _load(text)
    return {} if data is None else data if isinstance(data, dict) else None


def _expected(before: dict, key: str, value: str | None) -> dict:
    after = {k: v for k, v in before.items() if k != key}
    if value is not None:
        line = _load(f"v: {value}")
        after[key] = line.get("v") if isinstance(line, dict) else _INVALID
    return after


def _replace(path: Path, text: str) -> None:
    """Written beside the file and renamed over it: never half a file."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise PipelineError(f"cannot write: {exc.strerror or exc}; make the file and its "
                            "folder writable", path=display_path(path)) from None
