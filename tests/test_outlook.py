"""Outlook's widths: the conditional <!--[if mso | IE]> tables that Outlook on Windows
lays out by, in our HTML and in the reference MJML compiler's (npm `mjml`, installed
under tests/ by `make test`), for every sample and every section template."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.issue import read_issue
from pipeline.render import render_issue
from pipeline.render.mail import mjml_to_html
from tests.conftest import FIXTURES
from tests.golden import PUBLICATION, samples

REFERENCE = Path(__file__).resolve().parent / "node_modules" / "mjml"
COMPILE = "process.stdout.write(require(process.argv[1])(require('fs').readFileSync(0, 'utf8'), " \
          "{validationLevel: 'soft'}).html)"


@pytest.fixture(scope="module")
def reference():
    node = shutil.which("node")
    if node is None or not REFERENCE.is_dir():
        if os.environ.get("CI"):
            pytest.fail("the reference MJML compiler is missing: make test runs npm ci in tests/")
        pytest.skip("the reference MJML compiler is missing: npm ci --prefix tests (needs npm)")

    def compile_mjml(source: str) -> str:
        return subprocess.run([node, "-e", COMPILE, str(REFERENCE)], input=source, text=True,
                              capture_output=True, check=True, timeout=60).stdout
    return compile_mjml


def outlook_widths(html: str) -> list[str]:
    """Every width Outlook reads, in document order: width="N" and width:Npx inside the
    conditional comments."""
    found = []
    for block in re.findall(r"<!--\[if mso \| IE\]>(.*?)<!\[endif\]-->", html, re.S):
        found += re.findall(r'width(?:="|:)(\d+)', block)
    return found


ISSUES = [*samples(), FIXTURES / "kitchen-sink"]


@pytest.mark.parametrize("unitless", [False, True], ids=["our templates", "a unitless 0"])
@pytest.mark.parametrize("folder", ISSUES, ids=lambda p: p.name)
def test_outlook_widths_equal_the_reference_compilers(folder, unitless, reference):
    """Also when a project's own template writes padding="0 25px" (mjml-python alone
    would make such a divider 600 px wide instead of 550)."""
    config = load_config(PUBLICATION / "newsletter.toml", env={})
    source = render_issue(read_issue(folder, config), config).mjml
    if unitless:
        source = source.replace('padding="0px', 'padding="0').replace(" 0px", " 0")
        assert 'padding="0 25px' in source
    ours, theirs = outlook_widths(mjml_to_html(source)), outlook_widths(reference(source))
    assert len(ours) > 20
    assert ours == theirs


def test_every_section_template_is_in_a_compared_issue():
    kinds = {section.template for folder in ISSUES
             for section in read_issue(folder, load_config(PUBLICATION / "newsletter.toml",
                                                           env={})).sections}
    templates = {p.name.removesuffix(".mjml.j2") for p in
                 (Path(__file__).resolve().parents[1] / "templates" / "email" / "sections")
                 .glob("*.mjml.j2")}
    assert templates <= kinds | {"default"}, templates - kinds
