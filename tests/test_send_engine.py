"""The send loop as a plain function, with the provider injected (the in-memory one):
no CLI, no patching, no server."""

from __future__ import annotations

from email import message_from_bytes

from pipeline.config import load_config
from pipeline.delivery.providers import FAILED, Outcome
from pipeline.delivery.providers.memory import MemoryProvider
from pipeline.delivery.send import Runtime, send_issue
from tests.conftest import NOW, SECRET

ISSUE = "2023-12-07-ai-productivity-09"


def test_send_issue_delivers_through_an_injected_provider_exactly_once(project, engine,
                                                                      audience):
    config = load_config(project / "newsletter.toml",
                         env={"NEWSLETTER_SECRET": SECRET, **engine.env})
    refused = "chen.mo@example.com"
    provider = MemoryProvider(config, outcomes={refused: Outcome(FAILED, error="550 no mailbox")})
    report = send_issue(project / "issues" / ISSUE, config, provider, Runtime(clock=lambda: NOW))

    everyone = {email for (email,) in engine.query("SELECT email FROM subscribers")}
    assert len(everyone) == 12
    assert sorted(address for address, _ in provider.sent) == sorted(everyone - {refused})
    assert report.done and report.counts["sent"] == len(everyone) - 1
    assert report.counts["failed"] == 1 and not report.ok
    message = message_from_bytes(dict(provider.sent)["ada.zhang@example.com"])
    assert message["To"] == "Ada Zhang <ada.zhang@example.com>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    again = MemoryProvider(config)
    second = send_issue(project / "issues" / ISSUE, config, again, Runtime(clock=lambda: NOW))
    assert again.sent == [] and second.handled_now == 0
