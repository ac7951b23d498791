"""`newsletter stats` and `newsletter report`: an issue sent through the local SendGrid
server, its signed events posted to the webhook, then counted and drawn."""

from __future__ import annotations

import json

import pytest
from lxml import etree, html

from pipeline.config import load_config
from pipeline.web import create_app
from tests.conftest import NOW, SECRET
from tests.test_webhooks import Signer, event, post

ISSUE = "2023-12-07-ai-productivity-09"
ID = ISSUE  # the fixture's issue.yaml has no id: its folder's name is its id
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def sent_with_events(run, audience, sendgrid, project):
    assert run("send", ISSUE, "--yes").exit_code == 0
    # what SendGrid will send back with each event: the issue, and the reader
    body = sendgrid.bodies[0]
    assert body["custom_args"] == {"issue": ID}
    assert {p["to"][0]["email"]: p["custom_args"]["subscriber"]
            for p in body["personalizations"]}["lin.xiaoyu@example.com"] == "1"
    signer = Signer()
    env = {"NEWSLETTER_SECRET": SECRET, "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public}
    app = create_app(load_config(project / "newsletter.toml", env=env), lambda: NOW)
    readers = ["lin.xiaoyu@example.com", "zhou.an@example.org", "wang.shu@example.net",
               "li.heng@example.com", "sun.qing@example.org"]
    events = [event("delivered", r, n, issue=ID) for n, r in enumerate(readers)]
    events += [event("open", readers[0], 10, issue=ID),
               event("open", readers[0], 11, issue=ID),  # the same reader: one open
               event("open", readers[1], 12, issue=ID), event("click", readers[1], 13, issue=ID),
               event("bounce", "chen.mo@example.com", 14, type="bounce", issue=ID),
               event("spamreport", readers[2], 15, issue=ID),
               event("unsubscribe", readers[3], 16, issue=ID),
               event("open", readers[4], 17, issue="another-issue")]
    body = json.dumps(events).encode()
    assert post(app, body, signer.headers(body, NOW.timestamp()))[0] == "200 OK"
    return project


def test_stats_counts_readers_per_issue(run, sent_with_events):
    data = json.loads(run("stats", "--json").stdout)
    assert [{k: d[k] for k in ("issue", "sent", "delivered", "bounced", "complaints",
                               "unsubscribes", "opens", "clicks")} for d in data] == [
        {"issue": ID, "sent": 12, "delivered": 5, "bounced": 1, "complaints": 1,
         "unsubscribes": 1, "opens": 2, "clicks": 1}]
    assert run("stats", ISSUE).stdout == (f"{ID}  sent 12  delivered 5  bounced 1  complaints "
                                          "1  unsubscribes 1  opens 2  clicks 1\n")


def test_an_issue_sent_without_tracking_shows_no_opens(run, audience):
    assert run("send", ISSUE, "--yes").exit_code == 0  # the outbox
    assert run("stats").stdout == (f"{ID}  sent 12  delivered 0  bounced 0  complaints 0  "
                                   "unsubscribes 0  opens -  clicks -\n")
    assert run("stats", "2023-03-19-ai-weekly-roundup").stdout == (
        "2023-03-19-ai-weekly-roundup: not sent yet; nothing to count\n")


def test_report_draws_the_numbers_it_counts(run, sent_with_events, browser):
    result = run("report", "--out", "out/report.html")
    assert result.stdout == "wrote out/report.html\n"
    page = (sent_with_events / "out" / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page
    tree = html.fromstring(page)
    svgs = {svg.get("id"): etree.fromstring(etree.tostring(svg)) for svg in tree.iter("svg")}
    assert set(svgs) == {"growth", "issues"}
    values = {(t.get("data-series")): t.text for t in svgs["issues"].iter(f"{SVG}text", "text")
              if t.get("data-issue") == ID}
    assert values == {"sent": "12", "delivered": "5", "bounced": "1", "opens": "2",
                      "clicks": "1"}
    growth = [t.text for t in svgs["growth"].iter(f"{SVG}text", "text")
              if t.get("class") == "value"]
    assert growth == ["11"]  # 12 imported, one unsubscribed at SendGrid

    chromium = browser.new_page(viewport={"width": 800, "height": 900})
    errors = []
    chromium.on("pageerror", lambda error: errors.append(error))
    chromium.goto((sent_with_events / "out" / "report.html").as_uri())
    box = chromium.locator("#issues").bounding_box()
    assert box and box["width"] > 600 and box["height"] > 100
    assert chromium.locator("#issues text[data-series=delivered]").text_content() == "5"
    colour = chromium.evaluate("getComputedStyle(document.body).color")
    assert colour == "rgb(31, 35, 40)"  # #1f2328 on white: 15.8:1
    assert errors == []
    chromium.close()
