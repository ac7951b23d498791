"""`newsletter cron`: the crontab line that runs `send --due` every five minutes.

Cron starts with an almost empty environment and PATH, in the home folder, so the line
holds absolute paths: the project folder, the command that is running now (whatever its
virtual environment is called) and the log file, whose folder the line creates.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CronRun:
    command: str  # what /bin/sh ran
    status: int
    log: list[str]  # the lines the run added to logs/send.log


def run_as_cron(line: str, root: Path) -> CronRun:
    """`cron --check`: the line's command once, as cron runs it: /bin/sh from the home
    folder, with cron's bare environment (``env -i`` plus what cron sets), so that what
    only works in the login shell (an exported secret, a PATH) shows up now."""
    command = line.split(" ", 5)[5].replace("\\%", "%")  # cron unescapes % before sh
    home = os.path.expanduser("~")
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "SHELL": "/bin/sh",
           "LOGNAME": os.environ.get("LOGNAME", os.environ.get("USER", "root"))}
    log = root / "logs" / "send.log"
    before = log.stat().st_size if log.exists() else 0
    done = subprocess.run(["/bin/sh", "-c", command], cwd=home, env=env, check=False)
    added = log.read_bytes()[before:].decode("utf-8", "replace") if log.exists() else ""
    return CronRun(command, done.returncode, added.splitlines())


def systemd_units(root: Path, name: str, command: list[str] | None = None) -> str:
    """The service and timer that do what the crontab line does, journald keeping the
    log. `%` is doubled: systemd expands specifiers in unit files."""
    root = Path(os.path.abspath(root))
    command = command or running_command()
    exec_start = shlex.join([*command, "send", "--due"]).replace("%", "%%")
    workdir = str(root).replace("%", "%%")  # the rest of the line, spaces and all
    return f"""\
# /etc/systemd/system/newsletter-send.service
[Unit]
Description=Send the due issues of {name.replace('%', '%%')}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
WorkingDirectory={workdir}
ExecStart={exec_start}
# Secrets: {ENV_FILE} in the working directory (mode 600), read by newsletter itself.

# /etc/systemd/system/newsletter-send.timer
[Unit]
Description=Send the due issues of {name.replace('%', '%%')} every five minutes

[Timer]
OnCalendar=*:0/5
Persistent=true

[Install]
WantedBy=timers.target
"""
