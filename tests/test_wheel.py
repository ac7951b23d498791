"""The wheel, built from a clean clone of HEAD and installed into a fresh venv, makes a
publication of its own from a folder outside the checkout, and reads no file of the
checkout while doing it.

Dependencies: not every dependency is on this machine's local package index (pip
fetches mjml-python from PyPI), and tests stay off the network, so the fresh venv does
not download them: the wheel goes in with --no-deps, and a .pth file appended to the
venv's own site-packages lets it import the dependencies already installed in the
venv running the tests. That .pth holds a path, so the .pth files there (among them
the editable install's finder) are not run: `pipeline` can only come from the wheel,
and the audit below checks that nothing else was read.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# Installed into the fresh venv: logs every file a process opens or lists, to a file
# named by NEWSLETTER_TEST_AUDIT (sys.addaudithook sees open(), imports, listdir).
SITECUSTOMIZE = '''\
import os, sys
_log = os.environ.get("NEWSLETTER_TEST_AUDIT")
if _log:
    _out = open(_log, "a", encoding="utf-8")
    def _audit(event, args, _out=_out, _fs=os.fsdecode, _abs=os.path.abspath):
        if event in ("open", "os.listdir", "os.scandir") and args and \\
                isinstance(args[0], (str, bytes, os.PathLike)):
            _out.write(_abs(_fs(args[0])) + "\\n")
            _out.flush()
    sys.addaudithook(_audit)
'''


def run(*args, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def test_the_installed_wheel_makes_a_publication_of_its_own(tmp_path):
    started = time.monotonic()
    outside = tmp_path / "x"  # every command below runs under here, never in the checkout
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NEWSLETTER_",
                                                                     "VIRTUAL_ENV"))}

    # 1. a clean clone of HEAD, its wheel built with this venv's setuptools (offline)
    head = run("git", "rev-parse", "HEAD", cwd=ROOT, env=env).stdout.strip()
    clone = tmp_path / "clone"
    run("git", "clone", "--quiet", "--no-checkout", ROOT, clone, cwd=tmp_path, env=env)
    run("git", "checkout", "--quiet", head, cwd=clone, env=env)
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "-w", wheels, clone, cwd=tmp_path, env=env)
    (wheel,) = wheels.glob("newsletter_as_code-*-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("pipeline/cli/__init__.py", "pipeline/templates/email/issue.mjml.j2",
                 "pipeline/templates/email/sections/tips.mjml.j2",
                 "pipeline/templates/text/sections/default.txt.j2",
                 "pipeline/templates/web/unsubscribe.html.j2", "pipeline/editor/preview.html",
                 "pipeline/editor/starter/newsletter.toml.j2",
                 "pipeline/editor/starter/gitignore", "pipeline/editor/starter/env.example",
                 "pipeline/editor/starter/zh/01-welcome.md"):
        assert name in names
    dist_info = wheel.name.split("-py3")[0]
    assert f"{dist_info}.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}.dist-info/METADATA").decode()
    assert "Name: newsletter-as-code\n" in metadata
    assert "License-Expression: MIT\n" in metadata
    shutil.rmtree(clone)  # from here on, the only checkout is ROOT, which must stay unread

    # 2. a fresh venv holding the wheel (see the module's docstring for the dependencies)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        wheel, cwd=tmp_path, env=env)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=outside, env=env).stdout.strip())
    dependencies = Path(sysconfig.get_paths()["purelib"])  # this venv's
    (site / "zz_test_dependencies.pth").write_text(f"{dependencies}\n")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)

    newsletter = venv / "bin" / "newsletter"
    audit = tmp_path / "opened.txt"
    env = {**env, "NEWSLETTER_TEST_AUDIT": str(audit)}
    where = run(python, "-c", "import pipeline, pipeline.render.templates as t; "
                "print(pipeline.__file__); print(t.package_templates())",
                cwd=outside, env=env).stdout.split()
    assert where == [str(site / "pipeline" / "__init__.py"), str(site / "pipeline" / "templates")]
    assert run(newsletter, "--version", cwd=outside, env=env).stdout == \
        "newsletter, version 0.1.0\n"

    # 3. the two commands of the README, then build, a reader, a send to the outbox
    run(newsletter, "init", "pub", "--name", "Wheel Weekly", cwd=outside, env=env)
    pub = outside / "pub"
    (issue,) = (pub / "issues").iterdir()
    run(newsletter, "build", f"issues/{issue.name}", cwd=pub, env=env)
    assert "Welcome to Wheel Weekly" in (pub / "build" / issue.name / "email.html").read_text()
    checked = run(newsletter, "check", issue.name, cwd=pub, env=env)
    assert checked.stderr == "0 errors, 0 warnings\n"
    secret = {**env, "NEWSLETTER_SECRET": "wheel-test-secret"}
    run(newsletter, "audience", "add", "reader@example.com", cwd=pub, env=secret)
    sent = run(newsletter, "send", issue.name, "--yes", cwd=pub, env=secret)
    assert "sent 1, failed 0" in sent.stdout
    (eml,) = (pub / "outbox" / issue.name).glob("*.eml")
    assert email.message_from_bytes(eml.read_bytes())["Subject"] == "Welcome to Wheel Weekly"
    cron = run(newsletter, "cron", cwd=pub / "issues", env=env).stdout
    assert f" {newsletter} send --due >> {pub}/logs/send.log 2>&1" in cron

    # 4. nothing of the checkout was read: only the wheel's files and the dependencies
    opened = set(audit.read_text(encoding="utf-8").split("\n")) - {""}
    checkout = [p for p in opened if Path(p).is_relative_to(ROOT)
                and not Path(p).is_relative_to(dependencies)]
    assert checkout == []
    assert not [p for p in opened if Path(p).is_relative_to(dependencies)
                and Path(p).relative_to(dependencies).parts[:1] == ("pipeline",)
                or "__editable__" in p]
    assert any(Path(p).is_relative_to(site / "pipeline" / "templates" / "email") for p in opened)
    assert any(Path(p).is_relative_to(site / "pipeline" / "editor" / "starter") for p in opened)
    assert any(Path(p).is_relative_to(site / "pipeline" / "cli") and
               Path(p).name.startswith("__init__.")
               for p in opened)  # cli/__init__.py, or its .pyc that pip compiled
    print(f"wheel test: {time.monotonic() - started:.1f} s")
