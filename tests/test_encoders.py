"""Encoder processes (a long SendGrid send personalises and encodes its batches in
forked processes): what one makes is the request the send loop would make, and a batch
whose process died is made by its sender thread."""

from __future__ import annotations

import os
import signal

from pipeline.config import load_config
from pipeline.delivery.personalise import Editions, PreparedEmail, Recipient
from pipeline.delivery.providers.sendgrid import SendGridProvider
from pipeline.delivery.workers import Encoders
from pipeline.render.mail import RenderedEmail
from tests.conftest import SECRET
from tests.sendgrid_server import API_KEY

PART = "你好，%%name|读者朋友%%。<a href=\"%%unsubscribe_url%%\">退订</a>"


def editions(project) -> tuple[Editions, SendGridProvider]:
    config = load_config(project / "newsletter.toml",
                         env={"NEWSLETTER_SECRET": SECRET, "SENDGRID_API_KEY": API_KEY})
    emails = {language: PreparedEmail(RenderedEmail("x", f"主题 {language}", "", PART, PART,
                                                    "", ()), config, "https://x/")
              for language in ("", "en")}
    return Editions(emails), SendGridProvider(config)


def test_an_encoder_makes_the_request_the_send_loop_would(project):
    emails, provider = editions(project)
    batch = [Recipient(n, f"r{n}@example.com", f"读者 <{n}>", ref=bytes([n]) * 12,
                       edition="en" if n % 2 else "") for n in range(1, 9)]
    encoders = Encoders(emails, provider, 2)
    try:
        made = [encoders.encode(edition, batch) for edition in ("", "en", "")]
        assert [m.get() for m in made] == [
            provider.encode([emails[edition].message(r) for r in batch])
            for edition in ("", "en", "")]
    finally:
        encoders.close()
    assert not any(e.process.is_alive() for e in encoders.encoders)


def test_a_batch_whose_encoder_died_is_left_to_its_sender(project):
    emails, provider = editions(project)
    batch = [Recipient(1, "r1@example.com", ref=b"\1" * 12)]
    encoders = Encoders(emails, provider, 1)
    try:
        (encoder,) = encoders.encoders
        assert encoders.encode("", batch).get() is not None
        os.kill(encoder.process.pid, signal.SIGKILL)
        encoder.process.join()
        lost = [encoders.encode("", batch) for _ in range(3)]
        assert [m.get() for m in lost] == [None, None, None]  # each: made by the thread
        assert not encoder.alive
    finally:
        encoders.close()
