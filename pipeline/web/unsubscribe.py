"""The unsubscribe route behind unsubscribe_url.

- GET  ?token=…  a page that names the publication and offers a button; a GET alone
  changes nothing (link scanners and prefetchers follow GETs).
- POST ?token=…  RFC 8058 one-click (body ``List-Unsubscribe=One-Click``) or the page's
  button: the reader is unsubscribed, with the time and the source. Repeating it is
  harmless.
- ``issue=…`` beside the token (an issue's links carry it; not a secret): the id of the
  issue the reader left from. When the POST unsubscribes them it is recorded as that
  issue's unsubscribe event, which `stats` counts; anything that is not the id of a sent
  issue is ignored.
- POST ?token=… with ``action=resubscribe`` (the button on the page after leaving): a
  new confirmation is mailed to the reader (``web.signup``); nothing else changes until
  they follow it.
- A malformed, non-canonical, forged, altered, truncated or foreign token, or one whose
  reader is no longer in the database: 400, the "not valid" page, and nothing changes.
  The token's MAC is checked before the database is read (``audience.tokens``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..audience.events import MAX_ISSUE, record_unsubscribe
from ..audience.queries import Subscriber, find_reader, unsubscribe_address
from ..audience.tokens import Signer, TokenError, signer_for
from ..config import Config
from ..issue.identity import is_id
from ..render import template_env
from ..render.templates import base_context
from ..store import Database, connect
from .routing import Request, Response

ONE_CLICK = "List-Unsubscribe=One-Click"


def open_reader(config: Config, signer: Signer, token: str
                ) -> tuple[Database, Subscriber] | None:
    """The database, open (the caller closes it), and the reader a genuine token names;
    None, with nothing left open, for a forged, altered or foreign token (refused before
    the database opens) or one whose reader was deleted from the database."""
    try:
        claim = signer.verify(token)
    except TokenError:
        return None
    db = connect(config.database)
    try:
        reader = find_reader(db, claim)
    except BaseException:
        db.close()
        raise
    if reader is None:
        db.close()
        return None
    return db, reader


def unsubscribe_route(config: Config, clock: Callable[[], datetime],
                      resubscribe: Callable[[Request, Subscriber], Response] | None = None
                      ) -> Callable[[Request], Response]:
    signer = signer_for(config)
    template = template_env(config).get_template("web/unsubscribe.html.j2")

    def page(status: int, state: str, email: str = "", token: str = "", issue: str = ""
             ) -> Response:
        body = template.render(**base_context(config), state=state, email=email, token=token,
                               issue=issue)
        return Response(status, body.encode("utf-8"))

    def unsubscribe(request: Request) -> Response:
        token = request.value("token")
        found = open_reader(config, signer, token)
        if found is None:
            return page(400, "invalid")
        db, reader = found
        try:
            issue = request.value("issue")
            issue = issue if len(issue) <= MAX_ISSUE and is_id(issue) else ""
            if request.method != "POST":
                return page(200, "ask", reader.email, token, issue)
            if resubscribe and request.form.get("action") == ["resubscribe"]:
                return resubscribe(request, reader)
            source = "one-click" if request.body.strip() == ONE_CLICK else "web"
            now = clock()
            if unsubscribe_address(db, reader.email, now, source) and issue:
                record_unsubscribe(db, reader.id, reader.email, issue, source, now)
        finally:
            db.close()
        return page(200, "done", reader.email, token if resubscribe else "")

    return unsubscribe
