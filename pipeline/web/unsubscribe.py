"""The unsubscribe route behind unsubscribe_url.

- GET  ?token=…  a page that names the publication and offers a button; a GET alone
  changes nothing (link scanners and prefetchers follow GETs).
- POST ?token=…  RFC 8058 one-click (body ``List-Unsubscribe=One-Click``) or the page's
  button: the reader is unsubscribed, with the time and the source. Repeating it is
  harmless.
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

from ..audience.queries import Subscriber, find_reader, unsubscribe_address
from ..audience.tokens import TokenError, signer_for
from ..config import Config
from ..render import template_env
from ..render.templates import base_context
from ..store import connect
from .routing import Request, Response

ONE_CLICK = "List-Unsubscribe=One-Click"


def unsubscribe_route(config: Config, clock: Callable[[], datetime],
                      resubscribe: Callable[[Request, Subscriber], Response] | None = None
                      ) -> Callable[[Request], Response]:
    signer = signer_for(config)
    template = template_env(config).get_template("web/unsubscribe.html.j2")

    def page(status: int, state: str, email: str = "", token: str = "") -> Response:
        body = template.render(**base_context(config), state=state, email=email, token=token)
        return Response(status, body.encode("utf-8"))

    def unsubscribe(request: Request) -> Response:
        token = request.value("token")
        try:
            claim = signer.verify(token)  # a forgery is refused before the database opens
        except TokenError:
            return page(400, "invalid")
        db = connect(config.database)
        try:
            reader = find_reader(db, claim)
            if reader is None:  # deleted from the database
                return page(400, "invalid")
            if request.method != "POST":
                return page(200, "ask", reader.email, token)
            if resubscribe and request.form.get("action") == ["resubscribe"]:
                return resubscribe(request, reader)
            source = "one-click" if request.body.strip() == ONE_CLICK else "web"
            unsubscribe_address(db, reader.email, clock(), source)
        finally:
            db.close()
        return page(200, "done", reader.email, token if resubscribe else "")

    return unsubscribe
