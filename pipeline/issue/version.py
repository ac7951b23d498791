"""Which version of an issue this is: the hash of its folder's content and, when the
folder is inside a git work tree, the commit it is at and whether it has changes that
are not committed. `send` records the version; `review` compares two commits.

The one change a folder may have and still count as committed is the line the send
writes itself: the first send (or schedule) of an issue without ``id:`` records the id
in issue.yaml, and a resumed send must not be refused for that line until someone
commits it. Only that exact line (with its "recorded by newsletter" comment), added to
the committed file and nothing else changed, is left out of ``changed``.

git runs as a subprocess with a fixed argument list (never through a shell: folder names
are untrusted) and a timeout.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import PipelineError, display_path
from .identity import RECORDED

GIT_SECONDS = 30


@dataclass(frozen=True)
class IssueVersion:
    content_hash: str  # sha256 of the folder's files, their paths and bytes
    commit: str = ""  # HEAD of the work tree the folder is in; "" outside git
    changed: tuple[str, ...] = ()  # the folder's files that differ from that commit

    @property
    def short(self) -> str:
        """For people: 'sha256:1a2b3c4d5e6f, commit 0123456789ab'."""
        text = f"sha256:{self.content_hash[:12]}"
        return text + (f", commit {self.commit[:12]}" if self.commit else "")


def git(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """git with these arguments in cwd; a PipelineError when git is missing, hangs, or
    (with check) fails."""
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True,
                                timeout=GIT_SECONDS, check=False)
    except FileNotFoundError:
        raise PipelineError("git is not installed; install it (apt-get install git)") from None
    except subprocess.TimeoutExpired:
        raise PipelineError(f"git {args[0]} took more than {GIT_SECONDS} s; check the "
                            "repository (a lock, a network file system)",
                            display_path(cwd)) from None
    if check and result.returncode:
        why = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PipelineError(f"git {args[0]} failed: {why[-1] if why else result.returncode}",
                            display_path(cwd))
    return result


def content_hash(folder: Path) -> str:
    """sha256 over each file under the folder (not hidden ones), in path order: its path
    relative to the folder, a NUL, its size, a NUL and its bytes."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    for file in files:
        data = file.read_bytes()
        digest.update(file.relative_to(folder).as_posix().encode("utf-8", "surrogateescape"))
        digest.update(b"\0%d\0" % len(data))
        digest.update(data)
    return digest.hexdigest()


def work_tree(folder: Path) -> Path | None:
    """The top of the git work tree the folder is in, or None."""
    result = git(["rev-parse", "--show-toplevel"], folder, check=False)
    if result.returncode:
        return None
    return Path(result.stdout.decode("utf-8", "surrogateescape").strip())


def issue_version(folder: Path) -> IssueVersion:
    folder = folder.resolve()
    digest = content_hash(folder)
    if work_tree(folder) is None:
        return IssueVersion(digest)
    head = git(["rev-parse", "--verify", "-q", "HEAD"], folder, check=False)
    commit = head.stdout.decode().strip() if head.returncode == 0 else ""
    status = git(["status", "--porcelain=v1", "-z", "--untracked-files=all",
                  "--", "."], folder).stdout.decode("utf-8", "surrogateescape")
    changed = tuple(sorted({entry[3:] for entry in status.split("\0") if len(entry) > 3}))
    if commit:
        changed = tuple(path for path in changed if not _only_recorded_id(folder, path))
    return IssueVersion(digest, commit, changed)


_RECORDED_ID = re.compile(rf"^id:[^#\r\n]*#\s*{re.escape(RECORDED)}\s*$")


def _only_recorded_id(folder: Path, path: str) -> bool:
    """Whether the file (a path from the top of the work tree) differs from HEAD only by
    the `id:` line that record_id adds to issue.yaml."""
    if Path(path).name != "issue.yaml":
        return False
    top = work_tree(folder)
    committed = git(["show", f"HEAD:{path}"], folder, check=False)
    if top is None or committed.returncode:  # new, or deleted: a real change
        return False
    try:
        now = (top / path).read_bytes()
    except OSError:
        return False
    lines = now.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    kept = [line for line in lines if not _RECORDED_ID.match(line.rstrip("\r\n"))]
    if len(lines) - len(kept) != 1:
        return False
    before = committed.stdout.decode("utf-8", "surrogateescape")
    return "".join(kept).rstrip("\r\n") == before.rstrip("\r\n")
