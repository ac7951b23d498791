"""The preference page behind preferences_url (beside unsubscribe_url by default): a
reader chooses which of the [topics] they get. It opens with the reader's unsubscribe
token (the footer's link), so it needs no login.

- GET  ?token=…  the topics as checkboxes, the reader's current choice checked, and a
  link to unsubscribe. A GET changes nothing.
- POST with ``token`` in the form body (the page's own form: the token is the proof that
  the request comes from the reader's page, not from another site) and a ``topic`` field
  per chosen topic: the reader has exactly those of the topics; their other tags stay as
  they are. A value that is not a topic is passed over.
- A malformed, forged, altered or foreign token, one whose reader is no longer in the
  database, or a POST whose token is only in the query string: 400, the "not valid"
  page, and nothing changes. The MAC is checked before the database is opened.
"""

from __future__ import annotations

from collections.abc import Callable

from ..audience.queries import choose_topics, tags_of
from ..audience.tokens import signer_for
from ..config import Config
from ..delivery.personalise import with_query
from ..errors import PipelineError
from ..render import template_env
from ..render.templates import base_context
from .routing import Request, Response
from .unsubscribe import open_reader


def preferences_route(config: Config) -> Callable[[Request], Response]:
    signer = signer_for(config)
    template = template_env(config).get_template("web/preferences.html.j2")
    topics = list(config.topics)

    def page(status: int, state: str, email: str = "", token: str = "",
             chosen: list[str] | None = None) -> Response:
        body = template.render(**base_context(config), state=state, email=email, token=token,
                               chosen=chosen or [],
                               unsubscribe_link=with_query(config.unsubscribe_url or
                                                           "/unsubscribe", "token", token))
        return Response(status, body.encode("utf-8"))

    def preferences(request: Request) -> Response:
        posted = request.method == "POST"
        # a POST carries the token in its body: a link or another site's form cannot
        token = (request.form.get("token") or [""])[0] if posted else request.value("token")
        found = open_reader(config, signer, token)
        if found is None:
            return page(400, "invalid")
        db, reader = found
        try:
            if not posted:
                return page(200, "ask", reader.email, token, tags_of(db, reader.id))
            wanted = set(request.form.get("topic", []))
            try:
                tags = choose_topics(db, reader.id, topics, [t for t in topics if t in wanted])
            except PipelineError:  # the reader has as many tags as a reader may
                return page(400, "invalid")
        finally:
            db.close()
        return page(200, "saved", reader.email, token, tags)

    return preferences
