"""`newsletter cron`: the crontab line that runs `send --due` every five minutes.

Cron starts with an almost empty environment and PATH, in the home folder, so the line
holds absolute paths: the project folder, the command that is running now (whatever its
virtual environment is called) and the log file, whose folder the line creates.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from ..config import ENV_FILE, Config, read_env_file
from ..errors import Problems

SCHEDULE = "*/5 * * * *"


def running_command(argv0: str | None = None, executable: str | None = None) -> list[str]:
    """The absolute command line that runs this newsletter again: the console script
    (``/venv/bin/newsletter``) when that is what runs, else ``python -m pipeline`` with
    this interpreter (for ``python -m pipeline``, or any other launcher)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    script = Path(argv0)
    if script.name.startswith("newsletter") and script.suffix in ("", ".exe"):
        found = argv0 if (os.sep in argv0 or script.is_file()) else shutil.which(argv0)
        if found:
            # abspath, not resolve: a symlinked venv python would lose its venv
            return [os.path.abspath(found)]
    return [os.path.abspath(executable), "-m", "pipeline"]


def cron_line(root: Path, command: list[str] | None = None) -> str:
    """``*/5 * * * * cd /project && mkdir -p logs && /venv/bin/newsletter send --due >>
    /project/logs/send.log 2>&1``, quoted for the shell; % escaped for cron."""
    root = Path(os.path.abspath(root))
    command = command or running_command()
    log = root / "logs" / "send.log"
    shell = (f"cd {shlex.quote(str(root))} && mkdir -p logs && "
             f"{shlex.join([*command, 'send', '--due'])} >> {shlex.quote(str(log))} 2>&1")
    return f"{SCHEDULE} {shell.replace('%', chr(92) + '%')}"


def missing_under_cron(config: Config) -> list[str]:
    """The secrets `send --due` needs that cron's bare environment will not have: those
    not in the project's env file (the shell's environment does not reach cron)."""
    needed = ["NEWSLETTER_SECRET"]
    if config.provider == "sendgrid":
        needed.append("SENDGRID_API_KEY")
    if config.provider == "smtp" and config.smtp.username:
        needed.append("SMTP_PASSWORD")
    problems = Problems()
    in_file = read_env_file(config.root / ENV_FILE, problems)
    return [name for name in needed if not in_file.get(name)]
