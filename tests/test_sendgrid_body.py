"""SendGrid's personalizations are written as JSON text from a template per edition
(the links are the reader's token between constant text). They must say exactly what
the reader's message says: each slot's value as PreparedEmail.values makes it (escaped
for the HTML part only), and the headers as PreparedEmail.headers makes them."""

from __future__ import annotations

import json
from html import escape

import pytest

from pipeline.config import load_config
from pipeline.delivery.personalise import PreparedEmail, Recipient
from pipeline.delivery.providers.sendgrid import TEXT_KEY, SendGridProvider
from pipeline.render.mail import RenderedEmail
from tests.conftest import SECRET
from tests.sendgrid_server import API_KEY

SLOTS = ("你好，%%name|读者朋友%%（%%email%%）来自 %%city|远方%%。"
         "<a href=\"%%unsubscribe_url%%\">退订</a> <a href=\"%%preferences_url%%\">偏好</a>")
READERS = [
    Recipient(1, "ann@example.com", "Ann", ref=b"\x01" * 12),
    Recipient(2, "tom@example.com", "<b>Tom & Jerry</b>", {"city": "<Paris>"}, b"\x02" * 12),
    Recipient(3, "nameless@example.com", "", {"city": ""}, b"\x03" * 12),
    Recipient(4, "semi@example.com", " Lee; Kim, Park ", {"city": "首尔"}, b"\x04" * 12),
    Recipient(5, "ctl@example.com", "Eve\r\nBcc: all@evil.com", {"name": "not this"},
              b"\x05" * 12),
    Recipient(6, "long@example.com", "很" * 150, {"unsubscribe_url": "https://evil"},
              b"\x06" * 12),
    Recipient(7, "quote@example.com", 'O"Brien \\ \u2028', {"city": "\x00"}, b"\x07" * 12),
]


@pytest.fixture(params=["topics", "no topics"])
def config(project, request):
    toml = project / "newsletter.toml"
    if request.param == "topics":
        toml.write_text(toml.read_text() + '\n[topics]\nai = "AI 工具"\n')
    # an unsubscribe link with a query of its own: its & is escaped in the HTML part
    return load_config(toml, env={"NEWSLETTER_SECRET": SECRET, "SENDGRID_API_KEY": API_KEY,
                                  "NEWSLETTER_UNSUBSCRIBE_URL":
                                      "https://news.example.com/u?list=a&b=c#end"})


def expected(prepared: PreparedEmail, recipient: Recipient) -> dict:
    """A personalization as the message itself says it, made the plain way."""
    message = prepared.message(recipient)
    values = message.values
    subs = {}
    for placeholder, field, fallback in prepared.html.slots:
        value = values.get(field) or fallback
        subs[placeholder] = escape(value) if value is not fallback else value
    for placeholder, field, fallback in prepared.text.slots:
        subs[TEXT_KEY + placeholder[2:]] = values.get(field) or fallback
    to = {"email": recipient.email}
    name = values["name"].replace(";", " ").replace(",", " ").strip()
    if name:
        to["name"] = name
    return {"to": [to], "substitutions": subs, "headers": message.headers(),
            "custom_args": {"subscriber": str(recipient.id)}}


@pytest.mark.parametrize("list_headers", [True, False])
def test_personalizations_say_what_each_message_says(config, list_headers):
    rendered = RenderedEmail("2023-12-07-x", "主题", "", f"<p>{SLOTS}</p>", SLOTS, "", ())
    prepared = PreparedEmail(rendered, config, "https://news.example.com/2023-12-07-x/",
                             list_headers=list_headers)
    provider = SendGridProvider(config)
    body = json.loads(provider.encode([prepared.message(r) for r in READERS]))
    got = body["personalizations"]
    assert got == [expected(prepared, r) for r in READERS]
    assert bool(got[0]["substitutions"]["%%preferences_url%%"]) == bool(config.topics)
    tom = got[1]["substitutions"]
    assert tom["%%city|远方%%"] == "&lt;Paris&gt;" and tom["%%text:city|远方%%"] == "<Paris>"
    link = got[0]["substitutions"]["%%unsubscribe_url%%"]
    assert link.startswith("https://news.example.com/u?list=a&amp;b=c&amp;token=")
    assert got[5]["substitutions"]["%%text:unsubscribe_url%%"].startswith(
        "https://news.example.com/u?")  # a reader's field never replaces their link
